"""ShaRNN (Dennis et al., NeurIPS 2019, "Shallow RNNs"): a shared lower RNN reads each brick of
``k`` consecutive steps from a zero state; an upper RNN reads the bricks' last states.

``x`` ``[B, T, F]`` (``T`` a multiple of ``k``) → normalisation → bricks ``[B*T/k, k, F]`` (one
batched run of the lower RNN, no loop over bricks) → summaries ``[B, T/k, H1]`` → upper RNN →
readout ``[B, H2]`` (its last state, or the mean over the bricks) → head → logits ``[B, C]``.
Both RNNs are any kiloml cell (FastGRNN, FastRNN, GRU, LSTM); the FastGRNN/FastRNN matrices of
both belong to the sparsity groups ``W`` and ``U`` (and the head to ``head``), so hard
thresholding compresses both levels. On a sliding window with a hop of ``k`` steps, every brick
but the newest is one the previous window already summarised: the amortised cost per window is
one brick of the lower RNN and ``T/k`` steps of the upper one.

State-dict keys: ``input_mean``/``input_std`` ``[F]``, ``lower.*`` and ``upper.*`` (as the
FastGRNN/FastRNN layers or ``nn.GRU``/``nn.LSTM`` name them), ``head.weight`` ``[C, H2]`` and
``head.bias`` ``[C]``.
"""

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.classifier import MODEL_KINDS, READOUTS, TORCH_GATES, torch_rnn_gates
from kiloml.nn.fastrnn import FastGRNN, FastRNN
from kiloml.nn.nonlinearity import check_nonlinearity

FAST_CELLS = ("fastgrnn", "fastrnn")
#: Elementwise multiplies per hidden unit and step of each cell's state update.
ELEMENTWISE = {"fastgrnn": 3, "fastrnn": 2, "gru": 3, "lstm": 3}


@dataclass
class ShaRNNConfig:
    """Everything needed to rebuild a ShaRNN (no weights). ``w_rank``/``u_rank`` apply to the
    FastGRNN/FastRNN cells of both levels."""

    kind: str
    input_size: int
    num_classes: int
    brick_size: int = 16
    cell: str = "fastgrnn"
    hidden_size: int = 16
    upper_cell: str = "fastgrnn"
    upper_hidden_size: int = 32
    w_rank: int | None = None
    u_rank: int | None = None
    gate_nonlinearity: str = "sigmoid"
    update_nonlinearity: str = "tanh"
    readout: str = "last"
    zeta_init: float = 1.0
    nu_init: float = -4.0
    bias_gate_init: float = 1.0

    def validate(self) -> "ShaRNNConfig":
        for name in ("cell", "upper_cell"):
            if getattr(self, name) not in MODEL_KINDS:
                raise KilomlError(f"unknown {name.replace('_', ' ')} {getattr(self, name)!r}; "
                                  f"choose one of {', '.join(MODEL_KINDS)}")
        if self.readout not in READOUTS:
            raise KilomlError(f"unknown readout {self.readout!r}; "
                              f"choose one of {', '.join(READOUTS)}")
        for name in ("input_size", "num_classes", "brick_size", "hidden_size",
                     "upper_hidden_size"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        check_nonlinearity(self.gate_nonlinearity)
        check_nonlinearity(self.update_nonlinearity)
        levels = [(inputs, hidden) for kind, inputs, hidden in (
            (self.cell, self.input_size, self.hidden_size),
            (self.upper_cell, self.hidden_size, self.upper_hidden_size)) if kind in FAST_CELLS]
        if (self.w_rank or self.u_rank) and not levels:
            raise KilomlError("--w-rank/--u-rank apply to fastgrnn and fastrnn cells")
        for name, limit in (("w_rank", min([min(i, h) for i, h in levels], default=0)),
                            ("u_rank", min([h for _, h in levels], default=0))):
            rank = getattr(self, name)
            if rank is not None and not 1 <= rank <= limit:
                raise KilomlError(f"{name.replace('_', '-')} must be between 1 and {limit} "
                                  f"for these sizes, got {rank}")
        return self

    def check_steps(self, steps: int) -> None:
        """One-line error unless ``steps`` is a whole number of bricks."""
        if steps < self.brick_size or steps % self.brick_size:
            raise KilomlError(f"--brick-size {self.brick_size} needs a sequence length that is "
                              f"a positive multiple of it, got {steps} steps")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ShaRNNConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


def make_rnn(c: ShaRNNConfig, kind: str, inputs: int, hidden: int) -> nn.Module:
    """One batch-first, unidirectional recurrent layer of ``kind``."""
    if kind == "fastgrnn":
        return FastGRNN(inputs, hidden, batch_first=True, gate_nonlinearity=c.gate_nonlinearity,
                        update_nonlinearity=c.update_nonlinearity, w_rank=c.w_rank,
                        u_rank=c.u_rank, zeta_init=c.zeta_init, nu_init=c.nu_init,
                        bias_gate_init=c.bias_gate_init)
    if kind == "fastrnn":
        return FastRNN(inputs, hidden, batch_first=True,
                       update_nonlinearity=c.update_nonlinearity, w_rank=c.w_rank,
                       u_rank=c.u_rank)
    return (nn.GRU if kind == "gru" else nn.LSTM)(inputs, hidden, batch_first=True)


class ShaRNN(nn.Module):
    """Classifies ``[B, T, F]`` sequences (``T`` a multiple of ``brick_size``) into ``C``
    classes; returns logits ``[B, C]`` (see the module docstring)."""

    def __init__(self, config: ShaRNNConfig):
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        self.lower = make_rnn(c, c.cell, c.input_size, c.hidden_size)
        self.upper = make_rnn(c, c.upper_cell, c.hidden_size, c.upper_hidden_size)
        self.head = nn.Linear(c.upper_hidden_size, c.num_classes)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean``/``std`` ``[F]`` (fitted on the training split)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def summaries(self, x: torch.Tensor) -> torch.Tensor:
        """The lower RNN's last state of every brick ``[B, T/k, H1]`` for raw ``x``
        ``[B, T, F]``: all bricks of the batch in one run."""
        batch, steps, features = x.shape
        self.config.check_steps(steps)
        k = self.config.brick_size
        bricks = ((x - self.input_mean) / self.input_std).reshape(batch * (steps // k), k,
                                                                   features)
        out, _ = self.lower(bricks)
        return out[:, -1].reshape(batch, steps // k, -1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Readout vector ``[B, H2]`` for raw input ``x`` ``[B, T, F]``."""
        out, _ = self.upper(self.summaries(x))
        return out.mean(dim=1) if self.config.readout == "mean" else out[:, -1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def levels(self) -> tuple[tuple[str, str, nn.Module], ...]:
        """``(state-dict prefix, cell kind, layer)`` of the lower and the upper RNN."""
        return (("lower", self.config.cell, self.lower),
                ("upper", self.config.upper_cell, self.upper))

    def fast_cells(self) -> list[tuple[str, nn.Module]]:
        """``(state-dict prefix, cell)`` of the FastRNN/FastGRNN cells of both levels."""
        return [(f"{prefix}.cell.", rnn.cell) for prefix, kind, rnn in self.levels()
                if kind in FAST_CELLS]

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """``W`` and ``U``: the input and recurrent matrices (or their low-rank factors) of
        the FastGRNN/FastRNN cells of both levels; ``head``. Empty when neither level is a
        FastGRNN/FastRNN (GRU/LSTM train dense)."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for prefix, cell in self.fast_cells():
            for group, names in cell.matrix_parameter_names().items():
                groups.setdefault(group, []).extend((prefix + n, getattr(cell, n))
                                                    for n in names)
        if groups:
            groups["head"] = [("head.weight", self.head.weight)]
        return groups

    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the deployed model stores, by name: a GRU/LSTM level per gate
        (:func:`torch_rnn_gates`), and the upper level's normalisation (identity: the
        recurrent ops normalise what they read)."""
        out = {"input_mean": self.input_mean, "input_std": self.input_std}
        for prefix, kind, rnn in self.levels():
            if kind in TORCH_GATES:
                out.update({f"{prefix}.{n}": t for n, t in torch_rnn_gates(rnn).items()})
            else:
                out.update({f"{prefix}.{n}": t.detach() for n, t in rnn.state_dict().items()})
        hidden = self.config.hidden_size
        out["upper.input_mean"] = torch.zeros(hidden)
        out["upper.input_std"] = torch.ones(hidden)
        out["head.weight"], out["head.bias"] = self.head.weight.detach(), self.head.bias.detach()
        return out

    def macs(self, steps: int) -> int:
        """Multiply-accumulates of one ``[steps, F]`` sequence, counted like the recurrent
        classifiers' (stored nonzeros per step, the state update's elementwise multiplies, one
        per input feature for normalisation, the head once)."""
        c = self.config
        self.config.check_steps(steps)
        total = 0
        for (_, kind, rnn), level_steps, inputs, hidden in (
                (self.levels()[0], steps, c.input_size, c.hidden_size),
                (self.levels()[1], steps // c.brick_size, c.hidden_size,
                 c.upper_hidden_size)):
            if kind in FAST_CELLS:
                names = rnn.cell.matrix_parameter_names()
                weights = [getattr(rnn.cell, n) for n in names["W"] + names["U"]]
            else:
                weights = [t for n, t in torch_rnn_gates(rnn).items() if n[:2] in ("W_", "U_")]
            matrices = sum(int(torch.count_nonzero(t)) for t in weights)
            readout = hidden if rnn is self.upper and c.readout == "mean" else 0
            total += level_steps * (inputs + matrices + ELEMENTWISE[kind] * hidden + readout)
        return total + int(torch.count_nonzero(self.head.weight))


def build_sharnn(config: ShaRNNConfig) -> ShaRNN:
    """A freshly initialised ShaRNN for ``config`` (seed torch first for reproducibility)."""
    return ShaRNN(config)
