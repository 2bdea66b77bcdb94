"""Instructions per second of stream, counted on the C on an emulated Cortex-M4: a ShaRNN's
streaming pushes (a deciding push and k - 1 frame copies per brick), a sliding window's
kiloml_predict per hop, a cascade's upper tier weighted by its share of decisions, an
EMI-FastGRNN's pushes with the steps its instances actually read, and the install command
when the toolchain is missing."""

import numpy as np
import pytest
import torch

from kiloml.deploy.stream_cost import stream_instructions
from kiloml.deploy.targets import TARGETS
from kiloml.models import build_model
from kiloml.nn.classifier import ModelConfig
from kiloml.nn.emi import EMIConfig
from kiloml.nn.sharnn import ShaRNNConfig

STEPS, FEATURES, BRICK = 12, 3, 4


def _models():
    torch.manual_seed(0)
    sharnn = build_model(ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=3,
                                      brick_size=BRICK, hidden_size=5, upper_hidden_size=6))
    fastgrnn = build_model(ModelConfig(kind="fastgrnn", input_size=FEATURES, num_classes=3,
                                       hidden_size=6))
    return sharnn.eval(), fastgrnn.eval()


def test_instructions_per_second_of_stream_on_cortex_m4():
    if TARGETS["cortex-m4"].missing():
        pytest.skip("cortex-m4 toolchain not installed")
    sharnn, fastgrnn = _models()
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(32, STEPS, FEATURES))
    frames = rng.normal(size=(200, FEATURES))
    cost = stream_instructions([("sharnn", sharnn, 1.0)], calib, frames, STEPS, BRICK, 50.0)
    part = cost["parts"]["sharnn"]
    assert "kiloml_stream_push on 48 frames, 10 decisions" in part["how"]
    assert part["per_second"] == pytest.approx(part["per_decision"] * 50.0 / BRICK)
    assert cost["per_second"] == part["per_second"]
    cost = stream_instructions([("lower", fastgrnn, 1.0), ("upper", sharnn, 0.25)], calib,
                               frames, STEPS, BRICK, 50.0)
    lower, upper = cost["parts"]["lower"], cost["parts"]["upper"]
    assert "kiloml_predict on 4 windows" in lower["how"]
    assert lower["per_second"] == pytest.approx(lower["per_decision"] * 50.0 / BRICK)
    assert cost["per_second"] == pytest.approx(lower["per_second"]
                                               + 0.25 * upper["per_second"])


def test_a_missing_toolchain_is_skipped_with_its_install_command(monkeypatch):
    monkeypatch.setattr("kiloml.deploy.targets.shutil.which", lambda tool: None)
    sharnn, _ = _models()
    cost = stream_instructions([("sharnn", sharnn, 1.0)], np.zeros((2, STEPS, FEATURES)),
                               np.zeros((40, FEATURES)), STEPS, BRICK, 50.0)
    assert cost["skipped"].startswith("cortex-m4 toolchain missing (arm-none-eabi-gcc")
    assert cost["skipped"].endswith("apt-get install -y gcc-arm-none-eabi "
                                    "libnewlib-arm-none-eabi qemu-system-arm")


def test_an_emi_stream_counts_the_steps_its_instances_read():
    """Early exit is counted as executed: the same model and stream cost fewer instructions
    with a threshold its instances reach than with one (1.0) they never reach."""
    if TARGETS["cortex-m4"].missing():
        pytest.skip("cortex-m4 toolchain not installed")
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(32, 14, FEATURES))
    frames = 2 * rng.normal(size=(120, FEATURES))
    costs = {}
    for threshold in (0.6, 1.0):
        torch.manual_seed(0)
        model = build_model(EMIConfig(kind="emi-fastgrnn", input_size=FEATURES, num_classes=3,
                                      hidden_size=6, instance_width=6, instance_stride=4,
                                      exit_threshold=threshold))
        with torch.no_grad():
            model.head.weight.mul_(6.0)
        cost = stream_instructions([("model", model.eval(), 1.0)], calib, frames, 14, 4, 50.0)
        costs[threshold] = part = cost["parts"]["model"]
        assert "kiloml_stream_push on the first 120 frames" in part["how"]
        assert part["per_second"] == pytest.approx(part["per_decision"] * 50.0 / 4)
        assert part["frames_counted"] == 120
    assert costs[1.0]["steps_per_instance"] == 6
    assert costs[0.6]["steps_per_instance"] < 6
    assert costs[0.6]["per_second"] < costs[1.0]["per_second"]
