"""The DS-CNN module: shapes, determinism, save/load, its BatchNorm folding, what it deploys and
its config's checks."""

import pytest
import torch

from kiloml.compress.size import count_parameters, model_size_bytes, model_storage
from kiloml.errors import KilomlError
from kiloml.models import build_model, config_from_dict
from kiloml.nn.dscnn import DSCNN, DSCNNConfig
from kiloml.runs import load_weights, save_weights
from kiloml.train.trainer import TrainConfig, Trainer
from tests.conftest import synthetic_splits


def _model(seed: int = 0, **kwargs) -> DSCNN:
    torch.manual_seed(seed)
    settings = dict(kind="dscnn", input_size=3, num_classes=4, channels=6, blocks=2)
    settings.update(kwargs)
    return build_model(DSCNNConfig(**settings))


def _trained_statistics(model: DSCNN) -> DSCNN:
    """Running statistics and affine BatchNorm parameters away from their initial values."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 17, 3) * 2 + 1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.3)
    return model.eval()


@pytest.mark.parametrize("kwargs,steps,out_steps", [
    (dict(), 17, 9), (dict(kernel_size=4, stride=3, blocks=0), 10, 3),
    (dict(kernel_size=1, stride=1), 1, 1)])
def test_shape_dtype_determinism_and_round_trip(kwargs, steps, out_steps, tmp_path):
    model = _model(**kwargs).eval()
    assert model.config.conv_steps(steps) == out_steps
    assert model.stem(torch.randn(2, 3, steps)).shape == (2, 6, out_steps)
    x = torch.randn(5, steps, 3)
    logits = model(x)
    assert logits.shape == (5, 4) and logits.dtype == torch.float32
    torch.testing.assert_close(_model(**kwargs).eval()(x), logits, rtol=0, atol=0)
    assert not torch.allclose(_model(seed=1, **kwargs).eval()(x), logits)
    _trained_statistics(model).set_normalization(torch.full((3,), 2.0), torch.full((3,), 4.0))
    logits = model(x)
    save_weights(model, tmp_path / "m.safetensors")
    clone = _model(seed=5, **kwargs).eval()
    load_weights(clone, tmp_path / "m.safetensors")
    torch.testing.assert_close(clone(x), logits, rtol=0, atol=0)


def test_normalization_is_applied_inside_the_model():
    model = _model().eval()
    x = torch.randn(2, 11, 3)
    before = model(x)
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 3.0, 0.25])
    model.set_normalization(mean, std)
    torch.testing.assert_close(model(x * std + mean), before, rtol=1e-5, atol=1e-5)


def test_folded_convolutions_equal_the_module_in_eval_mode():
    model = _trained_statistics(_model(kernel_size=5, stride=2)).double()
    x = torch.randn(4, 19, 3, dtype=torch.float64)
    h = ((x - model.input_mean) / model.input_std).transpose(1, 2)
    for _, conv in model.convolutions():
        weight, bias = conv.fold()
        c = conv.conv
        h = torch.relu(torch.nn.functional.conv1d(h, weight, bias, c.stride, c.padding,
                                                  groups=c.groups))
    folded = model.head(h.mean(dim=2))
    torch.testing.assert_close(folded, model(x), rtol=1e-10, atol=1e-10)


def test_deployed_tensors_are_the_folded_weights_without_statistics():
    model = _trained_statistics(_model(channels=6, blocks=2, kernel_size=5))
    tensors = model.deployed_tensors()
    assert list(tensors) == [
        "input_mean", "input_std", "stem.weight", "stem.bias",
        "blocks.0.depthwise.weight", "blocks.0.depthwise.bias",
        "blocks.0.pointwise.weight", "blocks.0.pointwise.bias",
        "blocks.1.depthwise.weight", "blocks.1.depthwise.bias",
        "blocks.1.pointwise.weight", "blocks.1.pointwise.bias", "head.weight", "head.bias"]
    weight, _ = model.stem.fold()
    assert tensors["stem.weight"].shape == (6, 15)  # [C, k * F], k-major as the kernel reads
    assert torch.equal(tensors["stem.weight"][:, 3:6], weight[:, :, 1])
    assert tensors["blocks.0.depthwise.weight"].shape == (18,)
    weights = 6 * 15 + 2 * (6 * 3 + 6 * 6) + 4 * 6
    biases = 6 + 2 * (6 + 6) + 4
    assert count_parameters(model) == (weights + biases, weights + biases)
    assert model_size_bytes(model) == 4 * (weights + biases + 2 * 3)
    # int8: one scale byte per tensor, one per channel of a depthwise kernel, and the int16
    # normalisation (its 1/std with a scale byte)
    assert model.scale_counts() == {"blocks.0.depthwise.weight": 6,
                                    "blocks.1.depthwise.weight": 6}
    assert model_size_bytes(model, 1) == weights + biases + (10 + 2 * 6) + 2 * 3 + 2 * 3 + 1
    assert not any("running" in t.name or "bn" in t.name for t in model_storage(model))


def test_compression_flags_are_refused_for_a_dense_family():
    model = _model()
    assert model.sparsity_groups() == {}
    with pytest.raises(KilomlError,
                       match="apply to fastgrnn, fastrnn, protonn and bonsai, not dscnn"):
        Trainer(model, synthetic_splits(), TrainConfig(epochs=3, keep_w=0.5))


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="gru"), "needs kind 'dscnn'"),
    (dict(channels=0), "channels must be a positive integer"),
    (dict(stride=0), "stride must be a positive integer"),
    (dict(blocks=-1), "blocks must be 0 or a positive integer"),
    (dict(num_classes=1), "at least 2 classes"),
])
def test_invalid_configs_are_one_line_errors(kwargs, message):
    settings = dict(kind="dscnn", input_size=3, num_classes=4)
    settings.update(kwargs)
    with pytest.raises(KilomlError, match=message):
        DSCNNConfig(**settings).validate()


def test_config_round_trip_and_short_inputs():
    config = DSCNNConfig(kind="dscnn", input_size=3, num_classes=4, channels=7, kernel_size=10)
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(KilomlError, match="unknown fields"):
        config_from_dict({**config.to_dict(), "hidden_size": 3})
    with pytest.raises(KilomlError, match="sequences of 1 steps are shorter"):
        build_model(config)(torch.randn(1, 1, 3))
