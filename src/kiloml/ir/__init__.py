"""The integer graph: lowering of torch modules to ops, calibration on the float graph, the
generic quantizer, the integer simulator, the arena planner and serialization.

``quantize_model(model, X_calib, bits)`` is the whole path from a trained model to the integer
graph the C code runs; ``simulate(graph, x)`` is the spec of that C code.
"""

import numpy as np
from torch import nn

from kiloml.ir.calibrate import calibrate, run_float
from kiloml.ir.early_exit import instances
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower_model
from kiloml.ir.quantize import dequantize_output, image_input, quantize_graph, quantize_input
from kiloml.ir.simulate import simulate, simulate_values
from kiloml.nn.classifier import stack_frames

#: Images run through the float graph at once during calibration.
IMAGE_CALIBRATION_BATCH = 32


def _merge(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """The larger magnitude of every key of two calibration ranges."""
    return {k: max(a.get(k, 0.0), b.get(k, 0.0)) for k in {*a, *b}}


def quantize_model(model: nn.Module, X_calib: np.ndarray, bits: int = 16) -> Graph:
    """The integer graph of a trained model, calibrated on raw ``X_calib`` ``[N, T, F]`` (an
    EMI-FastGRNN: on the instances of those windows; its graph reads one instance)."""
    X_calib = np.asarray(X_calib, dtype=np.float64)
    graph = lower_model(model, X_calib.shape[1])
    if graph.meta.get("image_rows"):  # images: in batches (every value of a batch is kept)
        ranges: dict[str, float] = {}
        for start in range(0, len(X_calib), IMAGE_CALIBRATION_BATCH):
            ranges = _merge(ranges, calibrate(graph, image_input(
                graph, X_calib[start:start + IMAGE_CALIBRATION_BATCH])))
        return quantize_graph(graph, ranges, bits)
    if "early_exit" in graph.meta:  # EMI-FastGRNN: calibrated on the windows' instances
        settings = graph.meta["early_exit"]
        X_calib = instances(X_calib, settings["width"], settings["stride"])
    ranges = calibrate(graph, stack_frames(X_calib, graph.meta.get("frame_stack", 1)))
    return quantize_graph(graph, ranges, bits)


def float_graph_logits(graph: Graph, X: np.ndarray) -> np.ndarray:
    """The float graph's output for raw ``X`` ``[N, T, F]`` (the common checks compare it
    with the torch model)."""
    X = stack_frames(image_input(graph, X), graph.meta.get("frame_stack", 1))
    return run_float(graph, X)[graph.output]


__all__ = ["Graph", "calibrate", "dequantize_output", "float_graph_logits", "image_input",
           "lower_model", "quantize_graph", "quantize_input", "quantize_model", "run_float",
           "simulate", "simulate_values"]
