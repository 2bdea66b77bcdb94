"""Float64 numpy twin of a FastGRNN/FastRNN ``SequenceClassifier`` that records the largest
magnitude of every intermediate tensor; the quantizer picks Q-formats from these ranges.

Parameters come from :func:`float_parameters` (the state dict as float64 arrays with the
nonlinearity and shape settings); the forward pass follows :mod:`kiloml.nn.fastrnn` exactly.
"""

from dataclasses import dataclass

import numpy as np
import torch

from kiloml.errors import KilomlError
from kiloml.nn.classifier import SequenceClassifier, stack_frames

SUPPORTED_KINDS = ("fastgrnn", "fastrnn")
VECTORS_AND_SCALARS = ("bias_gate", "bias_update", "zeta", "nu", "alpha", "beta")

FLOAT_FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "quantSigm": lambda x: np.clip((x + 1.0) * 0.5, 0.0, 1.0),
    "quantTanh": lambda x: np.clip(x, -1.0, 1.0),
}


@dataclass
class FloatModel:
    """A deployable classifier as float64 arrays (names as in the state dict, without prefix).

    With ``frame_stack`` k > 1, ``input_mean``/``input_std`` are tiled k times (``[k*F]``): the
    model is the same network over ``k*F`` features and ``T/k`` steps.
    """

    kind: str
    gate: str
    update: str
    readout: str
    tensors: dict[str, np.ndarray]
    frame_stack: int = 1

    @property
    def w_rank(self) -> int | None:
        return self.tensors["W1"].shape[0] if "W1" in self.tensors else None

    @property
    def u_rank(self) -> int | None:
        return self.tensors["U1"].shape[0] if "U1" in self.tensors else None


def check_deployable(model: SequenceClassifier) -> None:
    """Raise a one-line :class:`KilomlError` unless ``model`` is a unidirectional FastGRNN or
    FastRNN classifier (the kinds the integer kernels implement)."""
    c = model.config
    if c.kind not in SUPPORTED_KINDS:
        raise KilomlError(f"cannot deploy a {c.kind} model: layer 'rnn' is {c.kind}, integer "
                          f"deployment supports {' and '.join(SUPPORTED_KINDS)} only")
    if c.bidirectional:
        raise KilomlError(f"cannot deploy a bidirectional {c.kind} model: layer 'rnn' must be "
                          "unidirectional for integer deployment")


def float_parameters(model: SequenceClassifier) -> FloatModel:
    """The parameters of ``model`` as float64 arrays, biases flattened to vectors."""
    check_deployable(model)
    c = model.config
    state = {k: v.detach().to(torch.float64).numpy() for k, v in model.state_dict().items()}
    k = c.frame_stack
    tensors = {"input_mean": np.tile(state["input_mean"], k),
               "input_std": np.tile(state["input_std"], k),
               "head_weight": state["head.weight"], "head_bias": state["head.bias"]}
    for name, value in state.items():
        if name.startswith("rnn.cell."):
            short = name.removeprefix("rnn.cell.")
            tensors[short] = value.reshape(-1) if short in VECTORS_AND_SCALARS else value
    gate = c.gate_nonlinearity if c.kind == "fastgrnn" else ""
    return FloatModel(c.kind, gate, c.update_nonlinearity, c.readout, tensors, k)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def float_forward(fm: FloatModel, X: np.ndarray, ranges: dict[str, float] | None = None
                  ) -> np.ndarray:
    """Logits ``[N, C]`` for raw input ``X`` ``[N, T, F]``; if ``ranges`` is given, store the
    largest absolute value of every intermediate in it (keys: ``input``, ``normalized``,
    ``w_low_rank``, ``u_low_rank``, ``preactivation``, ``update_out``, ``state``, ``logits``)."""
    t = fm.tensors
    X = stack_frames(np.asarray(X, dtype=np.float64), fm.frame_stack)
    record = ranges if ranges is not None else {}

    def note(key: str, value: np.ndarray) -> None:
        if value.size:
            record[key] = max(record.get(key, 0.0), float(np.abs(value).max()))

    note("input", X)
    xn = (X - t["input_mean"]) / t["input_std"]
    note("normalized", xn)
    hidden = t["bias_update"].shape[0]
    h = np.zeros((X.shape[0], hidden))
    total = np.zeros_like(h)
    update = FLOAT_FUNCTIONS[fm.update]
    for step in range(X.shape[1]):
        x = xn[:, step]
        if fm.w_rank is None:
            wx = x @ t["W"].T
        else:
            low = x @ t["W1"].T
            note("w_low_rank", low)
            wx = low @ t["W2"].T
        if fm.u_rank is None:
            uh = h @ t["U"].T
        else:
            low = h @ t["U1"].T
            note("u_low_rank", low)
            uh = low @ t["U2"].T
        a = wx + uh
        note("preactivation", a)
        pre_update = a + t["bias_update"]
        note("preactivation", pre_update)
        c = update(pre_update)
        note("update_out", c)
        if fm.kind == "fastgrnn":
            pre_gate = a + t["bias_gate"]
            note("preactivation", pre_gate)
            z = FLOAT_FUNCTIONS[fm.gate](pre_gate)
            coef = _sigmoid(t["zeta"][0]) * (1.0 - z) + _sigmoid(t["nu"][0])
            h = z * h + coef * c
        else:
            h = _sigmoid(t["beta"][0]) * h + _sigmoid(t["alpha"][0]) * c
        note("state", h)
        total += h
    readout = total / X.shape[1] if fm.readout == "mean" else h
    logits = readout @ t["head_weight"].T + t["head_bias"]
    note("logits", logits)
    return logits
