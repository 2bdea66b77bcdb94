"""MobileNetV2 and RNNPool-MobileNetV2: strides from the resolution, shapes, the residual path,
the width multiplier, BatchNorm folding, the schedules' RAM and MACs counted by hand, bad input,
and a few training steps."""

import math

import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.nn.mobilenetv2 import (
    ConvBN,
    InvertedResidual,
    MobileNetV2,
    MobileNetV2Config,
    make_divisible,
)
from kiloml.nn.rnnpool_mobilenetv2 import (
    RNNPoolMobileNetV2,
    RNNPoolMobileNetV2Config,
    covered,
    same_padding,
)


def plain(size=32, width=0.25, channels=3, classes=2):
    return MobileNetV2Config(kind="mobilenetv2", input_size=size * channels, num_classes=classes,
                             in_channels=channels, height=size, width=size, width_mult=width)


def pooled(size=32, width=0.25, **rnnpool):
    return RNNPoolMobileNetV2Config(kind="rnnpool-mobilenetv2", input_size=size * 3,
                                    num_classes=2, height=size, width=size, width_mult=width,
                                    **rnnpool)


def test_channels_round_to_multiples_of_8_as_the_papers_code():
    assert [make_divisible(c * 0.35) for c in (32, 16, 24, 64, 96, 160, 320)] == \
        [16, 8, 8, 24, 32, 56, 112]
    assert make_divisible(1280 * 0.25) == 320 and make_divisible(3) == 8


def test_strides_follow_the_resolution():
    assert plain(32).strides() == {"stem": 1, "stage0": 1, "stage1": 1, "stage2": 2,
                                   "stage3": 2, "stage4": 1, "stage5": 2, "stage6": 1}
    assert plain(96).strides() == {"stem": 2, "stage0": 1, "stage1": 2, "stage2": 2,
                                   "stage3": 2, "stage4": 1, "stage5": 2, "stage6": 1}
    big = pooled(96).strides()
    assert (big["stem"], big["rnnpool"], big["stage3"], big["stage5"]) == (2, 4, 2, 2)
    small = pooled(32).strides()
    assert (small["stem"], small["rnnpool"], small["stage3"], small["stage5"]) == (1, 4, 1, 2)


@pytest.mark.parametrize("size, final", [(16, 4), (96, 3)])
def test_shapes_and_both_input_layouts(size, final):
    torch.manual_seed(0)
    model = MobileNetV2(plain(size)).eval()
    images = torch.rand(1, 3, size, size)
    rows = images.permute(0, 2, 3, 1).reshape(1, size, size * 3)
    assert model(images).shape == (1, 2)
    torch.testing.assert_close(model(rows), model(images))
    assert model.body(model.images(images)).shape[2:] == (final, final)
    pool = RNNPoolMobileNetV2(pooled(size)).eval()
    assert pool(rows).shape == (1, 2) and pool.body(pool.images(images)).shape[2:] == (final,
                                                                                        final)


@pytest.mark.parametrize("shape, message", [
    ((2, 1, 32, 32), r"takes images \[B, 3, 32, 32\] \(or rows \[B, 32, 96\]\); got \[2, 1, 32"),
    ((2, 3, 96, 96), r"takes images \[B, 3, 32, 32\].*got \[2, 3, 96, 96\]"),
    ((2, 32, 32), r"got \[2, 32, 32\]"),
])
def test_wrong_size_or_channels_is_a_one_line_error(shape, message):
    with pytest.raises(KilomlError, match=message):
        MobileNetV2(plain(32))(torch.zeros(shape))


@pytest.mark.parametrize("config, message", [
    (lambda: pooled(32, rnnpool_patch=40), r"RNNPool patch 40x40 is larger than the 32x32 map "
                                           r"after the stem \(32x32 images\)"),
    (lambda: pooled(96, rnnpool_patch=49), r"patch 49x49 is larger than the 48x48 map"),
    (lambda: pooled(32, rnnpool_patch=3), r"--rnnpool-patch 3 is smaller than the stride 4"),
    (lambda: plain(2), r"images of 2 pixels per side are too small"),
    (lambda: plain(32, width=0), r"--width-mult must be a number in \(0, 4\]"),
])
def test_bad_configurations_are_one_line_errors(config, message):
    with pytest.raises(KilomlError, match=message):
        config().validate()


def test_residual_path_adds_the_input_only_when_shapes_match():
    torch.manual_seed(0)
    same = InvertedResidual(8, 8, 1, 6).eval()
    assert same.residual and same.expand.conv.out_channels == 48
    torch.nn.init.zeros_(same.project.bn.weight)  # the branch outputs 0: the block is identity
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(same(x), x)
    assert not InvertedResidual(8, 16, 1, 6).residual and not InvertedResidual(8, 8, 2, 6).residual
    one = InvertedResidual(8, 8, 1, 1)
    assert one.expand is None and [n for n, _ in one.convolutions()] == ["depthwise", "project"]
    strided = InvertedResidual(8, 16, 2, 6)
    assert strided(torch.randn(1, 8, 5, 5)).shape == (1, 16, 3, 3)


def test_width_multiplier_scales_every_layer():
    half, full = MobileNetV2(plain(32, 0.5)), MobileNetV2(plain(32, 1.0))
    assert (half.stem.conv.out_channels, full.stem.conv.out_channels) == (16, 32)
    assert (half.last.conv.out_channels, full.last.conv.out_channels) == (640, 1280)
    assert [b.project.conv.out_channels for b in half.blocks][-1] == 160
    assert len(half.blocks) == len(full.blocks) == 17
    assert sum(p.numel() for p in half.parameters()) < sum(p.numel() for p in full.parameters())


def test_folded_batchnorm_equals_the_eval_forward():
    torch.manual_seed(0)
    conv = ConvBN(3, 8, 3, 2, activation=False)
    conv.bn.running_mean.uniform_(-1, 1)
    conv.bn.running_var.uniform_(0.5, 2)
    conv.bn.weight.data.uniform_(0.5, 2)
    conv.eval()
    x = torch.randn(2, 3, 7, 7)
    weight, bias = conv.fold()
    folded = torch.nn.functional.conv2d(x.double(), weight, bias, 2, 1)
    torch.testing.assert_close(folded, conv(x).double(), atol=1e-5, rtol=1e-5)
    model = MobileNetV2(plain(32))
    deployed = model.deployed_tensors()
    assert "stem.bn.running_mean" not in deployed and deployed["stem.bias"].shape == (8,)


def test_layer_by_layer_peak_and_macs_by_hand():
    model = MobileNetV2(plain(32, 0.25))
    layers = {layer.name: layer for layer in model.layer_shapes()}
    stem = layers["stem"]
    assert (stem.input, stem.output, stem.macs) == ((3, 32, 32), (8, 32, 32), 32 * 32 * 8 * 27)
    # block 1 (the first 24-channel block: 8 channels in and out at w=0.25, stride 1 at 32x32)
    # is residual: its input stays alive while its depthwise and project layers run
    dw = layers["blocks.1.depthwise"]
    assert dw.input == dw.output == (48, 32, 32) and dw.kept == 8 * 32 * 32
    assert dw.macs == 32 * 32 * 48 * 9 and layers["blocks.1.expand"].kept == 0
    assert layers["blocks.3.depthwise"].kept == 0  # stride 2: no residual
    # the peak: 48 channels in and out at 32x32 beside the block's input
    assert model.peak_activation_bytes() == (2 * 48 * 1024 + 8 * 1024, "blocks.1.depthwise")
    assert model.peak_activation_bytes(4)[0] == 4 * (2 * 48 * 1024 + 8 * 1024)
    assert model.macs() == sum(layer.macs for layer in model.layer_shapes())
    assert layers["head"].macs == model.head.weight.numel()


def test_rnnpool_padding_coverage_and_patch_schedule_by_hand():
    assert same_padding(48, 6, 4) == (1, 1) and same_padding(48, 8, 4) == (2, 2)
    assert same_padding(32, 6, 4) == (1, 1) and same_padding(9, 6, 4) == (2, 3)
    # 12 patches of 6 from -1: the first and the last lose one pixel to the padding
    assert covered(48, 6, 4) == 12 * 6 - 2 and covered(8, 8, 4) == 8 + 4
    model = RNNPoolMobileNetV2(pooled(96, 0.35))
    h = model.config.rnnpool_hidden
    assert h == 8 and model.rnnpool.out_channels == 32
    patch_macs = 2 * 36 * (h * 16 + h * h + 3 * h) + 24 * (h * h + h * h + 3 * h)
    assert model.rnnpool_patch_macs() == patch_macs
    schedule = model.patch_schedule()
    fused = schedule[0]
    assert fused.input == (3, 96, 96) and fused.output == (32, 12, 12)
    assert fused.kept == 16 * 36 and fused.scratch_bytes == ((6 + 6) * h + h + h) * 2
    stem_macs = 48 * 48 * 16 * 27
    assert fused.macs == stem_macs // (48 * 48) * 70 * 70 + 144 * patch_macs
    peak, where = model.patch_peak_activation_bytes()
    assert peak == max(layer.live_bytes() for layer in schedule)
    assert peak == 34560 and where == "blocks.0.depthwise"
    # layer by layer, the stem's whole 48x48 map exists: 96·96·3 + 16·48·48 bytes
    assert model.peak_activation_bytes() == (96 * 96 * 3 + 16 * 48 * 48, "stem")
    assert MobileNetV2(plain(96, 0.35)).peak_activation_bytes()[0] >= 4 * peak


@pytest.mark.parametrize("make", [lambda: MobileNetV2(plain(16)),
                                  lambda: RNNPoolMobileNetV2(pooled(16))])
def test_a_few_training_steps_reduce_the_loss(make):
    torch.manual_seed(0)
    model = make()
    x = torch.rand(8, 16, 48)
    y = torch.arange(8) % 2
    x[y == 1] += 0.5  # brighter images are class 1
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and all(math.isfinite(v) for v in losses)
