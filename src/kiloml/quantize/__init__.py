"""Post-training fixed-point quantization and the integer reference simulator of the C code."""

from kiloml.quantize.quantizer import (
    QTensor,
    QuantizedModel,
    dequantize_logits,
    quantize_input,
    quantize_model,
)
from kiloml.quantize.simulator import simulate, simulate_batch

__all__ = ["QTensor", "QuantizedModel", "dequantize_logits", "quantize_input", "quantize_model",
           "simulate", "simulate_batch"]
