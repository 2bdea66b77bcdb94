"""RNNPool-MobileNetV2 (Saha et al., NeurIPS 2020, Sec. 4): MobileNetV2 with its first stages
replaced by one RNNPoolLayer.

normalisation → stem conv 3×3 + BatchNorm + ReLU6 (as in :mod:`kiloml.nn.mobilenetv2`) →
RNNPool over ``patch × patch`` patches every ``stride`` pixels (default 6 and 4; h1 = h2 =
``hidden``, ``4·hidden`` output channels) on the stem's map zero-padded 'same'-style (output
``ceil(side / stride)``) → MobileNetV2's stages from the 64-channel one on (the 16-, 24- and
32-channel stages, which down-sample by 4 at full resolution, are what RNNPool replaces) →
conv 1×1 to ``1280·w`` → mean → linear head.

Strides follow MobileNetV2's rule (:func:`kiloml.nn.mobilenetv2.stride_plan`) with RNNPool a
fixed stride-``stride`` point: 96×96 keeps the stem's stride 2 (48×48 → RNNPool → 12×12 → 3×3
at the end); 32×32 also drops the 64-channel stage's (32×32 → 8×8 → 4×4).

Two schedules are accounted: layer by layer (:meth:`MobileNetV2.layer_shapes`: the stem's whole
map, then RNNPool) and RNNPool's patch by patch (:meth:`RNNPoolMobileNetV2.patch_schedule`):
the stem and RNNPool run per patch, so only the input image, one patch of the stem's map, the
RNN summaries (int16) and RNNPool's output map are alive; the stem is recomputed where patches
overlap, which the MACs of that schedule count.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.mobilenetv2 import (
    STAGES,
    LayerShape,
    MobileNetV2,
    MobileNetV2Config,
    _positive_int,
    conv_size,
    inverted_residual_stages,
    peak_bytes,
    stride_plan,
)
from kiloml.nn.rnnpool import RNNPoolLayer

#: the MobileNetV2 stages RNNPool replaces (16, 24 and 32 channels)
REPLACED_STAGES = 3
#: bytes of one RNN state value in kiloml's integer RNN ops (int16)
STATE_BYTES = 2


@dataclass
class RNNPoolMobileNetV2Config(MobileNetV2Config):
    """A :class:`MobileNetV2Config` plus RNNPool's patch (square, pixels of the stem's map),
    stride and hidden size (h1 = h2; default: half the channels of the 32-channel stage it
    replaces, so its ``4·h2`` outputs are twice that stage's: the paper's 16 at width 1)."""

    rnnpool_patch: int = 6
    rnnpool_stride: int = 4
    rnnpool_hidden: int | None = None

    KIND = "rnnpool-mobilenetv2"

    def validate(self):
        _positive_int(self.rnnpool_patch, "--rnnpool-patch")
        _positive_int(self.rnnpool_stride, "--rnnpool-stride")
        if self.rnnpool_patch < self.rnnpool_stride:
            raise KilomlError(f"--rnnpool-patch {self.rnnpool_patch} is smaller than the stride "
                              f"{self.rnnpool_stride}: pixels between patches would be skipped")
        super().validate()
        if self.rnnpool_hidden is None:
            self.rnnpool_hidden = self.channels(STAGES[REPLACED_STAGES - 1][1]) // 2
        _positive_int(self.rnnpool_hidden, "--rnnpool-hidden")
        rows, cols = self.stem_map()
        if self.rnnpool_patch > min(rows, cols):
            raise KilomlError(f"RNNPool patch {self.rnnpool_patch}x{self.rnnpool_patch} is larger "
                              f"than the {rows}x{cols} map after the stem ({self.height}x"
                              f"{self.width} images); use a smaller --rnnpool-patch")
        return self

    def stride_points(self) -> list[tuple[str, int, bool]]:
        return [("stem", 2, True), ("rnnpool", self.rnnpool_stride, False)] + [
            (f"stage{i}", s, True) for i, (_, _, _, s) in enumerate(STAGES)
            if i >= REPLACED_STAGES and s > 1]

    def strides(self) -> dict[str, int]:
        planned = stride_plan(min(self.height, self.width), self.stride_points())
        return {**{f"stage{i}": planned.get(f"stage{i}", s)
                   for i, (_, _, _, s) in enumerate(STAGES)}, **planned}

    def stem_map(self) -> tuple[int, int]:
        """Rows and columns of the stem's output map."""
        stride = self.strides()["stem"]
        return conv_size(self.height, stride), conv_size(self.width, stride)


def same_padding(size: int, patch: int, stride: int) -> tuple[int, int]:
    """Zeros ``(before, after)`` on one axis so that patches every ``stride`` give
    ``ceil(size / stride)`` outputs (TensorFlow's 'same')."""
    total = max(0, (conv_size(size, stride) - 1) * stride + patch - size)
    return total // 2, total - total // 2


def covered(size: int, patch: int, stride: int) -> int:
    """Pixels of a ``size``-long axis summed over every patch (overlaps counted each time,
    padding not), for the stem recomputed per patch."""
    before, _ = same_padding(size, patch, stride)
    starts = range(-before, -before + conv_size(size, stride) * stride, stride)
    return sum(min(start + patch, size) - max(start, 0) for start in starts)


class RNNPoolMobileNetV2(MobileNetV2):
    """:class:`MobileNetV2` whose stages 0-2 are one :class:`RNNPoolLayer` after the stem."""

    def _build_body(self, stem_channels: int, strides: dict[str, int]) -> None:
        c = self.config
        hidden = c.rnnpool_hidden
        self.rnnpool = RNNPoolLayer(stem_channels, c.rnnpool_patch, c.rnnpool_stride, hidden,
                                    hidden)
        self.blocks, self.body_channels = inverted_residual_stages(
            c, self.rnnpool.out_channels, REPLACED_STAGES, strides)

    def padding(self) -> tuple[int, int, int, int]:
        """``F.pad`` zeros (left, right, top, bottom) of the stem's map before RNNPool."""
        rows, cols = self.config.stem_map()
        patch, stride = self.config.rnnpool_patch, self.config.rnnpool_stride
        return (*same_padding(cols, patch, stride), *same_padding(rows, patch, stride))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(self.stem(x), self.padding())
        return self.blocks(self.rnnpool(x))

    def _extra_deployed(self) -> dict[str, torch.Tensor]:
        return {f"rnnpool.{name}": p.detach().double()
                for name, p in self.rnnpool.named_parameters()}

    def _shaped_modules(self) -> list[tuple[str, nn.Module]]:
        modules = self.convolutions()
        return modules[:1] + [("rnnpool", self.rnnpool)] + modules[1:]

    def rnnpool_patch_macs(self) -> int:
        """MACs of one patch: RNN1 over ``r`` rows and ``c`` columns (``r·c`` steps each way)
        and RNN2's four sweeps (``2r + 2c`` steps); a FastGRNN step is ``W`` and ``U`` once each
        (shared by gate and candidate) and 3 elementwise products per hidden unit."""
        pool = self.rnnpool.pool
        r, c = self.rnnpool.patch_size
        c_in, h1, h2 = pool.in_channels, pool.hidden1, pool.hidden2
        step1 = h1 * c_in + h1 * h1 + 3 * h1
        step2 = h2 * h1 + h2 * h2 + 3 * h2
        return 2 * r * c * step1 + (2 * r + 2 * c) * step2

    def _layer_macs(self, module: nn.Module, shape_out: tuple) -> int:
        if module is self.rnnpool:
            return shape_out[1] * shape_out[2] * self.rnnpool_patch_macs()
        return super()._layer_macs(module, shape_out)

    def rnnpool_scratch_bytes(self) -> int:
        """RNNPool's working memory beside one patch: the ``(r + c)·h1`` row and column
        summaries and RNN1's and RNN2's states, int16."""
        pool = self.rnnpool.pool
        r, c = self.rnnpool.patch_size
        return ((r + c) * pool.hidden1 + pool.hidden1 + pool.hidden2) * STATE_BYTES

    def patch_schedule(self) -> list[LayerShape]:
        """RNNPool's patch-by-patch schedule: one fused step (stem + RNNPool, patch by patch:
        the input image and RNNPool's output map alive, one patch of the stem's map beside
        them, the stem recomputed on overlapping patches), then the other layers one by one."""
        layers = self.layer_shapes()
        stem, pool = layers[0], layers[1]
        c = self.config
        rows, cols = c.stem_map()
        patch, stride = c.rnnpool_patch, c.rnnpool_stride
        stem_pixels = covered(rows, patch, stride) * covered(cols, patch, stride)
        stem_macs = stem.macs // (rows * cols) * stem_pixels
        fused = LayerShape("stem+rnnpool (patch by patch)", stem.input, pool.output,
                           stem.output[0] * patch * patch, stem_macs + pool.macs,
                           self.rnnpool_scratch_bytes())
        return [fused] + layers[2:]

    def patch_peak_activation_bytes(self, value_bytes: int = 1) -> tuple[int, str]:
        """``(bytes, step)``: the peak of :meth:`patch_schedule` at ``value_bytes`` per map
        value (int8: 1)."""
        return peak_bytes(self.patch_schedule(), value_bytes)


def build_rnnpool_mobilenetv2(config: RNNPoolMobileNetV2Config) -> RNNPoolMobileNetV2:
    """A freshly initialised RNNPool-MobileNetV2 for ``config`` (seed torch first)."""
    return RNNPoolMobileNetV2(config)
