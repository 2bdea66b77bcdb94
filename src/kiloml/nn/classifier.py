"""Sequence classifier: normalisation → recurrent layer → readout → linear head.

This is the deployable unit: everything from raw features to logits is inside the module, so the
normalisation fitted on the training split travels with the weights. ``ModelConfig`` is what a
run directory's ``config.json`` stores under ``"model"``; :func:`build_model` rebuilds the module.

State-dict keys (what ``model.safetensors`` holds): ``input_mean`` ``[F]``, ``input_std`` ``[F]``,
``rnn.cell.*`` (and ``rnn.cell_reverse.*``) for FastRNN/FastGRNN or ``rnn.*`` as ``nn.GRU``/
``nn.LSTM`` name them, ``head.weight`` ``[C, D*H]`` and ``head.bias`` ``[C]``.
"""

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.fastrnn import FastGRNN, FastRNN
from kiloml.nn.nonlinearity import check_nonlinearity

MODEL_KINDS = ("fastgrnn", "fastrnn", "gru", "lstm")
#: Gates of torch's stacked ``weight_ih_l0``/``weight_hh_l0`` rows, in torch's order.
TORCH_GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


def torch_rnn_gates(rnn: nn.GRU | nn.LSTM) -> dict[str, torch.Tensor]:
    """A one-layer, one-direction ``nn.GRU``/``nn.LSTM`` as it is deployed (float64): per gate
    ``W_<gate>`` ``[H, F]``, ``U_<gate>`` ``[H, H]`` and ``bias_<gate>`` (the input and recurrent
    biases summed), except the GRU's ``n`` gate, which keeps ``bias_in`` and ``bias_hn`` apart
    (``r`` multiplies ``W_hn h + b_hn`` only)."""
    gates = TORCH_GATES["gru" if isinstance(rnn, nn.GRU) else "lstm"]
    hidden = rnn.hidden_size
    w_ih, w_hh = rnn.weight_ih_l0.detach().double(), rnn.weight_hh_l0.detach().double()
    zeros = torch.zeros(len(gates) * hidden, dtype=torch.float64)
    b_ih = rnn.bias_ih_l0.detach().double() if rnn.bias else zeros
    b_hh = rnn.bias_hh_l0.detach().double() if rnn.bias else zeros
    out = {}
    for i, gate in enumerate(gates):
        rows = slice(i * hidden, (i + 1) * hidden)
        out[f"W_{gate}"], out[f"U_{gate}"] = w_ih[rows], w_hh[rows]
        if gate == "n":
            out["bias_in"], out["bias_hn"] = b_ih[rows], b_hh[rows]
        else:
            out[f"bias_{gate}"] = b_ih[rows] + b_hh[rows]
    return out
READOUTS = ("last", "mean")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a classifier (no weights)."""

    kind: str
    input_size: int
    num_classes: int
    hidden_size: int = 32
    w_rank: int | None = None
    u_rank: int | None = None
    gate_nonlinearity: str = "sigmoid"
    update_nonlinearity: str = "tanh"
    bidirectional: bool = False
    readout: str = "last"
    zeta_init: float = 1.0
    nu_init: float = -4.0
    bias_gate_init: float = 1.0
    frame_stack: int = 1

    def validate(self) -> "ModelConfig":
        if self.kind not in MODEL_KINDS:
            raise KilomlError(f"unknown model {self.kind!r}; "
                              f"choose one of {', '.join(MODEL_KINDS)}")
        if self.readout not in READOUTS:
            raise KilomlError(f"unknown readout {self.readout!r}; "
                              f"choose one of {', '.join(READOUTS)}")
        for name in ("input_size", "num_classes", "hidden_size", "frame_stack"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        check_nonlinearity(self.gate_nonlinearity)
        check_nonlinearity(self.update_nonlinearity)
        if self.kind in ("gru", "lstm") and (self.w_rank or self.u_rank):
            raise KilomlError(f"--w-rank/--u-rank apply to fastgrnn and fastrnn, not {self.kind}")
        limits = {"w_rank": min(self.rnn_input_size, self.hidden_size),
                  "u_rank": self.hidden_size}
        for name, limit in limits.items():
            rank = getattr(self, name)
            if rank is not None and not 1 <= rank <= limit:
                raise KilomlError(f"{name.replace('_', '-')} must be between 1 and {limit} "
                                  f"for these sizes, got {rank}")
        return self

    @property
    def rnn_input_size(self) -> int:
        """Features per recurrent step: ``frame_stack`` consecutive frames side by side."""
        return self.frame_stack * self.input_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


def stack_frames(x, k: int):
    """``[..., T, F]`` → ``[..., T/k, k*F]``: each step sees ``k`` consecutive frames side by side.

    A reshape of the same row-major memory, so deployed code reads a ``[T][F]`` buffer as is.
    Works on numpy arrays and torch tensors; ``T`` must be a multiple of ``k``.
    """
    if k == 1:
        return x
    steps, features = x.shape[-2], x.shape[-1]
    if steps % k:
        raise KilomlError(f"frame-stack {k} needs a number of steps divisible by {k}, "
                          f"got {steps}")
    return x.reshape(*x.shape[:-2], steps // k, k * features)


class SequenceClassifier(nn.Module):
    """Classifies ``[B, T, F]`` sequences into ``C`` classes; returns logits ``[B, C]``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config.validate()
        c = config
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        common = dict(batch_first=True, bidirectional=c.bidirectional)
        inputs = c.rnn_input_size
        if c.kind == "fastgrnn":
            self.rnn = FastGRNN(inputs, c.hidden_size, gate_nonlinearity=c.gate_nonlinearity,
                                update_nonlinearity=c.update_nonlinearity, w_rank=c.w_rank,
                                u_rank=c.u_rank, zeta_init=c.zeta_init, nu_init=c.nu_init,
                                bias_gate_init=c.bias_gate_init, **common)
        elif c.kind == "fastrnn":
            self.rnn = FastRNN(inputs, c.hidden_size,
                               update_nonlinearity=c.update_nonlinearity, w_rank=c.w_rank,
                               u_rank=c.u_rank, **common)
        elif c.kind == "gru":
            self.rnn = nn.GRU(inputs, c.hidden_size, **common)
        else:
            self.rnn = nn.LSTM(inputs, c.hidden_size, **common)
        directions = 2 if c.bidirectional else 1
        self.head = nn.Linear(directions * c.hidden_size, c.num_classes)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean``/``std`` ``[F]`` (fitted on the training split)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Readout vector ``[B, D*H]`` for raw input ``x`` ``[B, T, F]``."""
        x = stack_frames((x - self.input_mean) / self.input_std, self.config.frame_stack)
        out, _ = self.rnn(x)
        return out.mean(dim=1) if self.config.readout == "mean" else self._last(out)

    def _last(self, out: torch.Tensor) -> torch.Tensor:
        if not self.config.bidirectional:
            return out[:, -1]
        hidden = self.config.hidden_size
        return torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def fast_cells(self):
        """The FastRNN/FastGRNN cells (empty for GRU/LSTM)."""
        return self.rnn.cells() if self.config.kind in ("fastgrnn", "fastrnn") else []

    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the deployed model stores, by name: the state dict, except that a GRU
        or LSTM is stored per gate with its biases summed (:func:`torch_rnn_gates`)."""
        if self.config.kind not in TORCH_GATES:
            return dict(self.state_dict())
        out = {"input_mean": self.input_mean, "input_std": self.input_std}
        out.update({f"rnn.{name}": t for name, t in torch_rnn_gates(self.rnn).items()})
        out.update({"head.weight": self.head.weight.detach(), "head.bias": self.head.bias.detach()})
        return out

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """The matrices hard thresholding acts on, by group: ``W`` (the input matrix or its
        low-rank factors), ``U`` (the recurrent one) and ``head``, as ``(state-dict name,
        parameter)``; FastRNN and FastGRNN only (empty for GRU/LSTM)."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for prefix, cell in zip(("rnn.cell.", "rnn.cell_reverse."), self.fast_cells(),
                                strict=False):
            for group, names in cell.matrix_parameter_names().items():
                groups.setdefault(group, []).extend((prefix + n, getattr(cell, n))
                                                    for n in names)
        if groups:
            groups["head"] = [("head.weight", self.head.weight)]
        return groups


def build_model(config: ModelConfig) -> SequenceClassifier:
    """A freshly initialised classifier for ``config`` (seed torch first for reproducibility)."""
    return SequenceClassifier(config)
