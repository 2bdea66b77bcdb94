"""A sweep trial without Ray: `kiloml train` with the test split unseen, the bytes it will
deploy known before training, and its flash and RAM from the integer graph."""

import json
import math

import pytest

from kiloml.cli import train_for_sweep
from kiloml.errors import KilomlError
from kiloml.sweep.trial import ASHA_MAX_T, TuneReporter, asha_rungs, deployed_size, planned_bytes
from tests.cli.cli_helpers import QUICK, write_npz


@pytest.mark.parametrize("keep", ["0.3", "1"])
def test_a_trial_trains_without_the_test_split_and_knows_its_bytes_first(tmp_path, keep):
    data = write_npz(tmp_path / "data.npz")
    run = tmp_path / "run"
    reports = []
    argv = ["--dataset", str(data), *QUICK, "--sparsity-w", keep, "--sparsity-u", keep]
    train_for_sweep(argv, run, TuneReporter(run, 16, reports.append), resume=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test_accuracy" not in metrics and "test_loss" not in metrics
    assert not (run / "confusion.png").exists()
    # one report per epoch but the last (the trial's final result stands for it), each with
    # the bytes the trained model ends up storing
    assert [r["epoch"] for r in reports] == [1, 2]
    assert all(r["bytes"] == metrics["model_size_bytes_int16"] for r in reports)
    assert planned_bytes(run, 8) == metrics["model_size_bytes_int8"]
    assert all(0 <= r["val_accuracy"] <= 1 and not math.isnan(r["val_accuracy"])
               for r in reports)
    size = deployed_size(run, 16)
    assert size["bytes"] == metrics["model_size_bytes_int16"]
    assert size["flash_bytes"] > 0 and size["ram_bytes"] > 0


def test_with_asha_a_trial_reports_only_at_its_rungs(tmp_path):
    # every report stops training until Ray Tune's driver has processed it: only the epochs
    # where ASHA compares trials are reported (none without ASHA), never the last
    data = write_npz(tmp_path / "data.npz")
    argv = ["--dataset", str(data), *QUICK, "--epochs", "5"]
    for asha, epochs in (({"grace_period": 2, "reduction_factor": 2}, [2, 4]),
                         ({"grace_period": 1, "reduction_factor": 3}, [1, 3]), (None, [])):
        reports = []
        run = tmp_path / f"run{len(epochs)}{asha and asha['grace_period']}"
        train_for_sweep(argv, run, TuneReporter(run, 16, reports.append,
                                                rungs=asha_rungs(asha)), resume=False)
        assert [r["epoch"] for r in reports] == epochs


def test_asha_rungs_are_ray_tunes():
    from ray.tune.schedulers import ASHAScheduler

    for grace, factor in ((1, 2), (2, 2), (15, 2), (20, 3)):
        asha = ASHAScheduler(time_attr="epoch", metric="val_accuracy", mode="max",
                             max_t=ASHA_MAX_T, grace_period=grace, reduction_factor=factor)
        rungs = {milestone for milestone, _ in asha._brackets[0]._rungs}
        assert asha_rungs({"grace_period": grace, "reduction_factor": factor}) == rungs
    assert sorted(asha_rungs({"grace_period": 15, "reduction_factor": 2}))[:3] == [15, 30, 60]


def test_refused_options_fail_the_trial_in_one_line(tmp_path):
    data = write_npz(tmp_path / "data.npz")
    with pytest.raises(KilomlError, match="--hidden-size: expected a whole number"):
        train_for_sweep(["--dataset", str(data), "--hidden-size", "x"], tmp_path / "r",
                        TuneReporter(tmp_path / "r", 16, print), resume=False)
