"""Checks every model kind passes (in the spirit of scikit-learn's common estimator checks):
output shape and dtype, determinism from a seed, normalisation, safetensors round trip."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.nn import ModelConfig, build_model
from kiloml.runs import load_weights, save_weights

CONFIGS = [
    dict(kind="fastgrnn"), dict(kind="fastgrnn", w_rank=2, u_rank=3, readout="mean"),
    dict(kind="fastgrnn", bidirectional=True), dict(kind="fastrnn", u_rank=4),
    dict(kind="gru"), dict(kind="lstm", bidirectional=True, readout="mean"),
    dict(kind="fastgrnn", frame_stack=2, w_rank=2),
]


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model(ModelConfig(input_size=3, num_classes=4, hidden_size=8, **kwargs))


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_shape_dtype_determinism_and_round_trip(kwargs, tmp_path):
    x = torch.randn(5, 12 if kwargs.get("frame_stack") else 11, 3)
    model = _model(**kwargs).eval()
    logits = model(x)
    assert logits.shape == (5, 4) and logits.dtype == torch.float32
    torch.testing.assert_close(_model(**kwargs).eval()(x), logits)  # same seed, same model
    assert not torch.allclose(_model(seed=1, **kwargs).eval()(x), logits)
    model.set_normalization(torch.full((3,), 2.0), torch.full((3,), 4.0))
    logits = model(x)
    save_weights(model, tmp_path / "m.safetensors")
    clone = _model(seed=5, **kwargs).eval()
    load_weights(clone, tmp_path / "m.safetensors")
    torch.testing.assert_close(clone(x), logits, rtol=0, atol=0)
    torch.testing.assert_close(clone.input_mean, torch.full((3,), 2.0))


def test_normalization_is_applied_inside_the_model():
    model = _model(kind="fastgrnn").eval()
    x = torch.randn(2, 6, 3)
    before = model(x)
    model.set_normalization(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 3.0, 0.25]))
    shifted = x * torch.tensor([2.0, 3.0, 0.25]) + torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(model(shifted), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["fastgrnn", "gru"])
def test_frame_stacking_is_the_same_network_over_wider_steps(kind):
    """frame_stack k on [B, T, F] equals frame_stack 1 with k*F inputs on the reshaped input
    (normalisation tiled k times)."""
    stacked = _model(kind=kind, frame_stack=4).eval()
    stacked.set_normalization(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 3.0, 0.25]))
    wide = build_model(ModelConfig(kind=kind, input_size=12, num_classes=4, hidden_size=8)).eval()
    state = stacked.state_dict()
    state["input_mean"], state["input_std"] = (state[k].repeat(4) for k in
                                               ("input_mean", "input_std"))
    wide.load_state_dict(state)
    x = torch.randn(5, 16, 3)
    torch.testing.assert_close(stacked(x), wide(x.reshape(5, 4, 12)), rtol=0, atol=0)
    with pytest.raises(KilomlError, match="frame-stack 4 needs a number of steps divisible"):
        stacked(torch.randn(5, 15, 3))


def test_load_weights_reports_mismatched_shapes(tmp_path):
    save_weights(_model(kind="fastgrnn"), tmp_path / "m.safetensors")
    other = build_model(ModelConfig(kind="fastgrnn", input_size=3, num_classes=4, hidden_size=9))
    with pytest.raises(KilomlError, match="has shape"):
        load_weights(other, tmp_path / "m.safetensors")


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="rnn"), "unknown model 'rnn'"),
    (dict(kind="gru", u_rank=2), "apply to fastgrnn and fastrnn"),
    (dict(kind="fastgrnn", u_rank=99), "u-rank must be between 1 and 8"),
    (dict(kind="fastgrnn", readout="max"), "unknown readout"),
    (dict(kind="fastgrnn", frame_stack=0), "frame-stack must be a positive integer"),
    (dict(kind="fastgrnn", frame_stack=2, w_rank=7), "w-rank must be between 1 and 6"),
])
def test_invalid_configs_are_one_line_errors(kwargs, message):
    with pytest.raises(KilomlError, match=message):
        ModelConfig(input_size=3, num_classes=4, hidden_size=8, **kwargs).validate()


def test_config_round_trip():
    config = ModelConfig(kind="fastgrnn", input_size=3, num_classes=4, w_rank=2, u_rank=3)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(KilomlError, match="unknown fields"):
        ModelConfig.from_dict({**config.to_dict(), "depth": 3})
    assert np.isfinite(_model(kind="fastrnn")(torch.randn(1, 3, 3)).detach().numpy()).all()
