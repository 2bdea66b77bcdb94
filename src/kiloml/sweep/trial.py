"""One sweep trial, as Ray Tune runs it on a worker: ``kiloml train`` into an ordinary run
directory ``DIR/runs/TRIAL``, validation accuracy reported at the epochs where ASHA decides
(its rungs; none when ASHA is off), then
the deployed size measured on the integer graph and, when ``m4_instructions`` is an objective,
the run exported into ``RUN/c`` and its Cortex-M4 instructions per inference counted in QEMU
(:mod:`kiloml.sweep.instructions`).

Nothing here looks at the test split: the trial trains with it unseen and its ``metrics.json``
has no ``test_accuracy`` until the sweep evaluates the front at the end.
"""

import json
import math
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch

from kiloml.compress.size import model_size_bytes
from kiloml.deploy.codegen import generate_model
from kiloml.deploy.commands import CALIBRATION_SAMPLES
from kiloml.errors import KilomlError
from kiloml.ir import quantize_model
from kiloml.models import build_model, config_from_dict
from kiloml.progress import epoch_line
from kiloml.runs import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    load_run,
    load_run_data,
    read_json,
    read_run_config,
)
from kiloml.sweep.instructions import OBJECTIVE, count_m4_instructions
from kiloml.sweep.space import Space
from kiloml.train.phases import Sparsity
from kiloml.train.trainer import EpochRecord, Reporter, sparsifiable_parameters

RUNS_DIR = "runs"
LOGS_DIR = "logs"
#: ASHA's ``max_t``: no trial is stopped for its length, only at the rungs below it
ASHA_MAX_T = 1_000_000

#: ``train(argv, run_dir, reporter, resume)``: ``kiloml train ARGV --out RUN_DIR`` (resumed
#: from its checkpoint, or started afresh over an unfinished attempt) with ``reporter`` and the
#: test split unseen; raises on failure.
TrainFunction = Callable[[list[str], Path, Reporter, bool], None]


def planned_bytes(run_dir: Path, bits: int) -> int:
    """The stored bytes (``compress.size``, values of ``bits`` bits) of the model in
    ``run_dir/config.json`` once its kept fractions are applied: what the trial will deploy,
    known before it is trained (the sparse formats depend on how many weights are kept, not on
    which)."""
    config = read_run_config(run_dir)
    model = build_model(config_from_dict(config["model"]))
    train = config.get("train", {})
    keep = {"W": train.get("keep_w", 1.0), "U": train.get("keep_u", 1.0),
            "head": train.get("keep_head", 1.0)}
    with torch.no_grad():
        Sparsity(sparsifiable_parameters(model), keep,
                 block=train.get("sparsity_block", 1)).hard_threshold()
    return model_size_bytes(model, value_bytes=bits // 8)


def deployed_size(run_dir: Path, bits: int) -> dict:
    """``bytes`` (stored bytes at ``bits`` bits, as ``metrics.json``'s ``model_size_bytes_int*``),
    ``flash_bytes`` (the constants of the exported C) and ``ram_bytes`` (arena and outputs;
    the stack is measured only by ``kiloml export``) of a trained run, quantized on its training
    split as ``kiloml export`` does."""
    config, model = load_run(run_dir)
    data = load_run_data(config)
    graph = quantize_model(model, data.train.x[:CALIBRATION_SAMPLES], bits)
    generated = generate_model(graph, f"sweep trial {run_dir.name}")
    return {"bytes": model_size_bytes(model, value_bytes=bits // 8),
            "flash_bytes": generated.weight_flash_bytes, "ram_bytes": generated.ram_bytes}


def asha_rungs(asha: dict | None) -> frozenset[int]:
    """The epochs (from 1) at which ASHA (``[asha]``'s ``grace_period`` and
    ``reduction_factor``, ``max_t`` :data:`ASHA_MAX_T`) compares a trial with the others:
    ``grace_period * reduction_factor**k`` below ``max_t``, as Ray Tune's ASHA computes its
    rungs; empty when ASHA is off."""
    if not asha:
        return frozenset()
    grace, factor = asha["grace_period"], asha["reduction_factor"]
    count = int(math.log(ASHA_MAX_T / grace) / math.log(factor) + 1)
    return frozenset(grace * factor**k for k in range(count))


class TuneReporter(Reporter):
    """Reports the validation accuracy of the epochs in ``rungs`` (ASHA's rungs; ``None``:
    every epoch) to Ray Tune, with the bytes the trial will deploy (both in every result, so
    with two objectives an ASHA-stopped trial is still a point for Optuna), and prints one line
    per epoch (into the trial's log). Only ASHA looks at these results, and only at its rungs;
    every report stops training until Ray Tune's driver has processed it, so no other epoch
    is reported. Objectives known only once the trial has finished (``later``:
    ``m4_instructions``) are reported as ``None`` until then (Ray Tune wants every objective's
    key in every result). The last epoch is not reported: the trial's final result stands for
    it, so ASHA never cuts a trial whose training has finished."""

    def __init__(self, run_dir: Path, bits: int, report: Callable[[dict], None],
                 later: tuple[str, ...] = (), rungs: frozenset[int] | None = None):
        self.run_dir, self.bits, self.report = run_dir, bits, report
        self.later = dict.fromkeys(later)
        self.rungs = rungs
        self.bytes: int | None = None
        self.total = 0

    def start(self, total_epochs: int, batches_per_epoch: int, first_epoch: int) -> None:
        self.bytes = planned_bytes(self.run_dir, self.bits)
        self.total = total_epochs

    def epoch(self, record: EpochRecord, is_best: bool) -> None:
        print(epoch_line(record, is_best).replace(" [green]best[/]", " best"), flush=True)
        if math.isnan(record.val_accuracy) or record.epoch + 1 >= self.total:
            return  # no validation split (cross-validation's final fit), or the last epoch
        if self.rungs is not None and record.epoch + 1 not in self.rungs:
            return  # not an epoch where ASHA decides
        self.report({"val_accuracy": record.val_accuracy, "bytes": self.bytes, **self.later,
                     "epoch": record.epoch + 1, "trained": False})


def run_trial(config: dict, *, sweep_dir: str, space: Space, train: TrainFunction) -> None:
    """The Ray Tune function trainable: ``config`` holds the sampled values (JSON text for
    choices). A trial killed with the sweep resumes from its run's checkpoint; one whose run
    had finished only reports it again (its instructions counted again). A failure is written
    to ``DIR/logs/TRIAL.error`` (one line) and raised, so Ray records the trial as failed and
    the sweep goes on."""
    from ray import tune

    trial = tune.get_context().get_trial_id()
    root = Path(sweep_dir)
    run_dir = root / RUNS_DIR / trial
    log = root / LOGS_DIR / f"{trial}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    values = decode(space, config)
    try:
        if not (run_dir / METRICS_FILE).is_file():
            resume = (run_dir / CHECKPOINT_FILE).is_file()
            with open(log, "a") as out, redirect_stdout(out), redirect_stderr(out):
                later = tuple(o for o in space.objectives if o == OBJECTIVE)
                train(space.argv(values), run_dir,
                      TuneReporter(run_dir, space.bits, tune.report, later,
                                   asha_rungs(space.asha)), resume)
        metrics = read_json(run_dir / METRICS_FILE)
        size = deployed_size(run_dir, space.bits)
        if OBJECTIVE in space.objectives:
            with open(log, "a") as out, redirect_stdout(out), redirect_stderr(out):
                size[OBJECTIVE] = count_m4_instructions(run_dir, space.bits)
    except SystemExit:  # Ray Tune stops a trial (ASHA) by ending its thread: not a failure
        raise
    except BaseException as e:
        (root / LOGS_DIR / f"{trial}.error").write_text(one_line(e) + "\n")
        raise
    tune.report({"val_accuracy": metrics["best_val_accuracy"], **size,
                 "epoch": metrics["epochs_run"], "trained": True,
                 "train_seconds": metrics["train_seconds"]})


def one_line(error: BaseException) -> str:
    """The first line of an error, as the CLI would print it."""
    text = str(error) if isinstance(error, KilomlError) else f"{type(error).__name__}: {error}"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def decode(space: Space, config: dict) -> dict:
    """Optuna's values as ``kiloml train`` option values (choices decoded from JSON text)."""
    values = {}
    for dest, spec in space.params.items():
        value = config[dest]
        values[dest] = json.loads(value) if hasattr(spec, "values") else value
    return values
