"""The benchmark scripts' --quick modes: they run end to end and leave complete, well-formed
output (the target numbers are for the full runs, documented in docs/benchmarks.md)."""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA

ROOT = Path(__file__).parents[2]


def run_script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_accuracy_vs_size_quick(tmp_path):
    datasets = ["smartwatch"] + (["fsdd"] if (SHARED_DATA / "fsdd").exists() else [])
    if len(datasets) == 1 and os.environ.get("CI") == "true":
        pytest.fail(f"real data not present: {SHARED_DATA / 'fsdd'}")
    out = tmp_path / "out"
    done = run_script("accuracy_vs_size.py", "--quick", "--out", str(out), "--seeds", "0", "1",
                      "--datasets", *datasets, env={"KILOML_CACHE": str(tmp_path / "cache"),
                                                    "KILOML_DATA": str(SHARED_DATA)})
    assert done.returncode == 0, done.stderr[-2000:]
    report = (out / "accuracy_vs_size.md").read_text()
    for dataset in datasets:
        saved = json.loads((out / f"{dataset}.json").read_text())
        # eight rows: two compressed FastGRNNs, dense FastGRNN, FastRNN, two GRUs, two LSTMs;
        # the audio sets add a wider, sparser FastGRNN, smartwatch a frame-stacked FastGRNN
        # and GRU, each also trained on recordings replayed at three paces
        wide = "FastGRNN compressed h160, 25% kept"
        stacked = ("FastGRNN compressed h120, 8 frames per step",
                   "nn.GRU h64, 8 frames per step")
        assert saved["quick"] is True and len(saved["results"]) == (9 if dataset == "fsdd" else 12)
        assert (wide in saved["results"]) == (dataset == "fsdd")
        for name in stacked:
            for row in (name, f"{name}, 3 paces"):
                assert (row in saved["results"]) == (dataset == "smartwatch")
                if dataset == "smartwatch":
                    config = saved["results"][row]["config"]
                    assert config["model"]["frame_stack"] == 8
                    assert config["train"].get("train_speeds") == (
                        [0.75, 1.0, 1.333] if "paces" in row else None)
        compressed = saved["results"]["FastGRNN compressed"]
        # two seeds: the reported accuracy is their mean, with their spread
        per_seed = [v["test_accuracy"] for v in compressed["seeds"].values()]
        assert sorted(compressed["seeds"]) == ["0", "1"]
        assert compressed["test_accuracy"] == pytest.approx(sum(per_seed) / 2)
        assert compressed["std"]["test_accuracy"] == pytest.approx(
            abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
        # the compressed model keeps about half of W and U, so it is well below the dense one
        assert compressed["params_nonzero"] < saved["results"]["FastGRNN dense"]["params_nonzero"]
        assert {"int16_accuracy", "int8_accuracy"} <= set(compressed)
        assert f"### {dataset}" in report and "| FastGRNN compressed | " in report
        assert (out / f"{dataset}.png").stat().st_size > 10_000
    # a rerun finds every model done and only rewrites the report
    again = run_script("accuracy_vs_size.py", "--quick", "--out", str(out), "--seeds", "0", "1",
                       "--datasets", *datasets, env={"KILOML_CACHE": str(tmp_path / "cache"),
                                                     "KILOML_DATA": str(SHARED_DATA)})
    assert again.returncode == 0, again.stderr[-2000:]
    assert "FastGRNN compressed" not in again.stdout.split("###")[0]


def test_train_speed_quick(tmp_path):
    done = run_script("train_speed.py", "--quick", "--json", str(tmp_path / "speed.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "speed.json").read_text())
    assert result["speed_vs_gru"]["torch.nn.GRU"] == 1.0
    assert {"kiloml FastGRNN (fused)", "torch.nn.LSTM"} <= set(result["speed_vs_gru"])
    assert all(v > 0 for v in result["speed_vs_gru"].values())
    assert "| kiloml FastGRNN (fused) |" in done.stdout


def test_smartwatch_cv_quick(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from smartwatch_cv import MODELS, fold_subjects

    # every subject is tested once, no subject is in two splits of a fold, and fold 4 is
    # kiloml's fixed split
    assert sorted(s for f in range(5) for s in fold_subjects(f)[2]) == list(range(1, 11))
    for f in range(5):
        train, val, test = fold_subjects(f)
        assert sorted(train + val + test) == list(range(1, 11)) and len(val) == 1
    assert fold_subjects(4) == ((1, 2, 3, 4, 5, 6, 7), (8,), (9, 10))
    done = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "smartwatch_cv.json").read_text())
    assert saved["quick"] is True and set(saved["results"]) == set(MODELS)
    for entry in saved["results"].values():
        assert sorted(entry["folds"]) == ["0", "1"]
        assert all(0 <= f["test_accuracy"] <= 1 for f in entry["folds"].values())
        assert ("int8_accuracy" in entry["folds"]["0"]) == (entry["kind"] == "fastgrnn")
    paced = {m for m, e in saved["results"].items() if e["config"]["train"].get("train_speeds")}
    assert paced == {m for m in MODELS if "3 paces" in m} and len(paced) == 2
    report = (tmp_path / "smartwatch_cv.md").read_text()
    assert "| test 1–2 | test 3–4 |" in report and "Most accurate baseline" in report
    # a rerun trains nothing; a second seed trains only that seed
    again = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path))
    assert again.returncode == 0 and "fold 0" not in again.stdout
    # --overwrite retrains the chosen models only
    redo = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path), "--overwrite",
                      "--only", "3 paces")
    assert redo.returncode == 0, redo.stderr[-2000:]
    trained = [line for line in redo.stdout.splitlines() if line.startswith("fold ")]
    assert len(trained) == 4 and all("3 paces" in line for line in trained)  # 2 models x 2 folds
    second = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path), "--seeds", "0", "1")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "seed 1" in second.stdout and "seed 0" not in second.stdout
    entry = json.loads((tmp_path / "smartwatch_cv.json").read_text())["results"][MODELS[0]]
    fold = entry["folds"]["0"]
    assert sorted(fold["seeds"]) == ["0", "1"]
    assert fold["test_accuracy"] == pytest.approx(
        sum(v["test_accuracy"] for v in fold["seeds"].values()) / 2)
    assert "mean over seeds 0, 1" in (tmp_path / "smartwatch_cv.md").read_text()
    # --only trains fewer models but still reports every model with those folds and seeds
    only = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path), "--seeds", "0", "1",
                      "--only", "3 paces")
    assert only.returncode == 0, only.stderr[-2000:]
    rows = [line for line in (tmp_path / "smartwatch_cv.md").read_text().splitlines()
            if line.startswith(("| FastGRNN", "| nn."))]
    assert len(rows) == len(MODELS) == 6
    # denser training windows for some models go to their own files and leave the rest alone
    before = (tmp_path / "smartwatch_cv.json").read_bytes()
    hop = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path), "--train-hop", "32",
                     "--only", "8 frames")
    assert hop.returncode == 0, hop.stderr[-2000:]
    assert (tmp_path / "smartwatch_cv.json").read_bytes() == before
    saved = json.loads((tmp_path / "smartwatch_cv_hop32.json").read_text())
    assert saved["train_hop"] == 32
    stacked = {m for m in MODELS if "8 frames" in m}
    assert set(saved["results"]) == stacked and len(stacked) == 4
    assert "training windows every 32 samples" in (tmp_path / "smartwatch_cv_hop32.md").read_text()
    none = run_script("smartwatch_cv.py", "--quick", "--out", str(tmp_path), "--only", "LSTM")
    assert none.returncode == 2 and "matches none of" in none.stderr


def test_smartwatch_cv_runs_of_other_folds_share_one_file(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "smartwatch_cv.py"), "--quick",
               "--out", str(tmp_path), "--only", "FastGRNN compressed h120"]
    runs = [subprocess.Popen([*command, "--folds", fold], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for fold in ("0", "1")]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
    saved = json.loads((tmp_path / "smartwatch_cv.json").read_text())
    assert len(saved["results"]) == 2  # the stacked FastGRNN, as is and with 3 paces
    for entry in saved["results"].values():
        assert sorted(entry["folds"]) == ["0", "1"]


def test_smartwatch_cv_denser_windows_are_judged_against_every_baseline(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from smartwatch_cv import markdown

    def entry(kind, accuracy, int8=None, size=1000):
        scores = {"test_accuracy": accuracy, **({"int8_accuracy": int8} if int8 else {})}
        return {"kind": kind, "model_size_bytes": size * 20, "model_size_bytes_int8": size,
                "folds": {"0": {"seeds": {"0": scores}}}}

    fast = "FastGRNN compressed h120, 8 frames per step"
    results = {fast: entry("fastgrnn", 0.86, 0.86, 100), "GRU": entry("gru", 0.80)}
    alone = markdown(results, [0], [0], False, 16)
    assert "training windows every 16 samples" in alone
    assert "Most accurate baseline: GRU (80.00%" in alone and "6.00 points ahead: met" in alone
    judged = markdown(results, [0], [0], False, 16, {"GRU": entry("gru", 0.90)})
    assert "Most accurate baseline: GRU, training windows every 64 samples (90.00%" in judged
    assert "4.00 points behind: missed" in judged


def test_smartwatch_subjects_table():
    done = run_script("smartwatch_subjects.py")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    assert all(int(r[1]) == 14 for r in rows)  # 7 exercises x 2 sides each
    length = {int(r[0]): float(r[2].replace(",", "")) for r in rows}
    # subjects 3 and 4 exercise fastest: the shortest recordings, the fastest rotations
    assert sorted(length, key=length.get)[:2] == [4, 3]
    gyro90 = {int(r[0]): float(r[6]) for r in rows}
    assert sorted(gyro90, key=gyro90.get)[-2:] == [3, 4]


def test_ucr_defaults_quick(tmp_path):
    from kiloml.data.uea import sktime_data_dir

    if sktime_data_dir() is None:
        pytest.skip("sktime==1.2.0 is not installed (make setup does)")
    done = run_script("ucr_defaults.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "ucr_defaults.json").read_text())
    run = saved["runs"]["ItalyPowerDemand"]["0"]
    assert saved["quick"] is True and 0 <= run["test_accuracy"] <= 1 and run["seconds"] > 0
    assert (run["recipe"], run["selection"], run["sizes"]["train"]) == (
        "series", "cross-validation", 53)  # 14 validation sequences: cross-validated
    assert "| ItalyPowerDemand | 67 / 1029 | 24 × 1 |" in done.stdout
    assert (tmp_path / "runs" / "ItalyPowerDemand-0" / "metrics.json").is_file()
    assert "| 95.0 | 95.5 |" in done.stdout  # the archive's 1-NN DTW, full and learned window
    again = run_script("ucr_defaults.py", "--quick", "--out", str(tmp_path))
    assert again.returncode == 0 and "seed 0:" not in again.stdout  # nothing retrained


def test_dtw_1nn_reproduces_the_archive():
    from kiloml.data.uea import sktime_data_dir

    if sktime_data_dir() is None:
        pytest.skip("sktime==1.2.0 is not installed (make setup does)")
    done = run_script("dtw_1nn.py", "ItalyPowerDemand")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ItalyPowerDemand: 1-NN full DTW test accuracy 95.04%" in done.stdout  # 1 - 0.0496


def test_kernels_vs_cmsis_quick(tmp_path, request):
    """kiloml's dense kernels against CMSIS-DSP on the Cortex-M4 (two shapes): both compute the
    values numpy expects (the script checks every output) and kiloml needs at most 1.1x CMSIS's
    instructions at int16 and int8. The sdist is kept in pytest's cache between runs."""
    from kiloml.deploy.targets import TARGETS

    if TARGETS["cortex-m4"].missing():
        pytest.skip(f"needs {', '.join(TARGETS['cortex-m4'].missing())}")
    cache = request.config.cache.mkdir("cmsisdsp") / "cmsisdsp-1.10.3"
    out = tmp_path / "kernels.json"
    done = run_script("kernels_vs_cmsis.py", "--quick", "--cache", str(cache), "--json", str(out))
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and list(saved["instructions"]) == ["cortex-m4"]
    counts = saved["instructions"]["cortex-m4"]
    assert set(counts) == {"smartwatch U2", "square 64"}
    for shape in counts.values():
        assert all(n > 0 for n in shape.values())
        assert shape["kiloml int16"] <= 1.1 * shape["CMSIS q15"]
        assert shape["kiloml int8"] <= 1.1 * shape["CMSIS q7"]
    assert "| cortex-m4 | square 64 | 64 × 64 |" in done.stdout


def test_protonn_bonsai_quick(tmp_path):
    if not (SHARED_DATA / "mnist").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data not present: {SHARED_DATA / 'mnist'}")
        pytest.skip("MNIST not present")
    rows = ["ProtoNN mnist-2, d=8 m=10, W 5%", "Bonsai mnist-2, d=10 depth 2, Z 5%"]
    done = run_script("protonn_bonsai.py", "--quick", "--out", str(tmp_path), "--only", *rows,
                      env={"KILOML_DATA": str(SHARED_DATA)})
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "protonn_bonsai_quick.json").read_text())
    assert sorted(saved) == sorted(rows)
    for row in rows:
        result = saved[row]["0"]
        assert 0.5 < result["int8_accuracy"] <= 1 and abs(
            result["int8_accuracy"] - result["float_accuracy"]) < 0.05
        assert 500 < result["int8_flash_bytes"] < 2048  # the 2 KB models
    report = (tmp_path / "protonn_bonsai_quick.md").read_text()
    assert all(row in report for row in rows)


def test_str_vs_iht_quick(tmp_path):
    out = tmp_path / "out"
    done = run_script("str_vs_iht.py", "--quick", "--sparsities", "0.9", "--seeds", "0",
                      "--out", str(out), "--runs", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((out / "str_vs_iht.json").read_text())
    assert [(r["method"], r["sparsity"]) for r in saved["results"]] == [("iht", 0.9),
                                                                        ("str", 0.9)]
    for result in saved["results"]:
        assert abs(result["zeros_of_all_params"] - 0.9) < 0.2  # biases and scalars stay dense
    assert abs(saved["results"][1]["reached"]["total"] - 0.9) <= 0.01
    table = (out / "str_vs_iht.md").read_text()
    assert "| smartwatch | 90% | str | 1 |" in table


def test_kernel_costs_quick_keeps_the_committed_cost_model_true(tmp_path):
    """The storage cost model's constants still predict kl_matvec.c on the Cortex-M4 (two
    shapes, dense, CSR and blocked at int16 and int8; the script checks every output against
    the spec): within 10 % on every matrix, so a kernel change that leaves them stale fails."""
    from kiloml.deploy.targets import TARGETS

    if TARGETS["cortex-m4"].missing():
        pytest.skip(f"needs {', '.join(TARGETS['cortex-m4'].missing())}")
    out = tmp_path / "costs.json"
    done = run_script("kernel_costs.py", "--quick", "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads(out.read_text())
    assert {(m["format"], m["bits"]) for m in saved["measured"]} == {
        (f, b) for f in ("dense", "csr", "blocked") for b in (8, 16)}
    assert max(saved["committed_relative_errors"]) < 0.10
    assert "COSTS = {" in done.stdout


def test_rnnpool_pooling_quick(tmp_path, shared_cache):
    if not (SHARED_DATA / "cifar10").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data not present: {SHARED_DATA / 'cifar10'}")
        pytest.skip("CIFAR-10 not present")
    done = run_script("rnnpool_pooling.py", "--quick", "--out", str(tmp_path),
                      env={"KILOML_DATA": str(SHARED_DATA), "KILOML_CACHE": str(shared_cache)})
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "rnnpool_pooling_quick.json").read_text())
    assert list(saved) == ["RNNPool h1=h2=32", "strided conv, 128 channels",
                           "strided conv, 1 channel", "max pooling", "average pooling"]
    params = {row: saved[row]["0"]["parameters"] for row in saved}
    # RNN1 3->32 and RNN2 32->32 FastGRNN cells, then a 128 -> 10 linear layer
    assert params["RNNPool h1=h2=32"] == (32 * 3 + 32 * 32 + 66) + (32 * 32 * 2 + 66) + 1290
    assert params["strided conv, 1 channel"] == 3073 + 20 <= params["RNNPool h1=h2=32"]
    assert params["max pooling"] == params["average pooling"] == 40
    for row in saved:
        assert 0 <= saved[row]["0"]["test_accuracy"] <= 1 and saved[row]["0"]["epochs"] == 1
    report = (tmp_path / "rnnpool_pooling_quick.md").read_text()
    assert "| RNNPool h1=h2=32 | 4,590 |" in report and "one run" in report
    first = saved["RNNPool h1=h2=32"]["0"]
    assert (first["lr"], first["batch"]) == (0.003, 64)
    assert [h["epoch"] for h in first["history"]] == [0]
    assert first["history"][0]["val_accuracy"] == round(first["val_accuracy"], 4)
    # another recipe goes to its own file, the default one's results untouched
    done = run_script("rnnpool_pooling.py", "--quick", "--out", str(tmp_path), "--epochs", "15",
                      "--augment", "--only", "max pooling", "--lr", "0.01", "--batch", "32",
                      env={"KILOML_DATA": str(SHARED_DATA), "KILOML_CACHE": str(shared_cache)})
    assert done.returncode == 0, done.stderr[-2000:]
    other = json.loads((tmp_path / "rnnpool_pooling_15ep_aug_lr0.01_b32_quick.json").read_text())
    assert list(other) == ["max pooling"] and other["max pooling"]["0"]["augment"] is True
    assert (other["max pooling"]["0"]["lr"], other["max pooling"]["0"]["batch"]) == (0.01, 32)
    assert json.loads((tmp_path / "rnnpool_pooling_quick.json").read_text()) == saved
    report = (tmp_path / "rnnpool_pooling_15ep_aug_lr0.01_b32_quick.md").read_text()
    assert "horizontal flip" in report and "batch 32, Adam lr 0.01" in report
    # EdgeML's initialisation: only the RNNPool row, in its own file
    done = run_script("rnnpool_pooling.py", "--quick", "--out", str(tmp_path), "--init", "edgeml",
                      env={"KILOML_DATA": str(SHARED_DATA), "KILOML_CACHE": str(shared_cache)})
    assert done.returncode == 0, done.stderr[-2000:]
    edgeml = json.loads((tmp_path / "rnnpool_pooling_edgeml_quick.json").read_text())
    assert list(edgeml) == ["RNNPool h1=h2=32"]
    assert edgeml["RNNPool h1=h2=32"]["0"]["init"] == "edgeml"
    assert edgeml["RNNPool h1=h2=32"]["0"]["parameters"] == params["RNNPool h1=h2=32"]
    assert saved["RNNPool h1=h2=32"]["0"]["init"] == "kiloml"
    assert "initialised as edgeml's" in (tmp_path / "rnnpool_pooling_edgeml_quick.md").read_text()
    done = run_script("rnnpool_pooling.py", "--quick", "--out", str(tmp_path), "--init", "edgeml",
                      "--only", "max pooling")
    assert done.returncode != 0 and "the other rows have none" in done.stderr
    done = run_script("rnnpool_pooling.py", "--quick", "--out", str(tmp_path), "--lr", "0")
    assert done.returncode != 0 and "--lr must be between 0 and 1, got 0" in done.stderr


def test_vision_models_quick(tmp_path, shared_cache):
    if not (SHARED_DATA / "cifar10").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data not present: {SHARED_DATA / 'cifar10'}")
        pytest.skip("CIFAR-10 not present")
    env = {"KILOML_DATA": str(SHARED_DATA), "KILOML_CACHE": str(shared_cache)}
    done = run_script("vision_models.py", "--quick", "--out", str(tmp_path), "--models",
                      "rnnpool-mobilenetv2", "--seeds", "0", "1", "--runs",
                      str(tmp_path / "runs"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = {seed: json.loads((tmp_path / f"vision_models_quick_seed{seed}.json").read_text())
             for seed in (0, 1)}
    assert [list(rows) for rows in saved.values()] == [["rnnpool-mobilenetv2"]] * 2
    pool = saved[1]["rnnpool-mobilenetv2"]
    assert pool["seed"] == 1 and saved[0]["rnnpool-mobilenetv2"]["seed"] == 0
    assert pool["train_images"] == pool["test_images"] == 200 and pool["epochs"] == 1
    assert pool["peak_bytes_patch_by_patch"] < pool["peak_bytes_layer_by_layer"]
    assert 0 <= pool["test_accuracy"] <= 1 and pool["config"]["rnnpool_hidden"] == 4
    # the kept run: its int8 accuracy on the same test images, every schedule bit-exact
    check_vision_int8(tmp_path, pool, env)
    # a later run adds a model to seed 0 only; the report lists each row's seeds
    done = run_script("vision_models.py", "--quick", "--out", str(tmp_path), "--models",
                      "mobilenetv2", "--seeds", "0", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    base = json.loads((tmp_path / "vision_models_quick_seed0.json").read_text())["mobilenetv2"]
    # width 0.25 at 96x96: block 1's depthwise, 48 channels 48x48 in, 24x24 out (stride 2)
    assert base["peak_bytes_layer_by_layer"] == 48 * 48 * 48 + 48 * 24 * 24
    report = (tmp_path / "vision_models_quick.md").read_text()
    assert "| mobilenetv2 | 0.25 | 0 | 155,666 |" in report
    assert "| rnnpool-mobilenetv2 | 0.25 | 0, 1 | 151,542 |" in report
    assert "(negative: above; 1 / 2 seeds)" in report and "### Seed 1" in report
    # a seed file of another budget is refused before any training
    other = tmp_path / "vision_models_seed0.json"
    other.write_bytes((tmp_path / "vision_models_quick_seed0.json").read_bytes())
    done = run_script("vision_models.py", "--width-mult", "0.25", "--epochs", "2", "--out",
                      str(tmp_path), "--seeds", "0", env=env)
    assert done.returncode != 0 and "holds runs of another budget (epochs 1," in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # --report rewrites the table alone
    (tmp_path / "vision_models_quick.md").unlink()
    done = run_script("vision_models.py", "--quick", "--report", "--out", str(tmp_path))
    assert done.returncode == 0 and "| rnnpool-mobilenetv2 | 0.25 | 0, 1 |" in done.stdout


def check_vision_int8(tmp_path, row: dict, env: dict) -> None:
    """vision_int8.py on seed 1's kept run (``row``: its row of vision_models.py): the float
    accuracy measured again on the same test images, both schedules exported and bit-exact on
    the host with the layer graph's logits, and the table."""
    run = tmp_path / "runs" / "rnnpool-mobilenetv2-seed1"
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["subsets"] == {"train": 200, "val": 200, "test": 200}
    out = tmp_path / "int8"
    done = run_script("vision_int8.py", str(run), "--out", str(out), "--targets", "host",
                      env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((out / "vision_int8_rnnpool-mobilenetv2-seed1.json").read_text())
    assert saved["float_accuracy"] == row["test_accuracy"] and saved["test_images"] == 200
    assert 0.5 <= saved["float_int8_agreement"] <= 1 and 0 <= saved["int8_accuracy"] <= 1
    assert list(saved["schedules"]) == ["layers", "rnnpool"]
    for schedule in saved["schedules"].values():
        assert schedule["exact"] == {"host": 1.0} and schedule["same_logits"]
    rnnpool = saved["schedules"]["rnnpool"]
    assert rnnpool["planned_arena_bytes"] < saved["schedules"]["layers"]["planned_arena_bytes"]
    report = (out / "vision_int8.md").read_text()
    assert "| rnnpool-mobilenetv2 | rnnpool | 1 | nodes 0–" in report
    assert (f"tiles | 200 | {100 * row['test_accuracy']:.2f} % | "
            f"{100 * saved['int8_accuracy']:.2f} % | {rnnpool['planned_arena_bytes']:,} | – |"
            in report)


def test_vision_models_shapes_only():
    done = run_script("vision_models.py", "--shapes-only", "--width-mult", "0.35")
    assert done.returncode == 0, done.stderr[-2000:]
    # 96x96 at width 0.35: block 1's depthwise 48x48x48 in, 24x24x48 out, as int8 bytes
    assert "| mobilenetv2 | 0.35 | 295,970 | 9,820,400 | 138,240 B (blocks.1.depthwise) |" in \
        done.stdout
    assert "34,560 B (blocks.0.depthwise)" in done.stdout


def test_str_rank_quick(tmp_path):
    out = tmp_path / "out"
    done = run_script("str_rank.py", "--quick", "--configurations", "learned 0.75",
                      "fixed U rank 2", "--seeds", "0", "--out", str(out), "--runs",
                      str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr[-2000:]
    learned, fixed = json.loads((out / "str_rank_quick.json").read_text())["results"]
    assert learned["u_rank"] == learned["learned_ranks"]["rnn.cell.U"] >= 1
    assert learned["reached"]["total"] >= 0.75 - 1e-9
    assert (fixed["w_rank"], fixed["u_rank"], fixed["learned_ranks"]) == (None, 2, None)
    assert "| fixed U rank 2 | 1 |" in (out / "str_rank_quick.md").read_text()


def test_rnnpool_deploy_small(tmp_path, shared_cache):
    """A tiny RNNPool -> linear model through codegen: the host build equals the simulator."""
    if not (SHARED_DATA / "cifar10").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data not present: {SHARED_DATA / 'cifar10'}")
        pytest.skip("CIFAR-10 not present")
    out = tmp_path / "deploy.json"
    done = run_script("rnnpool_deploy.py", "--hidden", "4", "--train-images", "200",
                      "--test-images", "5", "--targets", "host", "--out", str(out),
                      env={"KILOML_DATA": str(SHARED_DATA), "KILOML_CACHE": str(shared_cache)})
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads(out.read_text())
    assert saved["targets"] == {"host": {"exact_match": 1.0}} and saved["test_images"] == 5
    # arena: summaries (32 + 32) x 4, one gathered row 32 x 3, pooled 4 and xn 4 (int16),
    # preact 4 (int32), and the pooled vector 16 (int16) the head reads
    assert saved["arena_bytes"] == 2 * (256 + 96 + 4 + 4) + 4 * 4 + 2 * 16
    assert saved["macs"] > 0 and 0 <= saved["integer_accuracy"] <= 1


def test_golden_costs_speed_storage_runs_the_smartwatch_default_faster(tmp_path):
    """``--storage-by speed`` stores the smartwatch golden's matrices dense (its logits are
    checked by the script): fewer Cortex-M4 instructions than the bytes rule, more flash."""
    from kiloml.deploy.targets import TARGETS

    if TARGETS["cortex-m4"].missing():
        pytest.skip(f"needs {', '.join(TARGETS['cortex-m4'].missing())}")
    results = {}
    for rule in ("bytes", "speed"):
        out = tmp_path / f"{rule}.json"
        done = run_script("golden_costs.py", "demo-int16", "--targets", "cortex-m4",
                          "--storage-by", rule, "--json", str(out))
        assert done.returncode == 0, done.stderr[-2000:]
        results[rule] = json.loads(out.read_text())["demo-int16"]["targets"]["cortex-m4"]
    bytes_rule, speed = results["bytes"], results["speed"]
    golden = bytes_rule["golden_instructions_per_inference"]
    assert bytes_rule["instructions_per_inference"] == golden
    # 452,970 against 559,964 with the paired CSR rows (0.81)
    assert speed["instructions_per_inference"] < 0.85 * bytes_rule["instructions_per_inference"]
    assert speed["flash_bytes"] > bytes_rule["flash_bytes"]


def test_image_op_instructions_quick(require_cortex_m):
    """Every int8 image op on small maps: C equals the simulator on the Cortex-M4 and a row
    with a positive instruction count per MAC is printed for each."""
    done = run_script("image_op_instructions.py", "--quick", "--inputs", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 9
    assert all(float(row.split()[-1]) > 0 for row in rows)


def test_edgeml_protonn_bonsai_help_and_quick_without_edgeml(tmp_path):
    """The EdgeML comparison parses its options, and without edgeml-pytorch (it lives in the
    benchmarks' environment only) says so and still runs kiloml's trainer."""
    done = run_script("edgeml_protonn_bonsai.py", "--help")
    assert done.returncode == 0 and "--epochs-bonsai" in done.stdout
    bad = run_script("edgeml_protonn_bonsai.py", "--datasets", "cifar10")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    if not (SHARED_DATA / "mnist").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data not present: {SHARED_DATA / 'mnist'}")
        pytest.skip("MNIST not present")
    installed = importlib.util.find_spec("edgeml_pytorch") is not None
    done = run_script("edgeml_protonn_bonsai.py", "--quick", "--datasets", "mnist-2",
                      "--seeds", "0", "1", "--out", str(tmp_path),
                      *(["--no-edgeml"] if installed else []),
                      env={"KILOML_DATA": str(SHARED_DATA)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EdgeML skipped: edgeml-pytorch is not importable here (" + (
        "not run (--no-edgeml)" if installed else "ModuleNotFoundError") in done.stderr
    saved = json.loads((tmp_path / "edgeml_protonn_bonsai_quick_seed0.json").read_text())
    other = json.loads((tmp_path / "edgeml_protonn_bonsai_quick_seed1.json").read_text())
    assert saved["edgeml"].startswith("skipped") and saved["patches"] == []
    assert (saved["seed"], other["seed"]) == (0, 1)
    protonn, bonsai = saved["rows"]["protonn mnist-2"], saved["rows"]["bonsai mnist-2"]
    assert list(protonn) == list(bonsai) == ["kiloml"]
    # the examples' shapes: ProtoNN d=10, m=20 dense (784·10 + 10·20 + 2·20 values, 4 B each);
    # Bonsai d=10, depth 2 with Z 20 % kept (8 B per nonzero) and W, V, theta dense
    assert protonn["kiloml"]["edgeml_rule_bytes"] == 4 * (7840 + 200 + 40)
    assert protonn["kiloml"]["batch_size"] == 32 and bonsai["kiloml"]["batch_size"] == 100
    assert bonsai["kiloml"]["kept"] == {"Z": 0.2, "theta": 1.0, "W": 1.0, "V": 1.0}
    for row in (protonn, bonsai):
        assert 0.6 < row["kiloml"]["test_accuracy"] <= 1 and row["kiloml"]["epochs"] == 3
    report = (tmp_path / "edgeml_protonn_bonsai_quick.md").read_text()
    assert "| protonn | mnist-2 | kiloml |" in report and "EdgeML: skipped" in report
    # the two seeds' mean and sample standard deviation, then each seed's table
    accuracies = [r["rows"]["bonsai mnist-2"]["kiloml"]["test_accuracy"] for r in (saved, other)]
    mean, std = 100 * statistics.fmean(accuracies), 100 * statistics.stdev(accuracies)
    assert f"| bonsai | mnist-2 | kiloml | 0, 1 | {mean:.2f} ± {std:.2f} % |" in report
    assert "### Seed 0" in report and "### Seed 1" in report
    # a later run of one trainer replaces only its rows in the seed file
    again = run_script("edgeml_protonn_bonsai.py", "--quick", "--datasets", "mnist-2",
                       "--models", "bonsai", "--no-edgeml", "--out", str(tmp_path),
                       env={"KILOML_DATA": str(SHARED_DATA)})
    assert again.returncode == 0, again.stderr[-2000:]
    merged = json.loads((tmp_path / "edgeml_protonn_bonsai_quick_seed0.json").read_text())
    assert merged["rows"]["protonn mnist-2"] == saved["rows"]["protonn mnist-2"]
    assert merged["rows"]["bonsai mnist-2"]["kiloml"]["measured"] >= \
        saved["rows"]["bonsai mnist-2"]["kiloml"]["measured"]


def test_stream_eval_groups_seeds(tmp_path):
    from kiloml.cli import main
    from tests.conftest import synthetic_splits

    d = synthetic_splits(classes=4)
    data = tmp_path / "c4.npz"
    np.savez(data, X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y,
             class_names=np.array(["_silence_", "a", "b", "c"]))
    for seed in (0, 1):
        assert main(["train", "--dataset", str(data), "--hidden-size", "8", "--epochs", "3",
                     "--folds", "0", "--seed", str(seed), "--out",
                     str(tmp_path / f"fg-{seed}")]) == 0
    done = run_script("stream_eval.py", str(tmp_path / "fg-0"), str(tmp_path / "fg-1"),
                      "--hop", "4", "--target", "none")
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("| fg |"))
    assert row.startswith("| fg | 2 | 4 | ") and " ± " in row
    assert sum(line.startswith(("fg-0:", "fg-1:")) for line in done.stdout.splitlines()) == 2


def test_image_schedules_small(tmp_path, require_gcc):
    """32x32 images on the host: every schedule's C equals the simulator, the patch schedules
    give the layer-by-layer integers, and tiling lowers the first stages' RAM while adding
    MACs."""
    out = tmp_path / "schedules.json"
    done = run_script("image_schedules.py", "--size", "32", "--patches", "1", "2",
                      "--inputs", "1", "--targets", "host", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    schedules = report["schedules"]
    assert report["patches_equal_layers"] is True
    assert list(schedules) == ["layers", "patches 1x1, 9 nodes", "patches 2x2, 9 nodes",
                              "patches 1x1, 12 nodes", "patches 2x2, 12 nodes", "rnnpool"]
    assert all(s["targets"]["host"]["exact_match"] == 1.0 for s in schedules.values())
    layers, tiled = schedules["layers"], schedules["patches 1x1, 9 nodes"]
    assert tiled["first_stages_bytes"] < layers["first_stages_bytes"]
    assert tiled["macs"] > schedules["patches 2x2, 9 nodes"]["macs"] > layers["macs"]
    assert tiled["weight_flash_bytes"] == layers["weight_flash_bytes"]
    assert "| schedule | first stages' RAM |" in done.stdout


def test_image_export_small(tmp_path, require_gcc):
    """A tiny trained mobilenetv2 run (32x32, width 0.25): both schedules exported and bit-exact
    on the host, the patch schedule's planned arena below layer by layer, the best two-stage
    tiling at most the best one-stage one."""
    from tests.data.test_cifar10 import tiny_cifar

    cifar = tiny_cifar(tmp_path / "cifar", train_per_class=10, test_per_class=2)
    env = {"KILOML_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "kiloml.cli", "train", "--dataset", "cifar10",
                              "--data-dir", str(cifar), "--model", "mobilenetv2",
                              "--width-mult", "0.25", "--epochs", "1", "--batch-size", "16",
                              "--folds", "0", "--out", str(run)], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = run_script("image_export.py", str(run), "--out", str(tmp_path / "out"),
                      "--targets", "host", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "image_export.json").read_text())["run"]
    rows = report["schedules"]
    assert list(rows) == ["layers", "patches"]
    assert all(r["exact"] == {"host": 1.0} for r in rows.values())
    assert rows["patches"]["planned_arena_bytes"] < rows["layers"]["planned_arena_bytes"]
    tilings = report["tilings"]["patches"]
    assert tilings["2 stages"]["arena_bytes"] <= tilings["1 stage"]["arena_bytes"]
    assert "| mobilenetv2 | patches |" in done.stdout


def test_mi_sharnn_chooses_on_the_validation_stream_and_streams_the_test(tmp_path):
    from kiloml.cli import main
    from tests.conftest import synthetic_splits

    d = synthetic_splits(classes=4)
    data = tmp_path / "c4.npz"
    np.savez(data, X_train=d.train.x, y_train=d.train.y, X_val=d.val.x, y_val=d.val.y,
             X_test=d.test.x, y_test=d.test.y, class_names=np.array(["_silence_", "a", "b", "c"]))
    emi = tmp_path / "emi-0"
    assert main(["train", "--dataset", str(data), "--model", "emi-fastgrnn", "--hidden-size",
                 "8", "--epochs", "3", "--rounds", "1", "--instance-width", "6",
                 "--instance-stride", "3", "--keep-instances", "2", "--out", str(emi)]) == 0
    small = "--hidden-size 4 --upper-hidden-size 4 --u-rank 2"
    done = run_script("mi_sharnn.py", str(emi), "--out", str(tmp_path / "mi"), "--brick", "3",
                      "--candidate", f"--epochs 3 {small}", "--candidate", f"--epochs 4 {small}",
                      "--target", "none")
    assert done.returncode == 0, done.stderr[-2000:]
    # both candidates trained through kiloml train --instances-from, as normal runs
    for j in (0, 1):
        config = json.loads((tmp_path / "mi" / f"mi-emi-0-c{j}" / "config.json").read_text())
        assert config["mi"]["instance_width"] == 6 and config["train"]["epochs"] == 3 + j
    assert "| c1 | `--epochs 4" in done.stdout
    chosen = next(line for line in done.stdout.splitlines() if line.startswith("chosen on"))
    row = next(line for line in done.stdout.splitlines() if line.startswith("| mi-emi |"))
    assert row.startswith("| mi-emi | 1 | 3 | 12 | ")  # a decision every brick on 12 frames
    # the candidate of higher validation-stream accuracy (the first on a tie)
    val = {line.split(" | ")[0][2:]: float(line.split(" | ")[2])
           for line in done.stdout.splitlines() if line.startswith(("| c0 ", "| c1 "))}
    assert chosen.split(": ")[1].startswith(max(val, key=val.get) + " ")
