"""``kiloml train --model protonn`` on feature vectors: a ``.npz`` with 2-D ``X`` trains,
exports and verifies bit for bit; the input-kind errors (2-D data for a sequence model, 3-D
data for ProtoNN, other families' options) are one line that says what shape was expected."""

import json
import re

import numpy as np
import pytest

from kiloml.cli import main

from .cli_helpers import error_line

PROTONN = ["--model", "protonn", "--projection-dim", "4", "--prototypes", "6", "--epochs", "4",
           "--batch-size", "32", "--folds", "0"]


def _vectors(path, dims: int = 2):
    """Three Gaussian blobs in 12 features; ``dims`` 3 holds them as [N, 3, 4] sequences."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 12)) * 2
    y = np.arange(300) % 3
    X = (centres[y] + rng.normal(size=(300, 12))).astype(np.float32)
    if dims == 3:
        X = X.reshape(300, 3, 4)
    np.savez(path, X_train=X[:240], y_train=y[:240], X_test=X[240:], y_test=y[240:])
    return path


def test_protonn_trains_on_feature_vectors_exports_and_verifies(tmp_path, capsys, require_gcc):
    run, out = tmp_path / "run", tmp_path / "c"
    assert main(["train", "--dataset", str(_vectors(tmp_path / "v.npz")), *PROTONN,
                 "--sparsity-w", "0.5", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"kind": "protonn", "input_size": 12, "num_classes": 3,
                               "projection_dim": 4, "prototypes": 6, "gamma": None,
                               "scale": "common"}
    assert config["defaults"]["recipe"]["kind"] == "vector"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9 and metrics["keep_w"] == 0.5
    assert "training protonn d=4 m=6" in capsys.readouterr().out
    assert main(["export", str(run), "--out", str(out), "--bits", "8"]) == 0
    assert main(["verify", str(out), "--targets", "host"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert report["targets"]["host"]["exact_match"] == 1.0 and report["inputs"] == 60


@pytest.mark.parametrize("dims, model, message", [
    (2, "fastgrnn", r"error: fastgrnn takes sequences \[N, T, F\]; v holds feature vectors "
                    r"\[N, 12\]: use --model protonn or bonsai"),
    (3, "protonn", r"error: protonn takes feature vectors \[N, F\]; v holds sequences "
                   r"\[N, 3, 4\]: flatten each into one vector of 12 features"),
    (3, "bonsai", r"error: bonsai takes feature vectors \[N, F\]; v holds sequences "
                  r"\[N, 3, 4\]"),
])
def test_the_wrong_input_kind_is_a_one_line_error(dims, model, message, tmp_path, capsys):
    data = _vectors(tmp_path / "v.npz", dims)
    assert main(["train", "--dataset", str(data), "--model", model, "--epochs", "3",
                 "--out", str(tmp_path / "run")]) == 1
    assert re.match(message, error_line(capsys))


def test_options_of_other_families_are_errors(tmp_path, capsys):
    data = _vectors(tmp_path / "v.npz")
    assert main(["train", "--dataset", str(data), *PROTONN, "--hidden-size", "8",
                 "--out", str(tmp_path / "a")]) == 1
    assert error_line(capsys) == "error: --hidden-size apply to recurrent models, not protonn"
    assert main(["train", "--dataset", str(data), "--prototypes", "4",
                 "--out", str(tmp_path / "b")]) == 1
    assert error_line(capsys) == "error: --prototypes apply to protonn, not fastgrnn"


def test_bonsai_trains_on_feature_vectors_exports_and_verifies(tmp_path, capsys, require_gcc):
    run, out = tmp_path / "run", tmp_path / "c"
    assert main(["train", "--dataset", str(_vectors(tmp_path / "v.npz")), "--model", "bonsai",
                 "--projection-dim", "4", "--depth", "1", "--epochs", "10", "--lr", "0.05",
                 "--sparsity-w", "1", "--batch-size", "32",
                 "--folds", "0", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"kind": "bonsai", "input_size": 12, "num_classes": 3,
                               "projection_dim": 4, "depth": 1, "sigma": 1.0, "scale": "common",
                               "scaled_projection": True, "projection_bias": True}
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.9
    assert main(["export", str(run), "--out", str(out), "--bits", "16"]) == 0
    assert main(["verify", str(out), "--targets", "host"]) == 0
    assert json.loads((out / "verify.json").read_text())["targets"]["host"]["exact_match"] == 1
    assert main(["train", "--dataset", str(_vectors(tmp_path / "v.npz")), "--model", "bonsai",
                 "--prototypes", "3", "--out", str(tmp_path / "b")]) == 1
    assert error_line(capsys) == "error: --prototypes apply to protonn, not bonsai"


def test_help_lists_protonns_and_bonsais_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--projection-dim", "--prototypes", "--gamma", "--scale", "--depth", "--sigma"):
        assert flag in out, flag
