"""An MSC-RNN-style cascade (Saha, Kusupati et al., BuildSys 2019, "MSC-RNN: multi-scale,
cascaded RNNs"): a cheap lower tier decides "nothing" against "something"; an upper tier
classifies the event classes and runs only on the sequences where the lower tier fires.

``x`` ``[B, T, F]`` → lower tier (a FastGRNN classifier with 2 outputs: nothing, something)
→ ``p`` ``[B]``, its softmax probability of "something" → the rows with ``p >= threshold``
(and only those) go through the upper tier (a FastGRNN classifier over the ``C - 1`` event
classes, the data's classes without the noise class) → logits ``[B, C]``.

The logits state the decision: a row the upper tier read holds its log-softmax at the event
classes and ``REJECTED`` (-30) at the noise class; a row it did not read holds 0 at the noise
class and ``REJECTED`` elsewhere. Every forward adds the rows the upper tier read to
``upper_calls`` (and the rows seen to ``calls``), so the fraction of upper-tier calls is
``upper_calls / calls``. Training (each tier on its own labels, the threshold chosen on the
validation split) is :mod:`kiloml.train.cascade`.

State-dict keys: ``lower.*`` and ``upper.*``, each a
:class:`kiloml.nn.classifier.SequenceClassifier`'s (both normalise the input alike).
"""

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.classifier import READOUTS, ModelConfig, SequenceClassifier
from kiloml.nn.nonlinearity import check_nonlinearity

#: The logit of the classes a cascade did not decide for (a log-probability of about 1e-13).
REJECTED = -30.0


@dataclass
class CascadeConfig:
    """Both tiers and the threshold (``None`` until training chose it on validation).
    ``w_rank``/``u_rank`` apply to both tiers' FastGRNN cells, capped at each tier's sizes."""

    kind: str
    input_size: int
    num_classes: int
    noise_class: int = 0
    lower_hidden_size: int = 8
    upper_hidden_size: int = 32
    threshold: float | None = None
    w_rank: int | None = None
    u_rank: int | None = None
    gate_nonlinearity: str = "sigmoid"
    update_nonlinearity: str = "tanh"
    readout: str = "last"
    frame_stack: int = 1

    def validate(self) -> "CascadeConfig":
        for name in ("input_size", "lower_hidden_size", "upper_hidden_size", "frame_stack"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 3:
            raise KilomlError("a cascade needs a noise class and at least 2 event classes")
        if not 0 <= self.noise_class < self.num_classes:
            raise KilomlError(f"noise class {self.noise_class} is not one of the "
                              f"{self.num_classes} classes")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise KilomlError(f"cascade threshold must be in (0, 1), got {self.threshold}")
        if self.readout not in READOUTS:
            raise KilomlError(f"unknown readout {self.readout!r}; "
                              f"choose one of {', '.join(READOUTS)}")
        check_nonlinearity(self.gate_nonlinearity)
        check_nonlinearity(self.update_nonlinearity)
        for name in ("w_rank", "u_rank"):
            rank = getattr(self, name)
            if rank is not None and rank < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be at least 1, got {rank}")
        return self

    @property
    def event_classes(self) -> list[int]:
        """The data's classes the upper tier tells apart, in order (all but the noise class)."""
        return [c for c in range(self.num_classes) if c != self.noise_class]

    def tier(self, name: str) -> ModelConfig:
        """The :class:`ModelConfig` of the ``"lower"`` or ``"upper"`` tier."""
        hidden = self.lower_hidden_size if name == "lower" else self.upper_hidden_size
        inputs = self.input_size * self.frame_stack
        return ModelConfig(
            kind="fastgrnn", input_size=self.input_size,
            num_classes=2 if name == "lower" else self.num_classes - 1, hidden_size=hidden,
            w_rank=None if self.w_rank is None else min(self.w_rank, inputs, hidden),
            u_rank=None if self.u_rank is None else min(self.u_rank, hidden),
            gate_nonlinearity=self.gate_nonlinearity,
            update_nonlinearity=self.update_nonlinearity, readout=self.readout,
            frame_stack=self.frame_stack).validate()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CascadeConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


class Cascade(nn.Module):
    """Lower tier → (only where it fires) upper tier; see the module docstring."""

    def __init__(self, config: CascadeConfig):
        super().__init__()
        self.config = c = config.validate()
        self.lower = SequenceClassifier(c.tier("lower"))
        self.upper = SequenceClassifier(c.tier("upper"))
        self.register_buffer("events", torch.tensor(c.event_classes, dtype=torch.long),
                             persistent=False)
        self.calls = 0
        self.upper_calls = 0

    @property
    def input_mean(self) -> torch.Tensor:
        return self.lower.input_mean

    @property
    def input_std(self) -> torch.Tensor:
        return self.lower.input_std

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean``/``std`` ``[F]`` in both tiers."""
        self.lower.set_normalization(mean, std)
        self.upper.set_normalization(mean, std)

    def event_probability(self, x: torch.Tensor) -> torch.Tensor:
        """The lower tier's probability of "something" ``[B]`` for raw ``x`` ``[B, T, F]``."""
        return torch.softmax(self.lower(x), dim=1)[:, 1]

    def fires(self, p: torch.Tensor) -> torch.Tensor:
        """Rows ``[B]`` (bool) whose probability ``p`` reaches the threshold."""
        if self.config.threshold is None:
            raise KilomlError("the cascade's threshold is not set (it is chosen on the "
                              "validation split when training)")
        return p >= self.config.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fired = self.fires(self.event_probability(x))
        logits = torch.full((len(x), self.config.num_classes), REJECTED, dtype=x.dtype)
        logits[~fired, self.config.noise_class] = 0.0
        self.calls += len(x)
        if fired.any():
            rows = fired.nonzero()[:, 0]
            self.upper_calls += len(rows)
            upper = torch.log_softmax(self.upper(x[rows]), dim=1)
            logits[rows[:, None], self.events[None, :]] = upper.to(logits.dtype)
        return logits

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Both tiers' ``W``, ``U`` and ``head`` groups, named ``lower.*`` / ``upper.*``."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for prefix, tier in (("lower.", self.lower), ("upper.", self.upper)):
            for group, members in tier.sparsity_groups().items():
                groups.setdefault(group, []).extend((prefix + n, p) for n, p in members)
        return groups

    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """Both tiers' tensors, named ``lower.*`` / ``upper.*``."""
        return {f"{prefix}.{name}": tensor.detach()
                for prefix, tier in (("lower", self.lower), ("upper", self.upper))
                for name, tensor in tier.state_dict().items()}

    def tiers(self) -> tuple[SequenceClassifier, SequenceClassifier]:
        """``(lower, upper)``; a sequence's MACs are both tiers' when the lower fires
        (:func:`kiloml.compress.size.macs_per_inference`)."""
        return self.lower, self.upper


def build_cascade(config: CascadeConfig) -> Cascade:
    """A freshly initialised cascade for ``config`` (seed torch first)."""
    return Cascade(config)
