"""STR (soft threshold reparameterisation): the reparameterisation by hand, the controller, the
support it fixes, resume, export and the errors."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn.utils import parametrize

from kiloml.cli import main
from kiloml.compress.soft_threshold import (
    SoftThreshold,
    common_shift,
    project_to_budget,
    soft_threshold,
)
from kiloml.errors import KilomlError
from kiloml.ir.serialize import load_graph
from kiloml.nn import ModelConfig
from kiloml.train.fit import new_model
from kiloml.train.phases import SoftThresholdPhase
from kiloml.train.trainer import TrainConfig, Trainer, sparsifiable_parameters
from tests.cli.cli_helpers import error_line, train, write_npz


def _config(**kwargs):
    base = dict(kind="fastgrnn", input_size=3, num_classes=3, hidden_size=8, w_rank=2, u_rank=4)
    base.update(kwargs)
    return ModelConfig(**base)


def _sparsity(model, groups=None) -> tuple[int, int]:
    """``(zeros, entries)`` over the model's sparsity groups (all, or those named)."""
    params = [p for p, g in sparsifiable_parameters(model).values()
              if groups is None or g in groups]
    return (sum(int((p == 0).sum()) for p in params), sum(p.numel() for p in params))


def test_soft_threshold_forward_and_gradient_by_hand():
    w = torch.tensor([[0.5, -0.2], [0.05, -1.0]], requires_grad=True)
    s = torch.tensor(math.log(0.1 / 0.9), requires_grad=True)  # sigmoid(s) = 0.1
    out = soft_threshold(w, s)
    assert torch.allclose(out, torch.tensor([[0.4, -0.1], [0.0, -0.9]]), atol=1e-6)
    (out * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    # dL/dW = c where |W| > 0.1, else 0
    assert torch.equal(w.grad, torch.tensor([[1.0, 2.0], [0.0, 4.0]]))
    # dL/ds = -sum(c * sign(W) over the kept entries) * sigmoid'(s) = -(1 - 2 - 4) * 0.09
    assert s.grad.item() == pytest.approx(0.45, abs=1e-6)
    scaled = soft_threshold(w.detach(), s.detach(), scale=3.0)  # threshold 0.3
    assert torch.allclose(scaled, torch.tensor([[0.2, 0.0], [0.0, -0.7]]), atol=1e-6)


def test_the_fused_scan_uses_the_reparameterised_matrices():
    torch.manual_seed(0)
    model = new_model(_config(w_rank=None, u_rank=None), _tiny(), seed=0)
    x = torch.randn(4, 12, 3)
    cell = model.rnn.cell
    thresholds = {"U": torch.tensor(-1.5, requires_grad=True)}
    expected_u = soft_threshold(cell.U.detach(), thresholds["U"].detach())
    assert 0 < int((expected_u == 0).sum()) < expected_u.numel()
    parametrize.register_parametrization(cell, "U", SoftThreshold(thresholds, {"U": 1.0}, "U"))
    out = model(x)
    out.sum().backward()
    assert thresholds["U"].grad is not None and thresholds["U"].grad.abs() > 0
    parametrize.remove_parametrizations(cell, "U", leave_parametrized=False)
    with torch.no_grad():
        cell.U.copy_(expected_u)
    assert torch.allclose(model(x), out, atol=1e-6)


def test_common_shift_zeroes_exactly_the_requested_count():
    torch.manual_seed(1)
    weights = [torch.randn(6, 10) * 0.3, torch.randn(8, 8) * 2.0, torch.randn(5) * 0.05]
    s = [torch.tensor(-2.0), torch.tensor(0.5), torch.tensor(-4.0)]
    scales = [1.0, 7.0, 0.2]
    for zeros in (1, 37, 100, 128):
        delta = common_shift(weights, s, scales, zeros)
        got = sum(int((soft_threshold(w, t + delta, c) == 0).sum())
                  for w, t, c in zip(weights, s, scales, strict=True))
        assert got == zeros
    assert common_shift(weights, s, scales, 0) is None


def test_projection_cuts_to_the_budget_in_proportion():
    a = torch.tensor([[3.0, -1.0, 0.5, 0.0], [2.0, 0.0, -0.25, 4.0]])  # 6 nonzeros
    b = torch.tensor([1.0, -2.0, 0.0, 0.1])  # 3 nonzeros
    cut = project_to_budget([a, b], kept=6)  # shares 4 and 2
    assert [int(torch.count_nonzero(w)) for w in cut] == [4, 2]
    assert torch.equal(cut[0], torch.tensor([[3.0, -1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 4.0]]))
    assert torch.equal(cut[1], torch.tensor([1.0, -2.0, 0.0, 0.0]))
    assert project_to_budget([a, b], kept=9)[0] is a  # within budget: unchanged


def _tiny():
    from tests.conftest import synthetic_splits

    return synthetic_splits()


@pytest.mark.parametrize("targets,groups", [({"total": 0.8}, None),
                                            ({"W": 0.5, "U": 0.9}, ("W", "U"))])
def test_controller_lands_within_one_point_and_fixes_the_support(tiny_data, targets, groups):
    config = TrainConfig(epochs=6, batch_size=16, compress="str", target_sparsity=targets,
                         seed=2)
    model = new_model(_config(), tiny_data, seed=2)
    trainer = Trainer(model, tiny_data, config)
    result = trainer.fit()
    assert [p.kind for p in trainer.phases] == ["dense", "str", "sparse"]
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    for key, target in targets.items():
        zeros, entries = _sparsity(model, None if key == "total" else (key,))
        assert abs(zeros / entries - target) <= 0.01, key
        assert abs(result.compression["reached"][key] - target) <= 0.01, key
        # the thresholds alone, before any projection
        assert abs(result.compression["reached_by_thresholds"][key] - target) <= 0.01, key
    if groups is not None:  # the head was not targeted: dense
        assert int((model.head.weight == 0).sum()) == 0
    for name, mask in trainer.masks.items():  # zeros are the fixed support's complement
        param = trainer.sparse_params[name][0]
        assert torch.all(param[~mask] == 0), name
    kept = result.compression["kept"]
    assert set(kept) == set(trainer.sparsity.thresholds)


def test_controller_follows_the_ramp_during_the_phase():
    phase = SoftThresholdPhase(epochs=4, ramp=0.5)
    assert phase.target_at(0.9, 0.0) == 0.0
    assert 0.0 < phase.target_at(0.9, 0.25) < 0.9 == phase.target_at(0.9, 0.5)


def test_resume_inside_the_str_phase_gives_identical_weights(tiny_data, tmp_path):
    config = TrainConfig(epochs=10, batch_size=16, compress="str",
                         target_sparsity={"total": 0.7}, seed=4, augment_noise=0.1)
    straight = new_model(_config(), tiny_data, seed=4)
    Trainer(straight, tiny_data, config).fit()
    interrupted = new_model(_config(), tiny_data, seed=4)
    ckpt = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):  # after the first of the two STR epochs
        Trainer(interrupted, tiny_data, config, checkpoint_path=ckpt, checkpoint_seconds=0,
                stop_after_epoch=lambda e: e == 4).fit()
    assert any(k.startswith("threshold.") for k in load_file(str(ckpt)))
    resumed = new_model(_config(), tiny_data, seed=99)
    result = Trainer(resumed, tiny_data, config, checkpoint_path=ckpt).fit(resume=True)
    assert [r.phase for r in result.history].count("str") == 2
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


def test_str_errors_are_one_line(tiny_data):
    for targets in ({"total": 1.0}, {"total": 0.0}, {"total": -0.5}):
        with pytest.raises(KilomlError, match=r"fraction of zeros, in \(0, 1\)"):
            TrainConfig(compress="str", target_sparsity=targets).validate()
    with pytest.raises(KilomlError, match="drop --sparsity-w"):
        TrainConfig(compress="str", target_sparsity={"total": 0.9}, keep_w=0.5).validate()
    with pytest.raises(KilomlError, match="needs --target-sparsity"):
        TrainConfig(compress="str").validate()
    with pytest.raises(KilomlError, match="add --compress str"):
        TrainConfig(target_sparsity={"total": 0.9}).validate()
    config = TrainConfig(epochs=3, compress="str", target_sparsity={"total": 0.9})
    with pytest.raises(KilomlError, match="gru has none"):
        Trainer(new_model(_config(kind="gru", w_rank=None, u_rank=None), tiny_data, 0),
                tiny_data, config)
    config = TrainConfig(epochs=3, compress="str", target_sparsity={"V": 0.9})
    with pytest.raises(KilomlError, match="no such group"):
        Trainer(new_model(_config(), tiny_data, 0), tiny_data, config)


@pytest.mark.parametrize("argv,message", [
    (["--compress", "str", "--target-sparsity", "1"], "must be in (0, 1)"),
    (["--compress", "str", "--target-sparsity", "0.9", "--sparsity-u", "0.5"],
     "drop --sparsity-u"),
    (["--compress", "str", "--target-sparsity", "0.9", "--model", "gru"],
     "needs a family with sparsity groups"),
    (["--compress", "str", "--target-sparsity", "0.9", "--model", "dscnn"],
     "needs a family with sparsity groups"),
    (["--target-sparsity", "0.9"], "add --compress str"),
    (["--compress", "str", "--target-sparsity", "W=x"], "expected a fraction"),
    (["--compress", "str", "--target-sparsity", "0.9", "W=0.5"], "not both"),
])
def test_cli_str_errors(tmp_path, capsys, argv, message):
    data = write_npz(tmp_path / "toy.npz")
    assert train(data, tmp_path / "run", *argv) == 1
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_str_run_stores_zeros_shows_budgets_and_exports_exactly(tmp_path, capsys, require_gcc):
    data = write_npz(tmp_path / "toy.npz")
    run = tmp_path / "run"
    assert train(data, run, "--compress", "str", "--target-sparsity", "0.75") == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["compress"] == "str" and metrics["str"]["targets"] == {"total": 0.75}
    assert abs(metrics["str"]["reached"]["total"] - 0.75) <= 0.01
    weights = load_file(str(run / "model.safetensors"))
    zeros = {name: weights[name] == 0 for name in metrics["str"]["kept"]}
    assert all(z.any() for z in zeros.values())
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    assert "budgets learned by STR" in capsys.readouterr().out
    out = tmp_path / "c"
    assert main(["export", str(run), "--out", str(out), "--bits", "8"]) == 0
    graph = load_graph(out / "quantized_model.npz")
    stored = {f"rnn.cell.{k}": v.values for k, v in graph.nodes[0].q.items()}
    stored["head.weight"] = graph.nodes[1].q["weight"].values
    for name, zero in zeros.items():  # every zeroed weight is a zero integer
        assert np.all(stored[name][zero.numpy()] == 0), name
    assert main(["verify", str(out), "--targets", "host"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert report["targets"]["host"]["exact_match"] == 1.0
