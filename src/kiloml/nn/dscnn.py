"""A 1-D depthwise-separable CNN classifier: the shape of the MLPerf Tiny keyword-spotting
reference DS-CNN (Zhang et al. 2017, "Hello Edge"), with time as the one axis and the features
as input channels.

normalisation → conv ``F → C`` (kernel ``k``, stride ``s``, zero padding ``(k - 1) // 2``) +
BatchNorm + ReLU → ``blocks`` × [depthwise conv (kernel 3, 'same' padding) + BatchNorm + ReLU,
pointwise 1×1 conv + BatchNorm + ReLU] → mean over time → linear head.

The convolutions have no bias of their own: each BatchNorm is folded into the convolution
before it for deployment (:meth:`ConvBNReLU1d.fold`), so what ships is one weight tensor and
one bias per convolution, and no running statistics (:meth:`DSCNN.deployed_tensors`).

State-dict keys: ``input_mean``/``input_std`` ``[F]``; ``stem.conv.weight`` ``[C, F, k]`` and
``stem.bn.*``; ``blocks.<i>.depthwise.conv.weight`` ``[C, 1, 3]``,
``blocks.<i>.pointwise.conv.weight`` ``[C, C, 1]`` and their ``bn.*``; ``head.weight``
``[classes, C]``, ``head.bias``.
"""

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kiloml.errors import KilomlError

DEPTHWISE_KERNEL = 3
#: Names of the normalisation buffers (stored int16 whatever the weight width).
NORMALIZATION = ("input_mean", "input_std")


@dataclass
class DSCNNConfig:
    """Everything needed to rebuild a :class:`DSCNN` (no weights)."""

    kind: str
    input_size: int
    num_classes: int
    channels: int = 32
    blocks: int = 3
    kernel_size: int = 5
    stride: int = 2

    def validate(self) -> "DSCNNConfig":
        if self.kind != "dscnn":
            raise KilomlError(f"a DS-CNN config needs kind 'dscnn', got {self.kind!r}")
        for name in ("input_size", "num_classes", "channels", "kernel_size", "stride"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if int(self.blocks) < 0:
            raise KilomlError("blocks must be 0 or a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        return self

    @property
    def padding(self) -> int:
        """Zero frames on each side of the first convolution's input."""
        return (self.kernel_size - 1) // 2

    def conv_steps(self, steps: int) -> int:
        """Time steps after the first convolution for ``steps`` input frames (the blocks keep
        them)."""
        return (steps + 2 * self.padding - self.kernel_size) // self.stride + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DSCNNConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


class ConvBNReLU1d(nn.Module):
    """``relu(bn(conv(x)))`` on ``[B, C_in, T]``: a bias-free ``nn.Conv1d`` and its BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))

    @torch.no_grad()
    def fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [C_out, C_in / groups, k], bias [C_out])`` in float64 of the one
        convolution equal to conv + BatchNorm in eval mode (running statistics):
        ``w' = w γ / sqrt(var + eps)``, ``b' = β - mean γ / sqrt(var + eps)``."""
        bn = self.bn
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = self.conv.weight.double() * scale[:, None, None]
        return weight, bn.bias.double() - bn.running_mean.double() * scale


class DepthwiseSeparableBlock(nn.Module):
    """Depthwise conv (kernel 3, 'same' padding) + BN + ReLU, then pointwise 1×1 conv + BN +
    ReLU, on ``[B, C, T]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = ConvBNReLU1d(channels, channels, DEPTHWISE_KERNEL,
                                      padding=DEPTHWISE_KERNEL // 2, groups=channels)
        self.pointwise = ConvBNReLU1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class DSCNN(nn.Module):
    """Classifies ``[B, T, F]`` sequences into ``C`` classes; returns logits ``[B, C]``."""

    def __init__(self, config: DSCNNConfig):
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        self.stem = ConvBNReLU1d(c.input_size, c.channels, c.kernel_size, c.stride, c.padding)
        self.blocks = nn.ModuleList(DepthwiseSeparableBlock(c.channels) for _ in range(c.blocks))
        self.head = nn.Linear(c.channels, c.num_classes)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean``/``std`` ``[F]`` (fitted on the training split)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def check_steps(self, steps: int) -> None:
        """A one-line error unless ``steps`` frames give at least one convolution output."""
        if self.config.conv_steps(steps) < 1:
            raise KilomlError(f"sequences of {steps} steps are shorter than the DS-CNN's first "
                              f"kernel ({self.config.kernel_size} with padding "
                              f"{self.config.padding})")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, C]`` for raw input ``x`` ``[B, T, F]``."""
        self.check_steps(x.shape[1])
        x = ((x - self.input_mean) / self.input_std).transpose(1, 2)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """None: the DS-CNN trains dense (the compression flags are an error for it)."""
        return {}

    def convolutions(self) -> list[tuple[str, ConvBNReLU1d]]:
        """``(path, module)`` of every convolution in execution order."""
        out = [("stem", self.stem)]
        for i, block in enumerate(self.blocks):
            out += [(f"blocks.{i}.depthwise", block.depthwise),
                    (f"blocks.{i}.pointwise", block.pointwise)]
        return out

    @torch.no_grad()
    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the deployed model stores, as stored: the normalisation, each
        convolution's folded weight and bias (the first one's weight ``[C, k * F]`` as the
        kernel reads it, pointwise ``[C, C]``, depthwise ``[C * 3]``, which is always dense and
        has a scale per channel, see :meth:`scale_counts`), and the head. BatchNorm parameters
        and running statistics are not among them."""
        out = {name: getattr(self, name).detach().double() for name in NORMALIZATION}
        for path, conv in self.convolutions():
            weight, bias = conv.fold()
            if conv.conv.groups > 1:
                weight = weight.reshape(-1)
            else:
                weight = weight.permute(0, 2, 1).reshape(weight.shape[0], -1)
            out[f"{path}.weight"], out[f"{path}.bias"] = weight, bias
        out["head.weight"] = self.head.weight.detach().double()
        out["head.bias"] = self.head.bias.detach().double()
        return out

    def scale_counts(self) -> dict[str, int]:
        """Tensors stored with one power-of-two scale per channel rather than one in all
        (the depthwise kernels, see :mod:`kiloml.ops.depthwise_conv1d`): ``{name: channels}``."""
        return {f"{path}.weight": self.config.channels for path, conv in self.convolutions()
                if conv.conv.groups > 1}

    def macs(self, steps: int) -> int:
        """Multiply-accumulates of one inference of ``steps`` frames, as the integer graph
        counts them: the normalisation (one per input value), every stored nonzero of a
        convolution per output step (padding included), the depthwise taps, one addition per
        value for the mean over time, and the head's nonzeros."""
        c = self.config
        out_steps = c.conv_steps(steps)
        tensors = self.deployed_tensors()
        total = steps * c.input_size
        for path, conv in self.convolutions():
            weight = tensors[f"{path}.weight"]
            total += out_steps * (weight.numel() if conv.conv.groups > 1
                                  else int(torch.count_nonzero(weight)))
        total += out_steps * c.channels
        return total + int(torch.count_nonzero(tensors["head.weight"]))


def build_dscnn(config: DSCNNConfig) -> DSCNN:
    """A freshly initialised DS-CNN for ``config`` (seed torch first for reproducibility)."""
    return DSCNN(config)
