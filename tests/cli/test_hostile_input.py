"""Careless and hostile input: each case is a clear one-line error (or a correct result), never a
traceback, never a silently wrong result, never a lost file."""

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from kiloml.cli import main
from kiloml.deploy import targets, verify
from kiloml.outputs import MARKER, OutputLock
from kiloml.progress import summary_table
from tests.conftest import synthetic_splits

from .cli_helpers import QUICK, error_line, train, write_npz


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its contents (``None`` for folders)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run of the synthetic task, and its data."""
    root = tmp_path_factory.mktemp("hostile")
    data = write_npz(root / "data" / "toy.npz")
    assert train(data, root / "run") == 0
    return root / "run"


# -- destroys user files -------------------------------------------------------------------------

def test_overwrite_never_empties_a_folder_of_notes(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    notes = tmp_path / "nonempty"
    notes.mkdir()
    (notes / "notes.txt").write_text("three years of lab notes")
    before = _tree(tmp_path)
    assert train(data, notes, "--overwrite") == 1
    assert "--out" in error_line(capsys) and _tree(tmp_path) == before


def test_overwrite_never_deletes_the_folder_holding_the_dataset(tmp_path, capsys):
    victim = tmp_path / "victim2"
    data = write_npz(victim / "mydata.npz")
    before = _tree(tmp_path)
    assert train(data, victim, "--overwrite") == 1
    assert "was not written by kiloml" in error_line(capsys)
    assert _tree(tmp_path) == before


def test_overwrite_never_empties_the_current_directory(tmp_path, capsys, monkeypatch):
    write_npz(tmp_path / "toy.npz")
    (tmp_path / "thesis.tex").write_text("chapter 1")
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    assert main(["train", "--dataset", "toy.npz", *QUICK, "--out", ".", "--overwrite"]) == 1
    assert "--out .: folder is not empty" in error_line(capsys)
    assert _tree(tmp_path) == before


def test_a_typo_in_the_dataset_leaves_the_run_to_overwrite_intact(run, tmp_path, capsys):
    before = _tree(run)
    code = main(["train", "--dataset", str(tmp_path / "mydta.npz"), "--out", str(run),
                 "--overwrite"])
    assert code == 1 and "mydta.npz: file not found" in error_line(capsys)
    assert _tree(run) == before


def test_overwrite_replaces_only_kilomls_files(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert train(data, out) == 0
    assert main(["export", str(out), "--out", str(out / "c")]) == 0  # as kiloml demo does
    (out / "my-notes.txt").write_text("keep me")
    (out / "c" / "my_app.c").write_text("keep me too")
    old_weights = (out / "model.safetensors").read_bytes()
    assert train(data, out, "--overwrite", "--seed", "1") == 0
    assert (out / "my-notes.txt").read_text() == "keep me"
    assert (out / "model.safetensors").read_bytes() != old_weights
    assert sorted(p.name for p in (out / "c").iterdir()) == [MARKER, "my_app.c"]
    assert main(["export", str(out), "--out", str(out / "c")]) == 0
    assert (out / "c" / "model.c").is_file() and (out / "c" / "my_app.c").is_file()


def test_export_never_writes_into_a_folder_that_is_not_an_export(run, tmp_path, capsys):
    project = tmp_path / "firmware"
    project.mkdir()
    for name in ("README.md", "Makefile", "main.c"):
        (project / name).write_text(f"my own {name}")
    before = _tree(project)
    assert main(["export", str(run), "--out", str(project)]) == 1
    assert "was not written by kiloml" in error_line(capsys)
    assert main(["export", str(run), "--out", str(project), "--overwrite"]) == 1
    assert _tree(project) == before


def test_two_trainings_into_one_directory_cannot_both_proceed(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    out.mkdir()
    with OutputLock(out):  # what a first `kiloml train --out run` holds while it trains
        assert train(data, out) == 1
        assert "another kiloml command is writing to this directory" in error_line(capsys)
        assert train(data, out, "--overwrite") == 1
        error_line(capsys)
    assert list(out.iterdir()) == []
    assert train(data, out) == 0


# -- silently wrong ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--lr", "-1"), ("--lr", "0"),
    ("--augment-noise", "nan"), ("--augment-scale", "inf"), ("--augment-rotation", "-5"),
    ("--seed", "99999999999999999999999"), ("--seed", "-1"),
])
def test_numbers_are_checked_where_they_enter(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", flag, value, "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: argument ") and flag in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, capsys,
                                                                       monkeypatch):
    from kiloml.train.trainer import Trainer

    original = Trainer._train_epoch

    def poisoned(self, epoch):
        if epoch == 2:  # as an exploding step would leave them
            with torch.no_grad():
                self.model.head.weight.fill_(float("inf"))
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", poisoned)
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--hidden-size", "8", "--epochs", "5",
                 "--folds", "0", "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "training diverged in epoch 3, batch 1: the loss is nan" in line
    assert "the last good epoch (2) stays in" in line
    assert not (out / "model.safetensors").exists()
    checkpoint = load_file(str(out / "checkpoint.safetensors"))
    assert all(torch.isfinite(t.float()).all() for t in checkpoint.values())


def test_a_huge_learning_rate_is_stopped_not_saved(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    assert train(data, tmp_path / "run", "--lr", "1e30") == 1
    assert "training diverged in epoch 1" in error_line(capsys)
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("scale,message", [
    (1e30, "too large for float32 statistics"),
    (1e39, "NaN/inf feature values, or values beyond float32's range"),
])
def test_features_too_large_for_float32(scale, message, tmp_path, capsys):
    x = synthetic_splits().train.x.astype(np.float64) * scale
    data = write_npz(tmp_path / "big.npz", X_train=x)
    assert train(data, tmp_path / "run") == 1
    assert message in error_line(capsys)


def test_complex_features_are_refused_not_cast(tmp_path, capsys):
    data = write_npz(tmp_path / "c.npz", X_train=synthetic_splits().train.x + 1j)
    assert train(data, tmp_path / "run") == 1
    assert "complex feature values" in error_line(capsys)


def test_export_refuses_nan_inputs(run, tmp_path, capsys):
    d = synthetic_splits()
    X_test = d.test.x.copy()
    X_test[2, 3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X_train=d.train.x, X_test=X_test, y_test=d.test.y)
    assert main(["export", str(run), "--out", str(tmp_path / "c"), "--data",
                 str(tmp_path / "nan.npz")]) == 1
    assert "X_test: 1 NaN/inf feature values" in error_line(capsys)
    assert not (tmp_path / "c").exists()


def test_export_and_eval_refuse_a_run_with_nan_weights(run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    weights = load_file(str(broken / "model.safetensors"))
    weights["rnn.cell.bias_update"].view(-1)[0] = float("nan")
    save_file(weights, str(broken / "model.safetensors"))
    assert main(["export", str(broken), "--out", str(tmp_path / "c")]) == 1
    assert "rnn.cell.bias_update holds 1 NaN/inf values" in error_line(capsys)
    assert main(["eval", str(broken)]) == 1
    assert "the run diverged" in error_line(capsys)
    assert not (tmp_path / "c").exists()


def test_resume_refuses_other_flags_naming_each(run, capsys):
    code = main(["train", "--out", str(run), "--resume", "--epochs", "30", "--hidden-size", "64",
                 "--model", "gru", "--lr", "0.5"])
    assert code == 1
    line = error_line(capsys)
    for part in ("--epochs 30 (the run: 3)", "--hidden-size 64 (the run: 8)",
                 "--model gru (the run: fastgrnn)", "--lr 0.5 (the run: 0.01)"):
        assert part in line


def test_resume_accepts_the_flags_it_started_with(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert train(data, out) == 0
    capsys.readouterr()
    assert train(data, out, "--resume") == 0  # the same options, given again


def test_eval_finds_the_recorded_data_from_any_directory(run, tmp_path, capsys, monkeypatch):
    metrics = json.loads((run / "metrics.json").read_text())
    bigger = tmp_path / "data" / "toy.npz"  # same relative path, other data
    d = synthetic_splits(n_test=80, seed=5)
    write_npz(bigger, X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}% on 32 toy" in out
    assert main(["eval", str(run), "--data", "data/toy.npz"]) == 0
    assert "on 80 toy" in capsys.readouterr().out


def test_changed_data_is_refused_by_eval_resume_and_export(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert train(data, out) == 0
    d = synthetic_splits(steps=9)  # the file changes shape
    write_npz(data, X_train=d.train.x, X_test=d.test.x)
    assert main(["eval", str(out)]) == 1
    line = error_line(capsys)
    assert "the data changed since the run was trained" in line and "pass --data" in line
    assert main(["train", "--out", str(out), "--resume"]) == 1
    assert "--resume needs the data the run started with" in error_line(capsys)
    assert main(["export", str(out), "--out", str(tmp_path / "c")]) == 1
    assert "the data changed" in error_line(capsys)
    write_npz(data, X_test=synthetic_splits(seed=3).test.x)  # same size, other contents
    assert main(["eval", str(out)]) == 1
    assert "same size, different contents" in error_line(capsys)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, capsys, monkeypatch):
    from kiloml.train.trainer import Trainer

    data = write_npz(tmp_path / "toy.npz")
    assert train(data, tmp_path / "straight", "--epochs", "4") == 0
    original = Trainer._train_epoch

    def interrupted(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C in the third epoch
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    assert train(data, tmp_path / "resumed", "--epochs", "4") == 130
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    assert main(["train", "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    assert (load_file(str(tmp_path / "straight" / "model.safetensors")).keys()
            == load_file(str(tmp_path / "resumed" / "model.safetensors")).keys())
    for name, tensor in load_file(str(tmp_path / "straight" / "model.safetensors")).items():
        assert torch.equal(tensor, load_file(str(tmp_path / "resumed" / "model.safetensors"))[name])


def test_resume_of_a_run_with_an_impossible_seed(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert train(data, out) == 0
    config = json.loads((out / "config.json").read_text())
    config["train"]["seed"] = 99999999999999999999999  # as an earlier kiloml saved it
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume"]) == 1
    assert "--seed must be a whole number from 0 to 4294967295" in error_line(capsys)


def test_resume_with_a_checkpoint_of_another_run(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    assert train(data, tmp_path / "a") == 0
    assert train(data, tmp_path / "b", "--hidden-size", "6") == 0
    (tmp_path / "a" / "checkpoint.safetensors").write_bytes(
        (tmp_path / "b" / "checkpoint.safetensors").read_bytes())
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "a"), "--resume"]) == 1
    assert "a checkpoint of another model" in error_line(capsys)


def test_verify_needs_a_target_that_ran(run, tmp_path, capsys, monkeypatch, require_gcc):
    out = tmp_path / "c"
    assert main(["export", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--targets", ","]) == 1
    assert "names no target" in error_line(capsys)
    absent = {name: dataclasses.replace(target, compiler="no-such-compiler")
              for name, target in targets.TARGETS.items()}
    with monkeypatch.context() as patch:
        for name, target in absent.items():
            patch.setitem(targets.TARGETS, name, target)
        assert main(["verify", str(out), "--targets", "host,cortex-m4"]) == 1
        assert "nothing was verified: every target was skipped" in capsys.readouterr().err
    monkeypatch.setitem(targets.TARGETS, "cortex-m4", absent["cortex-m4"])
    assert main(["verify", str(out), "--targets", "host"]) == 0
    assert main(["verify", str(out), "--targets", "host", "--require", "cortex-m4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: required target(s) cortex-m4 skipped")


def test_verify_fails_when_the_c_differs(run, tmp_path, capsys, monkeypatch, require_gcc):
    out = tmp_path / "c"
    assert main(["export", str(run), "--out", str(out)]) == 0
    simulate = verify.simulate_values

    def off_by_one(graph, inputs):
        return {name: value + 1 if name == graph.output else value
                for name, value in simulate(graph, inputs).items()}

    monkeypatch.setattr(verify, "simulate_values", off_by_one)
    assert main(["verify", str(out), "--targets", "host"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the C differs from the integer simulator on host (0.00% "
                              "exact)")


def test_a_tiny_kept_fraction_is_refused_not_rounded_up(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    assert train(data, tmp_path / "run", "--sparsity-w", "1e-9") == 1
    assert "--sparsity-w 1e-09 keeps no weight of rnn.cell.W" in error_line(capsys)
    table = summary_table({"dataset": "d", "model": "m", "test_accuracy": 0.5,
                           "model_size_bytes": 1, "model_size_bytes_int8": 1,
                           "params_nonzero": 1, "params_total": 2, "macs_per_inference": 1,
                           "keep_w": 0.004, "keep_u": 0.5, "keep_head": 1.0}, "t")
    assert "W 0.4% / U 50%" in [str(c) for c in table.columns[1]._cells]


# -- tracebacks ----------------------------------------------------------------------------------

def _out_cases(tmp: Path) -> list[tuple[Path, str]]:
    (tmp / "a-file").write_text("x")
    return [(tmp / "a-file", "exists and is a file"),
            (tmp / "a-file" / "run", "is a file, so no directory can be made under it"),
            (Path("/sys/kiloml-test/run"), "--out /sys/kiloml-test/run")]


def test_train_and_export_into_impossible_places(run, tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    for out, message in _out_cases(tmp_path):
        assert train(data, out) == 1
        assert message in error_line(capsys)
        assert main(["export", str(run), "--out", str(out)]) == 1
        assert message in error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_train_into_an_unwritable_folder(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert train(data, locked / "run") == 1
    assert "is not writable (permission denied)" in error_line(capsys)


def test_markup_in_paths_and_values_is_printed_as_is(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "data/[/bold]x.npz", "--out", "r"]) == 1
    assert "data/[/bold]x.npz: file not found" in error_line(capsys)
    assert main(["train", "--train-speeds", "nan", "--out", "r"]) == 1
    assert "got [nan]" in error_line(capsys)
    data = write_npz(tmp_path / "[red]data.npz")
    assert main(["train", "--dataset", str(data), *QUICK, "--out", "runs/[/x]"]) == 0
    out = capsys.readouterr().out
    assert "into runs/[/x]" in out and "[red]data" in out
    assert main(["info", "runs/[/x]"]) == 0 and main(["eval", "runs/[/x]"]) == 0
    assert "runs/[/x]: test accuracy" in capsys.readouterr().out


def test_an_overflowing_seed_leaves_nothing_behind(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    with pytest.raises(SystemExit):
        train(data, tmp_path / "run", "--seed", "99999999999999999999999")
    assert not (tmp_path / "run").exists()


def test_a_run_killed_before_its_first_epoch_does_not_block_a_rerun(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    assert train(data, out, "--lr", "1e30") == 1  # stops in epoch 1: only config.json is left
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "config.json"]
    assert train(data, out) == 0


@pytest.mark.parametrize("shape", [(20, 0, 3), (20, 4, 0)])
def test_empty_dimensions(shape, tmp_path, capsys):
    data = write_npz(tmp_path / "e.npz", X_train=np.zeros(shape, np.float32),
                     y_train=np.arange(20) % 3)
    assert train(data, tmp_path / "run") == 1
    assert "both must be at least 1" in error_line(capsys)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, capsys, monkeypatch):
    import kiloml.data.npz as npz

    bomb = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (16 * 2**20, 1, 1)})
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X_train.npy", "w") as f:  # 64 MB of zeros, 64 kB on disk
            f.write(header.getvalue())
            f.write(bytes(64 * 2**20))
    assert bomb.stat().st_size < 2**20
    monkeypatch.setattr(npz, "available_memory_bytes", lambda: 64 * 2**20)
    assert main(["train", "--dataset", str(bomb), "--out", str(tmp_path / "run")]) == 1
    assert "unpack to 67.1 MB, more than half of the 67.1 MB of memory available (a zip bomb?)" \
        in error_line(capsys)


def test_an_array_larger_than_its_member_is_refused(tmp_path, capsys):
    forged = tmp_path / "forged.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**12, 3, 3)})
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr("X_train.npy", header.getvalue() + bytes(64))
    assert main(["train", "--dataset", str(forged), "--out", str(tmp_path / "run")]) == 1
    assert "X_train declares shape [1000000000000, 3, 3]" in error_line(capsys)


def test_info_with_broken_metrics(run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    for metrics, missing in (({}, "test_accuracy, model_size_bytes, macs_per_inference"),
                             ({"test_accuracy": "high", "model_size_bytes": 470,
                               "macs_per_inference": 876}, "test_accuracy"),
                             ([1, 2], "test_accuracy, model_size_bytes, macs_per_inference")):
        (broken / "metrics.json").write_text(json.dumps(metrics))
        assert main(["info", str(broken)]) == 1
        captured = capsys.readouterr()
        assert "storage as deployed" in captured.out
        assert captured.err.strip() == f"error: {broken / 'metrics.json'}: {missing} missing or " \
                                       "not a number (the rest is shown above)"


def test_a_ts_file_linked_to_dev_zero(tmp_path, capsys):
    os.symlink("/dev/zero", tmp_path / "p_TRAIN.ts")
    (tmp_path / "p_TEST.ts").write_text("@problemName p\n")
    assert main(["train", "--dataset", str(tmp_path / "p.ts"), "--out", str(tmp_path / "r")]) == 1
    assert "p_TRAIN.ts: is a character device (a link to /dev/zero), not a .ts file" \
        in error_line(capsys)


@pytest.mark.parametrize("make,message", [
    (lambda tmp: (tmp / "x.npz").write_text("not a zip") and tmp / "x.npz",
     "not a readable .npz file (not a zip archive)"),
    (lambda tmp: tmp, "is a directory, not a .npz file"),
    (lambda tmp: np.savez(tmp / "p.npz", X_train=np.array([{"evil": 1}], dtype=object),
                          X_test=np.zeros((2, 12, 3)), y_test=np.zeros(2)) or tmp / "p.npz",
     "X_train holds Python objects (pickled data), which kiloml never loads"),
    (lambda tmp: os.symlink("/dev/zero", tmp / "z.npz") or tmp / "z.npz",
     "is a character device (a link to /dev/zero), not a .npz file"),
    (lambda tmp: os.symlink(tmp / "gone.npz", tmp / "b.npz") or tmp / "b.npz",
     "broken symbolic link"),
])
def test_bad_data_files_for_export_and_train(make, message, run, tmp_path, capsys):
    bad = make(tmp_path)
    assert main(["export", str(run), "--out", str(tmp_path / "c"), "--data", str(bad)]) == 1
    assert message in error_line(capsys)
    if bad.suffix == ".npz":
        assert main(["train", "--dataset", str(bad), "--out", str(tmp_path / "r")]) == 1
        assert message in error_line(capsys)
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()
