"""Post-training fixed-point quantization of a FastGRNN/FastRNN classifier.

Weights (``W``/``W1``/``W2``, ``U``/``U1``/``U2``, the gate and update biases, the head) become
int8 or int16 (``bits``) with one power-of-two scale per tensor, chosen so that the largest
weight just fits. Activations and state are int16 with one Q-format per tensor chosen from the
ranges a float64 pass over calibration data records (times ``headroom``). The normalisation is
done in integer: ``input_mean`` int16 in the input's Q-format and ``input_inv_std`` (``1/std``)
int16 with its own scale. ``σ(ζ)``, ``σ(ν)`` (FastGRNN) and ``σ(α)``, ``σ(β)`` (FastRNN) are Q15
int16 constants.

The C input is int16 features in Q``formats["input"]`` (see :func:`quantize_input`); the output
is int32 logits in Q``formats["logits"]``.
"""

from dataclasses import dataclass, field

import numpy as np

from kiloml.errors import KilomlError
from kiloml.nn.classifier import SequenceClassifier, stack_frames
from kiloml.quantize.activations import Q15, output_frac_bits
from kiloml.quantize.calibration import FloatModel, float_forward, float_parameters
from kiloml.quantize.formats import frac_bits_for, saturate, to_fixed

WEIGHT_BITS = (8, 16)
MATRICES = ("W", "W1", "W2", "U", "U1", "U2", "head_weight")
#: Range of the activations' fractional bits; the C kernels' 32-bit shortcuts rely on it.
ACTIVATION_FRAC_BITS = (0, 20)
#: Longest deployable sequence (uint16 step counter; the int32 mean-readout sum cannot overflow).
MAX_STEPS = 65535
#: Fractional bits of the mean readout's reciprocal ``1/T``.
INV_STEPS_FRAC_BITS = 30


@dataclass
class QTensor:
    """Stored integers (int64 array) of width ``bits`` in Q``frac_bits``."""

    values: np.ndarray
    frac_bits: int
    bits: int


@dataclass
class QuantizedModel:
    """Everything the integer simulator and the C code need.

    ``tensors`` holds ``input_mean``, ``input_inv_std``, ``W`` or ``W1``/``W2``, ``U`` or
    ``U1``/``U2``, ``bias_update``, ``head_weight`` ``[C, H]``, ``head_bias`` ``[C]``, and
    ``bias_gate`` with the Q15 scalars ``sigmoid_zeta``, ``sigmoid_nu`` (FastGRNN) or the Q15
    scalars ``sigmoid_alpha``, ``sigmoid_beta`` (FastRNN). ``formats`` holds the fractional
    bits of the int16 activations ``input``, ``normalized``, ``w_low_rank``, ``u_low_rank``,
    ``preactivation``, ``gate_out``, ``update_out``, ``state`` and of the int32 ``logits``.

    ``input_size`` and ``steps`` are per recurrent step: with ``frame_stack`` k, the raw
    ``[k*steps, input_size/k]`` input is the same memory read as ``[steps, input_size]``.
    """

    kind: str
    gate: str
    update: str
    readout: str
    input_size: int
    hidden_size: int
    num_classes: int
    steps: int
    bits: int
    frame_stack: int = 1
    tensors: dict[str, QTensor] = field(default_factory=dict)
    formats: dict[str, int] = field(default_factory=dict)

    @property
    def w_rank(self) -> int | None:
        return self.tensors["W1"].values.shape[0] if "W1" in self.tensors else None

    @property
    def u_rank(self) -> int | None:
        return self.tensors["U1"].values.shape[0] if "U1" in self.tensors else None

    def shifts(self) -> dict[str, int]:
        """Right-shift amounts (negative: left) of every rescaling step, see the simulator."""
        f, t = self.formats, self.tensors
        shifts = {"normalize": f["input"] + t["input_inv_std"].frac_bits - f["normalized"]}
        if self.w_rank is None:
            shifts["W"] = t["W"].frac_bits + f["normalized"] - f["preactivation"]
        else:
            shifts["W1"] = t["W1"].frac_bits + f["normalized"] - f["w_low_rank"]
            shifts["W2"] = t["W2"].frac_bits + f["w_low_rank"] - f["preactivation"]
        if self.u_rank is None:
            shifts["U"] = t["U"].frac_bits + f["state"] - f["preactivation"]
        else:
            shifts["U1"] = t["U1"].frac_bits + f["state"] - f["u_low_rank"]
            shifts["U2"] = t["U2"].frac_bits + f["u_low_rank"] - f["preactivation"]
        shifts["bias_update"] = t["bias_update"].frac_bits - f["preactivation"]
        gate_or_one = f["gate_out"] if self.kind == "fastgrnn" else Q15
        if self.kind == "fastgrnn":
            shifts["bias_gate"] = t["bias_gate"].frac_bits - f["preactivation"]
        aligned = max(f["state"], f["update_out"])
        shifts["state_align"] = f["state"] - aligned  # multiply h by 2**(aligned - state)
        shifts["update_align"] = f["update_out"] - aligned
        shifts["state_update"] = gate_or_one + aligned - f["state"]
        shifts["head_weight"] = t["head_weight"].frac_bits + f["state"] - f["logits"]
        shifts["head_bias"] = t["head_bias"].frac_bits - f["logits"]
        return shifts

    def inv_steps(self) -> int:
        """``round(2**30 / steps)``: the mean readout multiplies the sum by this."""
        return round((1 << INV_STEPS_FRAC_BITS) / self.steps)


def _weight(values: np.ndarray, bits: int) -> QTensor:
    frac = frac_bits_for(float(np.abs(values).max(initial=0.0)), bits, lowest=-8, highest=30)
    return QTensor(to_fixed(values, frac, bits), frac, bits)


def _q15(value: float) -> QTensor:
    return QTensor(to_fixed(np.array([value]), Q15, 16), Q15, 16)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def quantize_float_model(fm: FloatModel, X_calib: np.ndarray, bits: int = 16,
                         headroom: float = 1.25) -> QuantizedModel:
    """Quantize ``fm`` with activation ranges from calibration input ``X_calib`` ``[N, T, F]``
    (raw features; the deployed model runs ``T`` steps, or ``T/k`` with frame stacking)."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    X_calib = np.asarray(X_calib, dtype=np.float64)
    if X_calib.ndim != 3:
        raise ValueError(f"calibration input must be [N, T, F], got shape {list(X_calib.shape)}")
    steps = stack_frames(X_calib, fm.frame_stack).shape[1]  # a view; checks T divides
    if not np.all(np.isfinite(X_calib)):
        raise KilomlError("calibration data contains NaN or infinite values")
    if not 1 <= steps <= MAX_STEPS:
        raise KilomlError(f"sequence length must be between 1 and {MAX_STEPS} for deployment, "
                          f"got {steps}")
    t = fm.tensors
    if not np.all(np.isfinite(t["input_std"]) & (t["input_std"] > 0)):
        raise KilomlError("input_std must be positive and finite for every feature; refit the "
                          "normalisation on the training split")
    ranges: dict[str, float] = {}
    float_forward(fm, X_calib, ranges)
    hidden, features = t["bias_update"].shape[0], t["input_mean"].shape[0]
    q = QuantizedModel(fm.kind, fm.gate, fm.update, fm.readout, features, hidden,
                       t["head_bias"].shape[0], steps, bits, fm.frame_stack)

    def activation(key: str) -> int:
        return frac_bits_for(ranges.get(key, 0.0) * headroom, 16, *ACTIVATION_FRAC_BITS)

    formats = {key: activation(key) for key in ("input", "normalized", "preactivation", "state")}
    formats["w_low_rank"] = activation("w_low_rank") if fm.w_rank else formats["normalized"]
    formats["u_low_rank"] = activation("u_low_rank") if fm.u_rank else formats["state"]
    formats["gate_out"] = output_frac_bits(fm.gate, formats["preactivation"]) if fm.gate else Q15
    formats["update_out"] = output_frac_bits(fm.update, formats["preactivation"])
    formats["logits"] = frac_bits_for(ranges.get("logits", 0.0) * headroom, 32, lowest=0,
                                      highest=16)
    q.formats = formats

    inv_std = 1.0 / t["input_std"]
    inv_std_frac = frac_bits_for(float(np.abs(inv_std).max()), 16, lowest=-8, highest=30)
    q.tensors["input_mean"] = QTensor(to_fixed(t["input_mean"], formats["input"], 16),
                                      formats["input"], 16)
    q.tensors["input_inv_std"] = QTensor(to_fixed(inv_std, inv_std_frac, 16), inv_std_frac, 16)
    for name in MATRICES + ("bias_gate", "bias_update", "head_bias"):
        if name in t:
            q.tensors[name] = _weight(t[name], bits)
    if fm.kind == "fastgrnn":
        q.tensors["sigmoid_zeta"] = _q15(_sigmoid(t["zeta"][0]))
        q.tensors["sigmoid_nu"] = _q15(_sigmoid(t["nu"][0]))
    else:
        q.tensors["sigmoid_alpha"] = _q15(_sigmoid(t["alpha"][0]))
        q.tensors["sigmoid_beta"] = _q15(_sigmoid(t["beta"][0]))
    return q


def quantize_model(model: SequenceClassifier, X_calib: np.ndarray, bits: int = 16,
                   headroom: float = 1.25) -> QuantizedModel:
    """Quantize a FastGRNN/FastRNN classifier (see :func:`quantize_float_model`); other kinds
    raise :class:`kiloml.errors.KilomlError`."""
    return quantize_float_model(float_parameters(model), X_calib, bits, headroom)


def quantize_input(q: QuantizedModel, X: np.ndarray) -> np.ndarray:
    """Raw features ``X`` ``[..., T, F]`` → int16 ``[..., steps, input_size]`` in
    Q``formats["input"]`` (what C takes; frames stacked by ``q.frame_stack``)."""
    X = stack_frames(np.asarray(X, dtype=np.float64), q.frame_stack)
    scaled = np.round(X * 2.0 ** q.formats["input"])
    return saturate(scaled.astype(np.int64), 16).astype(np.int16)


def dequantize_logits(q: QuantizedModel, logits: np.ndarray) -> np.ndarray:
    """int32 logits in Q``formats["logits"]`` → float."""
    return np.asarray(logits, dtype=np.float64) * 2.0 ** -q.formats["logits"]
