"""The third objective without Ray: a trained run's Cortex-M4 instructions per inference, counted
on the export `kiloml export` writes, and the two-objective search without the ARM toolchain."""

import json
import shutil

import numpy as np
import pytest

from kiloml.cli import main, train_for_sweep
from kiloml.deploy.targets import TARGETS
from kiloml.errors import KilomlError
from kiloml.runs import load_run_data, read_run_config
from kiloml.sweep.instructions import (
    M4_INPUTS,
    count_m4_instructions,
    drop_if_unmeasurable,
    settle_objectives,
)
from kiloml.sweep.space import Space
from kiloml.sweep.trial import TuneReporter
from tests.cli.cli_helpers import QUICK, write_npz

needs_m4 = pytest.mark.skipif(bool(TARGETS["cortex-m4"].missing()),
                              reason="needs arm-none-eabi-gcc and qemu-system-arm")


def m4_report(export_dir):
    return json.loads((export_dir / "verify.json").read_text())["targets"]["cortex-m4"]


@needs_m4
def test_the_count_is_kiloml_verify_on_the_export_of_the_run(tmp_path):
    data = write_npz(tmp_path / "data.npz")
    run = tmp_path / "run"
    train_for_sweep(["--dataset", str(data), *QUICK, "--sparsity-w", "0.5"], run,
                    TuneReporter(run, 16, lambda result: None), resume=False)
    count = count_m4_instructions(run, 16)
    # counted on the first training sequences: the test split stays unseen
    splits = load_run_data(read_run_config(run))
    with np.load(run / "c" / "test_inputs.npz") as stored:
        assert stored["labels"].tolist() == splits.train.y[:M4_INPUTS].tolist()
        assert stored["labels"].tolist() != splits.test.y[:M4_INPUTS].tolist()
    assert "test_accuracy" not in json.loads((run / "metrics.json").read_text())
    # the trial's export, verified again by the command: the same count
    assert main(["verify", str(run / "c"), "--targets", "cortex-m4"]) == 0
    report = m4_report(run / "c")
    assert report["inputs"] == M4_INPUTS and report["instructions_per_inference"] == count
    # `kiloml export` of the run writes the same C; verified on the test split, its count
    # differs only by the inputs (a few instructions of saturating branches)
    assert main(["export", str(run), "--out", str(tmp_path / "exp"), "--bits", "16"]) == 0
    assert main(["verify", str(tmp_path / "exp"), "--targets", "cortex-m4"]) == 0
    assert (tmp_path / "exp" / "model.c").read_text() == (run / "c" / "model.c").read_text()
    low, high = m4_report(tmp_path / "exp")["instructions_min_max"]
    assert low - 5 <= count <= high + 5
    assert 1_000 < count < 1_000_000


THREE = ("val_accuracy", "bytes", "m4_instructions")


def hide_qemu(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr("kiloml.deploy.targets.shutil.which",
                        lambda tool: None if tool == "qemu-system-arm" else real_which(tool))


def test_without_the_toolchain_the_search_keeps_two_objectives(monkeypatch):
    hide_qemu(monkeypatch)
    space = Space({}, {}, {}, objectives=("val_accuracy", "bytes", "m4_instructions"))
    note = drop_if_unmeasurable(space)
    assert space.objectives == ("val_accuracy", "bytes")
    assert note.startswith("Cortex-M4 instructions not counted (no qemu-system-arm): ")
    assert note.endswith("searched on validation accuracy and bytes only")
    two = Space({}, {}, {})
    assert drop_if_unmeasurable(two) is None and two.objectives == ("val_accuracy", "bytes")


def test_a_resumed_sweep_keeps_the_objectives_it_started_with(monkeypatch):
    # started without the toolchain, resumed where it is: still two objectives, with a note
    space = Space({}, {}, {}, objectives=THREE)
    note = settle_objectives(space, ["val_accuracy", "bytes"])
    assert space.objectives == ("val_accuracy", "bytes")
    assert note.startswith("Cortex-M4 instructions not counted: the sweep started without")
    space = Space({}, {}, {}, objectives=THREE)
    hide_qemu(monkeypatch)
    # started with instructions, resumed without the toolchain: refused in one line
    with pytest.raises(KilomlError, match=r"^--resume: this sweep counts Cortex-M4 .*no "
                                          r"qemu-system-arm"):
        settle_objectives(space, list(THREE))
    # a new sweep (nothing started): the objective is dropped
    assert settle_objectives(space, None).endswith("accuracy and bytes only")
    assert space.objectives == ("val_accuracy", "bytes")
