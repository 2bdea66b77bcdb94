"""MobileNetV2 (Sandler et al. 2018) for small images, with a width multiplier and strides chosen
from the input resolution.

normalisation (per channel) → stem conv 3×3 ``C → 32·w`` + BatchNorm + ReLU6 → the inverted
residual stages of the paper's table (expansion ``t``, channels ``c·w``, blocks ``n``, stride
``s``): ``(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
(6, 160, 3, 2), (6, 320, 1, 1)`` → conv 1×1 to ``1280·w`` + BatchNorm + ReLU6 → mean over the
map → linear head. Channels are ``c·w`` rounded to a multiple of 8 (at least 8, never more than
10 % below ``c·w``), as in the paper's code; unlike it, the last conv also scales with ``w``
(1280 channels would dominate a kilobyte model).

An inverted residual block: expand 1×1 (``t·C_in`` channels, skipped when ``t = 1``) + BN +
ReLU6 → depthwise 3×3 (stride ``s``, zero padding 1) + BN + ReLU6 → project 1×1 + BN (linear)
→ ``+ input`` when ``s = 1`` and the channels match (the residual).

Strides from the resolution (:func:`stride_plan`): the network's stride-2 points are the stem
and the first block of the stages with ``s = 2``; starting from the earliest, they become stride
1 until the last map is at least ``MIN_FINAL``×``MIN_FINAL``. 96×96 keeps all five (3×3 at the
end, as the paper at 224×224 ends at 7×7); 32×32 drops the stem's and the 24-channel stage's
(4×4 at the end: the usual CIFAR variant).

Input: kiloml's image rows ``[B, H, W·C]`` (pixels interleaved, as ``data.cifar10`` holds
them) or ``[B, C, H, W]``; the configured size only (a one-line error otherwise).

Convolutions have no bias; each BatchNorm folds into the convolution before it
(:meth:`ConvBN.fold`), so the deployed tensors are one weight and one bias per convolution
(:meth:`MobileNetV2.deployed_tensors`).
"""

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from kiloml.errors import KilomlError

#: (expansion t, channels c, blocks n, stride s) of the paper's Table 2
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS, LAST_CHANNELS = 32, 1280
#: the last map is at least this many pixels on each side
MIN_FINAL = 3
#: channels are multiples of this
DIVISOR = 8
NORMALIZATION = ("input_mean", "input_std")


def make_divisible(value: float, divisor: int = DIVISOR) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), raised by
    ``divisor`` if that lost more than 10 % (the paper's code)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_size(size: int, stride: int) -> int:
    """Rows (or columns) after a 'same'-padded stride-``stride`` layer: ``ceil(size / stride)``."""
    return -(-size // stride)


def stride_plan(side: int, points: list[tuple[str, int, bool]]) -> dict[str, int]:
    """The stride of every down-sampling point ``(name, stride, removable)`` for images whose
    smaller side is ``side``: the earliest removable points become stride 1 while the last map
    would be smaller than ``MIN_FINAL``. A one-line error if even that is too small."""
    strides = {name: stride for name, stride, _ in points}

    def final() -> int:
        size = side
        for name, _, _ in points:
            size = conv_size(size, strides[name])
        return size

    for name, _, removable in points:
        if final() >= MIN_FINAL:
            break
        if removable:
            strides[name] = 1
    if final() < MIN_FINAL:
        raise KilomlError(f"images of {side} pixels per side are too small for this network "
                          f"(its last map would be {final()}x{final()}, at least "
                          f"{MIN_FINAL}x{MIN_FINAL} is needed)")
    return strides


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KilomlError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass
class MobileNetV2Config:
    """Everything needed to rebuild a :class:`MobileNetV2` (no weights). ``input_size`` is the
    features of one image row (``width · in_channels``, kiloml's row layout)."""

    kind: str
    input_size: int
    num_classes: int
    in_channels: int = 3
    height: int = 32
    width: int = 32
    width_mult: float = 1.0

    KIND = "mobilenetv2"

    def validate(self):
        if self.kind != self.KIND:
            raise KilomlError(f"a {self.KIND} config needs kind {self.KIND!r}, got {self.kind!r}")
        for name in ("in_channels", "height", "width", "num_classes"):
            _positive_int(getattr(self, name), name.replace("_", "-"))
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        if self.input_size != self.width * self.in_channels:
            raise KilomlError(f"input_size {self.input_size} is not width x channels "
                              f"({self.width} x {self.in_channels})")
        if not (isinstance(self.width_mult, int | float) and math.isfinite(self.width_mult)
                and 0 < self.width_mult <= 4):
            raise KilomlError(f"--width-mult must be a number in (0, 4], got {self.width_mult!r}")
        self.strides()  # images too small: a one-line error
        return self

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.in_channels, self.height, self.width

    def channels(self, base: int) -> int:
        return make_divisible(base * self.width_mult)

    def stride_points(self) -> list[tuple[str, int, bool]]:
        """The down-sampling points in order: the stem and the stages with stride 2."""
        return [("stem", 2, True)] + [(f"stage{i}", s, True) for i, (_, _, _, s)
                                      in enumerate(STAGES) if s > 1]

    def strides(self) -> dict[str, int]:
        """The stride of the stem and of every stage (``stage<i>``) at this resolution."""
        planned = stride_plan(min(self.height, self.width), self.stride_points())
        return {"stem": planned["stem"], **{f"stage{i}": planned.get(f"stage{i}", s)
                                            for i, (_, _, _, s) in enumerate(STAGES)}}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


class ConvBN(nn.Module):
    """``relu6(bn(conv(x)))`` (or without ReLU6: ``activation=False``) on ``[B, C, H, W]``: a
    bias-free ``nn.Conv2d`` with 'same' zero padding ``k // 2`` and its BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, groups: int = 1, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return torch.clamp(x, 0.0, 6.0) if self.activation else x

    @torch.no_grad()
    def fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [C_out, C_in / groups, k, k], bias [C_out])`` in float64 of the one
        convolution equal to conv + BatchNorm in eval mode: ``w' = w γ / sqrt(var + eps)``,
        ``b' = β − mean γ / sqrt(var + eps)``."""
        bn = self.bn
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = self.conv.weight.double() * scale[:, None, None, None]
        return weight, bn.bias.double() - bn.running_mean.double() * scale

    def macs(self, out_height: int, out_width: int) -> int:
        """Multiply-accumulates of one image: every weight once per output pixel."""
        return out_height * out_width * self.conv.weight.numel()


class InvertedResidual(nn.Module):
    """Expand 1×1 (skipped when ``expansion == 1``) → depthwise 3×3 stride ``stride`` → project
    1×1 (linear), plus the input when ``stride == 1`` and ``in_channels == out_channels``.

    Shapes: ``[B, C_in, H, W] -> [B, C_out, ceil(H / s), ceil(W / s)]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBN(in_channels, hidden) if expansion != 1 else None
        self.depthwise = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, activation=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y

    def convolutions(self) -> list[tuple[str, ConvBN]]:
        names = ("expand", "depthwise", "project")
        return [(name, getattr(self, name)) for name in names if getattr(self, name) is not None]


def inverted_residual_stages(config: MobileNetV2Config, in_channels: int, first_stage: int,
                             strides: dict[str, int]) -> tuple[nn.Sequential, int]:
    """The blocks of ``STAGES[first_stage:]`` after a map of ``in_channels``, and their output
    channels."""
    blocks = []
    for i, (t, c, n, _) in enumerate(STAGES[first_stage:], start=first_stage):
        out = config.channels(c)
        for j in range(n):
            blocks.append(InvertedResidual(in_channels, out, strides[f"stage{i}"] if j == 0
                                           else 1, t))
            in_channels = out
    return nn.Sequential(*blocks), in_channels


@dataclass(frozen=True)
class LayerShape:
    """One step of a schedule: its maps ``(C, H, W)``, the values that must stay alive beside
    them while it runs (a residual block's input; one patch of a fused step), scratch counted in
    bytes (int16 RNN states) and its MACs for one image."""

    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    kept: int
    macs: int
    scratch_bytes: int = 0

    def live_bytes(self, value_bytes: int = 1) -> int:
        values = math.prod(self.input) + math.prod(self.output) + self.kept
        return values * value_bytes + self.scratch_bytes


class MobileNetV2(nn.Module):
    """Classifies images ``[B, H, W·C]`` (or ``[B, C, H, W]``) into ``C`` classes; returns logits
    ``[B, classes]``."""

    def __init__(self, config: MobileNetV2Config):
        super().__init__()
        self.config = c = config.validate()
        strides = c.strides()
        self.register_buffer("input_mean", torch.zeros(c.in_channels))
        self.register_buffer("input_std", torch.ones(c.in_channels))
        stem = c.channels(STEM_CHANNELS)
        self.stem = ConvBN(c.in_channels, stem, 3, strides["stem"])
        self._build_body(stem, strides)
        self.last = ConvBN(self.body_channels, make_divisible(LAST_CHANNELS * c.width_mult))
        self.head = nn.Linear(self.last.conv.out_channels, c.num_classes)

    def _build_body(self, stem_channels: int, strides: dict[str, int]) -> None:
        self.blocks, self.body_channels = inverted_residual_stages(self.config, stem_channels, 0,
                                                                   strides)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-channel ``mean``/``std`` ``[C]`` (fitted on the training split)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as normalised ``[B, C, H, W]``; a one-line error for any other shape."""
        c, h, w = self.config.image_shape
        if x.dim() == 3 and tuple(x.shape[1:]) == (h, w * c):
            x = x.reshape(x.shape[0], h, w, c).permute(0, 3, 1, 2)
        elif not (x.dim() == 4 and tuple(x.shape[1:]) == (c, h, w)):
            raise KilomlError(f"{self.config.kind} takes images [B, {c}, {h}, {w}] (or rows "
                              f"[B, {h}, {w * c}]); got {list(x.shape)}")
        return (x - self.input_mean[:, None, None]) / self.input_std[:, None, None]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The map after the stem and the stages, from normalised images."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.body(self.images(x)))
        return self.head(x.mean(dim=(2, 3)))

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """None: trained dense (the compression options are an error for it)."""
        return {}

    def convolutions(self) -> list[tuple[str, ConvBN]]:
        """``(path, module)`` of every convolution in execution order."""
        out = [("stem", self.stem)]
        for i, block in enumerate(self.blocks):
            out += [(f"blocks.{i}.{name}", conv) for name, conv in block.convolutions()]
        return out + [("last", self.last)]

    @torch.no_grad()
    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """What the deployed model stores: the normalisation, every convolution's folded weight
        and bias, and the head (no BatchNorm parameters or statistics)."""
        out = {name: getattr(self, name).detach().double() for name in NORMALIZATION}
        for path, conv in self.convolutions():
            out[f"{path}.weight"], out[f"{path}.bias"] = conv.fold()
        out.update(self._extra_deployed())
        out["head.weight"] = self.head.weight.detach().double()
        out["head.bias"] = self.head.bias.detach().double()
        return out

    def _extra_deployed(self) -> dict[str, torch.Tensor]:
        return {}

    # -- the layer-by-layer schedule ------------------------------------------------------
    @torch.no_grad()
    def layer_shapes(self) -> list[LayerShape]:
        """Every layer of one image in execution order, from one forward pass of a batch of 1:
        maps ``(C, H, W)``, what stays alive beside them (a residual block's input while its
        inner layers run) and MACs (convolutions: every weight per output pixel; the mean: one
        per value; the head: its weights)."""
        records: list[tuple[str, tuple, tuple, nn.Module]] = []
        hooks = []
        for path, module in self._shaped_modules():
            hooks.append(module.register_forward_hook(
                lambda m, i, o, path=path: records.append(
                    (path, tuple(i[0].shape[1:]), tuple(o.shape[1:]), m))))
        training = self.training
        try:
            self.eval()
            self(torch.zeros(1, *self.config.image_shape))
        finally:
            self.train(training)
            for hook in hooks:
                hook.remove()
        layers, block_input = [], {}
        for path, shape_in, shape_out, module in records:
            kept = 0
            if path.startswith("blocks."):
                index = int(path.split(".")[1])
                first = index not in block_input
                block_input.setdefault(index, shape_in)  # the block's input
                if self.blocks[index].residual and not first:
                    kept = math.prod(block_input[index])
            layers.append(LayerShape(path, shape_in, shape_out, kept,
                                     self._layer_macs(module, shape_out)))
        last = layers[-1].output
        layers.append(LayerShape("mean", last, (last[0],), 0, math.prod(last)))
        layers.append(LayerShape("head", (last[0],), (self.config.num_classes,), 0,
                                 self.head.weight.numel()))
        return layers

    def _shaped_modules(self) -> list[tuple[str, nn.Module]]:
        return self.convolutions()

    def _layer_macs(self, module: nn.Module, shape_out: tuple) -> int:
        return module.macs(shape_out[1], shape_out[2])

    def macs(self, steps: int | None = None) -> int:
        """Multiply-accumulates of one image (``steps`` is ignored: the size is the config's)."""
        return sum(layer.macs for layer in self.layer_shapes())

    def peak_activation_bytes(self, value_bytes: int = 1) -> tuple[int, str]:
        """``(bytes, layer)``: the largest sum over one layer of its input and output maps
        (plus a residual block's input while its inner layers run), for one image with
        ``value_bytes`` per value (int8: 1), layer-by-layer schedule."""
        return peak_bytes(self.layer_shapes(), value_bytes)


def peak_bytes(layers: list[LayerShape], value_bytes: int = 1) -> tuple[int, str]:
    """``(bytes, step)`` of the step of ``layers`` with the most live bytes."""
    layer = max(layers, key=lambda item: item.live_bytes(value_bytes))
    return layer.live_bytes(value_bytes), layer.name


def build_mobilenetv2(config: MobileNetV2Config) -> MobileNetV2:
    """A freshly initialised MobileNetV2 for ``config`` (seed torch first)."""
    return MobileNetV2(config)
