"""The command line: a full train → info → eval round on a small .npz, and bad input as one-line
errors with a non-zero exit."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kiloml import RUN_FORMAT_VERSION
from kiloml.cli import main
from tests.cli.cli_helpers import error_line as _error_line
from tests.cli.cli_helpers import write_npz as _write_npz
from tests.conftest import synthetic_splits


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = _write_npz(tmp / "toy.npz")
    run = tmp / "run"
    code = main(["train", "--dataset", str(data), "--hidden-size", "8", "--u-rank", "4",
                 "--epochs", "6", "--batch-size", "16", "--sparsity-w", "0.5",
                 "--sparsity-u", "0.5", "--out", str(run)])
    assert code == 0
    return run


def test_train_writes_the_run_directory(trained_run):
    for name in ("config.json", "model.safetensors", "metrics.json", "checkpoint.safetensors",
                 "history.png", "confusion.png"):
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in ("dataset", "model", "test_accuracy", "model_size_bytes", "params_total",
                "params_nonzero", "macs_per_inference", "train_seconds"):
        assert key in metrics, key
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["params_nonzero"] < metrics["params_total"]
    config = json.loads((trained_run / "config.json").read_text())
    assert config["format_version"] == RUN_FORMAT_VERSION
    assert config["train"]["keep_w"] == 0.5 and config["model"]["u_rank"] == 4


def test_eval_reproduces_the_test_accuracy(trained_run, capsys):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert main(["eval", str(trained_run)]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in out


def test_info_shows_storage(trained_run, capsys):
    assert main(["info", str(trained_run)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert f"{metrics['model_size_bytes']:,}" in out and "csr" in out


def test_a_dscnn_trains_resumes_and_shows_its_folded_storage(tmp_path, capsys):
    data = _write_npz(tmp_path / "toy.npz")
    run = tmp_path / "dscnn"
    assert main(["train", "--dataset", str(data), "--model", "dscnn", "--channels", "4",
                 "--blocks", "1", "--kernel-size", "3", "--epochs", "2", "--out",
                 str(run)]) == 0
    config = json.loads((run / "config.json").read_text())["model"]
    assert config == {"kind": "dscnn", "input_size": 3, "num_classes": 3, "channels": 4,
                      "blocks": 1, "kernel_size": 3, "stride": 2}
    assert "training dscnn c=4 blocks=1" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "blocks.0.pointwise.weight" in out and "running_mean" not in out


def test_existing_run_is_not_overwritten_silently(trained_run, capsys):
    code = main(["train", "--dataset", "smartwatch", "--out", str(trained_run)])
    assert code == 1
    assert "already holds a run" in _error_line(capsys)


def test_incompatible_run_version(trained_run, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((trained_run / "config.json").read_text())
    config["format_version"] = 0
    (old / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(old)]) == 1
    assert "run format version 0 is not supported" in _error_line(capsys)


@pytest.mark.parametrize("make,message", [
    (lambda tmp: ["--dataset", "speech-commands-99"], "unknown dataset 'speech-commands-99'"),
    (lambda tmp: ["--dataset", str(tmp / "missing.npz")], "missing.npz: file not found"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "nan.npz", X_train=_with_nan()))],
     "NaN/inf feature values"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "lab.npz", y_test=_bad_labels()))],
     "labels must be in 0..2"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "shape.npz", X_test=_wrong_steps()))],
     "sequences are"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "count.npz", y_train=np.zeros(5, int)))],
     "X_train has 96 sequences but y_train has 5 labels"),
    (lambda tmp: ["--model", "gru", "--w-rank", "2"], "apply to fastgrnn and fastrnn"),
    (lambda tmp: ["--model", "dscnn", "--sparsity-w", "0.5"],
     "--sparsity-w apply to fastgrnn and fastrnn, not dscnn"),
    (lambda tmp: ["--model", "dscnn", "--hidden-size", "8", "--readout", "mean"],
     "--hidden-size, --readout apply to recurrent models, not dscnn"),
    (lambda tmp: ["--model", "gru", "--channels", "8"], "--channels apply to dscnn, not gru"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "ok.npz")), "--frame-stack", "5"],
     "--frame-stack 5 needs a sequence length divisible by it; ok has 12 steps"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "ok.npz")), "--train-hop", "16"],
     "--train-hop applies to datasets cut into windows from longer recordings (smartwatch)"),
    (lambda tmp: ["--train-hop", "200"], "--train-hop must be a whole number of samples from 1"),
    (lambda tmp: ["--dataset", str(_write_npz(tmp / "ok.npz")), "--train-speeds", "0.8", "1"],
     "--train-speeds applies to datasets cut into windows from longer recordings"),
    (lambda tmp: ["--train-speeds", "1", "3"], "--train-speeds takes 1 to 8 different speeds"),
])
def test_bad_input_is_a_one_line_error(make, message, tmp_path, capsys):
    args = make(tmp_path)
    code = main(["train", *args, "--epochs", "3", "--out", str(tmp_path / "run")])
    assert code == 1
    assert message in _error_line(capsys)
    assert not (tmp_path / "run").exists()  # nothing half-made to clean up


def _with_nan():
    x = synthetic_splits().train.x.copy()
    x[3, 4, 1] = np.nan
    return x


def _bad_labels():
    y = synthetic_splits().test.y.copy()
    y[0] = 7
    return y


def _wrong_steps():
    return synthetic_splits().test.x[:, :5]


def test_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kiloml.cli", "eval", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "no such run directory" in result.stderr and len(result.stderr.splitlines()) == 1


def test_argument_errors_exit_non_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--sparsity-w", "1.5"])
    assert exc.value.code == 2
    assert "expected a fraction in (0, 1]" in capsys.readouterr().err


def test_datasets_lists_the_registry(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "smartwatch" in out and ".npz" in out


def test_help_explains_every_training_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--model", "--hidden-size", "--w-rank", "--u-rank", "--sparsity-w",
                 "--sparsity-u", "--epochs", "--batch-size", "--seed", "--out", "--resume",
                 "--channels", "--blocks", "--kernel-size", "--stride"):
        assert flag in out, flag


def test_export_and_verify_commands(trained_run, tmp_path, capsys, require_gcc):
    out = tmp_path / "c"
    assert main(["export", str(trained_run), "--out", str(out), "--bits", "8"]) == 0
    assert (out / "model.c").is_file() and (out / "model.h").is_file()
    assert main(["verify", str(out), "--targets", "host"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert report["targets"]["host"]["exact_match"] == 1.0
    assert report["inputs"] == len(synthetic_splits().test)  # every test sequence


def test_demo_trains_exports_and_verifies(tmp_path, capsys, require_gcc, monkeypatch):
    data = _write_npz(tmp_path / "toy.npz")
    monkeypatch.chdir(tmp_path)  # a relative --out, as in the README
    run = tmp_path / "demo"
    code = main(["demo", "--dataset", str(data), "--hidden-size", "8", "--u-rank", "4",
                 "--epochs", "3", "--batch-size", "32", "--out", "demo"])
    assert code == 0
    assert (run / "model.safetensors").is_file() and (run / "c" / "model.c").is_file()
    report = json.loads((run / "c" / "verify.json").read_text())
    ran = [t for t, entry in report["targets"].items() if entry["status"] == "ok"]
    assert "host" in ran
    assert all(report["targets"][t]["exact_match"] == 1.0 for t in ran)
    assert "kiloml verify" in capsys.readouterr().out


def test_demo_of_a_gru_exports_and_verifies(tmp_path, capsys, monkeypatch, require_gcc):
    monkeypatch.setattr("kiloml.cli.DEFAULT_TARGETS", ("host",))  # Cortex-M: tests/deploy
    model = "gru"
    data = _write_npz(tmp_path / "toy.npz")
    code = main(["demo", "--dataset", str(data), "--model", model, "--hidden-size", "4",
                 "--epochs", "1", "--bits", "8", "--out", str(tmp_path / model)])
    assert code == 0
    report = json.loads((tmp_path / model / "c" / "verify.json").read_text())
    assert report["bits"] == 8 and report["targets"]["host"]["exact_match"] == 1.0
    assert f"exported {model}" in capsys.readouterr().out


def test_train_hop_and_speeds_are_kept_for_resume(tmp_path, capsys):
    from kiloml.data.smartwatch import default_path, load_smartwatch

    if default_path() is None or not default_path().is_file():
        pytest.skip("seglearn==1.2.5 is not installed (make setup does)")

    windows = len(load_smartwatch(train_hop=32, train_speeds=(1.25, 1)).train)
    run = tmp_path / "run"
    common = ["--epochs", "1", "--hidden-size", "4", "--u-rank", "2", "--sparsity-w", "1",
              "--sparsity-u", "1", "--sparsity-head", "1", "--out", str(run)]
    assert main(["train", "--train-hop", "32", "--train-speeds", "1.25", "1", *common]) == 0
    data = json.loads((run / "config.json").read_text())["data"]
    assert data["train_hop"] == 32 and data["train_speeds"] == [1.25, 1.0]
    assert f"{windows} train /" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert f"{windows} train /" in capsys.readouterr().out


def _frequencies_npz(path, seed=0):
    """Three classes of noisy sinusoids told apart by frequency (random phase), 16 steps: 32
    training, 40 validation and 40 test sequences."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % 3
        rng.shuffle(y)
        t = np.arange(16)
        x = np.sin((0.5 + 0.8 * y)[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
        return (x + 0.1 * rng.normal(size=x.shape))[:, :, None].astype(np.float32), y

    (xt, yt), (xv, yv), (xs, ys) = make(32), make(40), make(40)
    np.savez(path, X_train=xt, y_train=yt, X_val=xv, y_val=yv, X_test=xs, y_test=ys)
    return path


def test_default_budget_learns_a_small_dataset_that_60_steps_do_not(tmp_path, capsys):
    data = _frequencies_npz(tmp_path / "freq.npz")
    assert main(["train", "--dataset", str(data), "--out", str(tmp_path / "default")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "default" / "metrics.json").read_text())
    config = json.loads((tmp_path / "default" / "config.json").read_text())
    assert metrics["test_accuracy"] == 1.0 and metrics["warning"] is None
    assert metrics["budget"]["steps"] == config["defaults"]["budget"]["steps"] == 2000
    assert config["train"]["batch_size"] == 8 and config["train"]["epochs"] == 500
    assert "budget: 2,000 steps: 500 epochs × 4 batches of 8" in out
    assert "recipe series" in out and "epoch chosen on the 40 validation sequences" in out

    # the old default: 60 epochs at batch 64 are 60 steps for 32 sequences
    assert main(["train", "--dataset", str(data), "--epochs", "15",
                 "--out", str(tmp_path / "short")]) == 0
    short = json.loads((tmp_path / "short" / "metrics.json").read_text())
    assert short["budget"]["steps"] == 60 and short["test_accuracy"] < 0.9


def test_chance_level_warning(tmp_path, capsys):
    x = np.zeros((60, 8, 2), np.float32)  # nothing tells the classes apart
    y = np.arange(60) % 2
    path = tmp_path / "blank.npz"
    np.savez(path, X_train=x, y_train=y, X_val=x[:40], y_val=y[:40], X_test=x[:20],
             y_test=y[:20])
    assert main(["train", "--dataset", str(path), "--epochs", "3", "--hidden-size", "4",
                 "--u-rank", "2", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_val_accuracy"] == 0.5 and metrics["majority_accuracy"] == 0.5
    assert "within 5 points of" in metrics["warning"] and "--epochs" in metrics["warning"]
    assert "warning: validation accuracy 50.0% is within 5 points" in out


def test_epoch_lines_in_a_pipe_are_whole(tmp_path, capsys):
    data = _write_npz(tmp_path / "toy.npz")
    assert main(["train", "--dataset", str(data), "--epochs", "4", "--folds", "0",
                 "--hidden-size", "4", "--u-rank", "2", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 4
    assert all(len(line) > 80 and line.count("acc") == 2 for line in lines)  # not wrapped
    assert all(line.startswith("epoch ") for line in out.splitlines() if "val loss" in line)


def test_small_validation_split_is_cross_validated(tmp_path, capsys):
    data = _write_npz(tmp_path / "toy.npz")  # 96 training sequences: 10 held out for validation
    assert main(["train", "--dataset", str(data), "--epochs", "4", "--hidden-size", "4",
                 "--u-rank", "2", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "5-fold cross-validation on the 96 training and validation sequences" in out
    assert out.count("sequences held out") == 5
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["selection"]["method"] == "cross-validation"
    assert len(metrics["selection"]["fold_accuracies"]) == 5
    assert (tmp_path / "run" / "folds" / "checkpoint-5.safetensors").is_file()


def test_smartwatch_defaults_are_the_demo_s():
    """The imu recipe, budget and selection give the smartwatch data the settings ``make demo``
    was tuned and measured with."""
    from kiloml.cli import _model_config, _train_config, _training_defaults, build_parser
    from kiloml.data.smartwatch import default_path, load_smartwatch
    from kiloml.train.budget import Budget
    from kiloml.train.recipes import Recipe

    if default_path() is None or not default_path().is_file():
        pytest.skip("seglearn==1.2.5 is not installed (make setup does)")
    args = build_parser().parse_args(["train"])
    data = load_smartwatch()
    defaults = _training_defaults(args, data)
    recipe, budget = Recipe(**defaults["recipe"]), Budget.from_dict(defaults["budget"])
    assert recipe.kind == "imu" and defaults["selection"]["folds"] == 0
    train = _train_config(args, budget, recipe)
    assert (train.epochs, train.batch_size, train.lr) == (60, 64, 1e-2)
    assert (train.augment_scale, train.augment_noise, train.augment_rotation) == (0.1, 0.05, 15)
    assert (train.keep_w, train.keep_u, train.keep_head) == (0.5, 0.5, 1.0)
    model = _model_config(args, data, recipe)
    assert (model.hidden_size, model.u_rank, model.w_rank) == (32, 8, None)
    assert (model.update_nonlinearity, model.readout, model.frame_stack) == ("relu", "last", 1)


def test_folds_must_leave_something_to_train_on(tmp_path, capsys):
    data = _write_npz(tmp_path / "toy.npz")
    assert main(["train", "--dataset", str(data), "--folds", "1",
                 "--out", str(tmp_path / "run")]) == 1
    assert "--folds must be 0 or from 2 to the number of training sequences (96); got 1" in (
        _error_line(capsys))
    assert not (tmp_path / "run").exists()


def test_sparsity_block_is_saved_and_checked_on_resume(tmp_path, capsys):
    data, run = _write_npz(tmp_path / "toy.npz"), tmp_path / "run"
    common = ["--dataset", str(data), "--hidden-size", "8", "--epochs", "3", "--out", str(run)]
    assert main(["train", "--sparsity-block", "4", *common]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["sparsity_block"] == 4
    assert "W 50% / U 50% (blocks of 4)" in capsys.readouterr().out
    assert main(["train", "--resume", "--sparsity-block", "2", *common]) == 1
    assert "--sparsity-block 2 (the run: 4)" in capsys.readouterr().err
