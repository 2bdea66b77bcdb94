"""EMI-FastGRNN (Dwivedi, Kusupati et al., NeurIPS 2018, "Multiple Instance Learning for
Efficient Sequential Data Classification on Resource-constrained Devices"): a FastGRNN that
classifies an *instance* (a short window of a longer sequence) into the data's classes plus a
noise class, with logits after every step, so that inference can stop at the first step whose
top probability reaches a threshold.

``step_logits(x [B, W, F]) -> [B, W, C+1]`` (normalisation → FastGRNN → the head at every
step; class ``C`` is the noise class); ``forward(x) -> [B, C+1]``, the last step's. The bags,
relabelling rounds and early-exit inference are in :mod:`kiloml.train.emi`.
"""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.fastrnn import FastGRNN
from kiloml.nn.nonlinearity import check_nonlinearity


@dataclass
class EMIConfig:
    """The instance model and the EMI procedure's settings. ``num_classes`` counts the data's
    classes (the head has one more output, the noise class)."""

    kind: str
    input_size: int
    num_classes: int
    hidden_size: int = 32
    w_rank: int | None = None
    u_rank: int | None = None
    gate_nonlinearity: str = "sigmoid"
    update_nonlinearity: str = "tanh"
    instance_width: int = 48
    instance_stride: int = 16
    keep_instances: int = 3
    rounds: int = 2
    exit_threshold: float = 0.95

    def validate(self) -> "EMIConfig":
        for name in ("input_size", "num_classes", "hidden_size", "instance_width",
                     "instance_stride", "keep_instances"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        if self.rounds < 0:
            raise KilomlError("rounds must be 0 or more")
        if not 0.0 < self.exit_threshold <= 1.0:
            raise KilomlError(f"exit-threshold must be in (0, 1], got {self.exit_threshold}")
        check_nonlinearity(self.gate_nonlinearity)
        check_nonlinearity(self.update_nonlinearity)
        for name, limit in (("w_rank", min(self.input_size, self.hidden_size)),
                            ("u_rank", self.hidden_size)):
            rank = getattr(self, name)
            if rank is not None and not 1 <= rank <= limit:
                raise KilomlError(f"{name.replace('_', '-')} must be between 1 and {limit} "
                                  f"for these sizes, got {rank}")
        return self

    @property
    def noise_class(self) -> int:
        return self.num_classes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EMIConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


class EMIFastGRNN(nn.Module):
    """FastGRNN instance classifier with logits at every step (see the module docstring)."""

    def __init__(self, config: EMIConfig):
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        self.rnn = FastGRNN(c.input_size, c.hidden_size, batch_first=True,
                            gate_nonlinearity=c.gate_nonlinearity,
                            update_nonlinearity=c.update_nonlinearity, w_rank=c.w_rank,
                            u_rank=c.u_rank)
        self.head = nn.Linear(c.hidden_size, c.num_classes + 1)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean``/``std`` ``[F]`` (fitted on the training split)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def step_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after every step ``[B, W, C+1]`` for raw instances ``x`` ``[B, W, F]``."""
        out, _ = self.rnn((x - self.input_mean) / self.input_std)
        return self.head(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step_logits(x)[:, -1]

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """``W``, ``U`` (the FastGRNN's matrices or low-rank factors) and ``head``."""
        cell = self.rnn.cell
        groups = {group: [(f"rnn.cell.{n}", getattr(cell, n)) for n in names]
                  for group, names in cell.matrix_parameter_names().items()}
        groups["head"] = [("head.weight", self.head.weight)]
        return groups

    def macs(self, steps: int) -> int:
        """Multiply-accumulates of one instance of ``steps`` steps read to the end, counted
        like the recurrent classifiers' (the head once)."""
        cell = self.rnn.cell
        names = cell.matrix_parameter_names()
        per_step = self.config.input_size + 3 * self.config.hidden_size + sum(
            int(torch.count_nonzero(getattr(cell, n))) for n in names["W"] + names["U"])
        return steps * per_step + int(torch.count_nonzero(self.head.weight))


def exit_steps(step_logits, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """``(class [M], steps read [M])`` of instances from their logits after every step
    ``[M, W, C]`` (float or integer): the first step whose top logit leads the runner-up by at
    least ``margin`` decides (its first arg-max), else the last step. With
    ``margin = ln(p / (1 - p))`` this is the top class's probability against the runner-up
    alone, ``p_top / (p_top + p_second) >= p``: for two classes the softmax test
    ``p_top >= p``, for more a test that is reached no later than it."""
    logits = np.asarray(step_logits)
    top2 = np.sort(logits, axis=2)[..., -2:]
    reached = (top2[..., 1] - top2[..., 0]) >= margin
    reached[:, -1] = True
    stop = reached.argmax(axis=1)
    return logits[np.arange(len(stop)), stop].argmax(axis=1), stop + 1


def float_margin(threshold: float) -> float:
    """The logit margin ``ln(p / (1 - p))`` of the exit threshold ``p`` (infinite at 1)."""
    return math.inf if threshold >= 1.0 else math.log(threshold / (1.0 - threshold))


def longest_run(classes, noise: int) -> int:
    """A bag's class from its instances' classes ``[I]``: the non-noise class with the longest
    run of consecutive instances predicting it (on ties the run that ends first); ``noise``
    when every instance predicts noise."""
    out, best, run = noise, 0, 0
    for i, cls in enumerate(classes):
        run = run + 1 if i and cls == classes[i - 1] else 1
        if cls != noise and run > best:
            best, out = run, int(cls)
    return out


def build_emi_fastgrnn(config: EMIConfig) -> EMIFastGRNN:
    """A freshly initialised EMI-FastGRNN for ``config`` (seed torch first)."""
    return EMIFastGRNN(config)
