"""A sweep's results: one row per trial, the Pareto front (validation accuracy against
deployed bytes and, when it is an objective, Cortex-M4 instructions per inference, among
finished trials within the device budget) and the front's test accuracy (the only time the
test split is looked at)."""

import csv
import io
import json
import shlex
from pathlib import Path

from kiloml.outputs import atomic_write_bytes
from kiloml.runs import (
    DEMO_EXPORT_DIR,
    METRICS_FILE,
    load_run,
    load_run_data,
    read_json,
    write_json,
)
from kiloml.sweep.pareto import pareto_front
from kiloml.sweep.space import OBJECTIVE_MODES, Space
from kiloml.sweep.trial import LOGS_DIR, RUNS_DIR, decode


def trial_rows(trials: list, space: Space, root: Path) -> list[dict]:
    """One row per Ray Tune trial: ``trial``, ``status`` (``done``, ``stopped`` by ASHA or
    ``failed`` with its ``error``), the sampled values, ``epochs``, ``val_accuracy``,
    ``bytes``, ``flash_bytes``, ``ram_bytes``, ``m4_instructions`` (finished trials, when it
    is an objective), ``feasible`` and ``run`` (its run directory)."""
    rows = []
    for trial in sorted(trials, key=lambda t: t.trial_id):
        result = trial.last_result or {}
        error_file = root / LOGS_DIR / f"{trial.trial_id}.error"
        values = decode(space, trial.config) if all(k in trial.config for k in space.params) \
            else {}
        row = {"trial": trial.trial_id, **values,
               "run": str(root / RUNS_DIR / trial.trial_id)}
        if trial.status == "ERROR" or error_file.is_file():
            row["status"] = "failed"
            row["error"] = (error_file.read_text().strip() if error_file.is_file()
                            else "the trial's worker stopped (see Ray's logs)")
        elif result.get("trained") is True:
            row["status"] = "done"
        elif "val_accuracy" in result:
            row["status"] = "stopped"
        else:
            row["status"] = "not run"
        for key in ("epoch", "val_accuracy", "bytes", "flash_bytes", "ram_bytes",
                    "m4_instructions"):
            if result.get(key) is not None and row["status"] != "failed":
                row["epochs" if key == "epoch" else key] = result[key]
        row["feasible"] = row["status"] == "done" and within_budget(row, space)
        rows.append(row)
    return rows


def within_budget(row: dict, space: Space) -> bool:
    """Whether a finished trial fits the device's ``max_flash``/``max_ram``."""
    return ((space.max_flash is None or row["flash_bytes"] <= space.max_flash)
            and (space.max_ram is None or row["ram_bytes"] <= space.max_ram))


def mark_front(rows: list[dict], space: Space) -> list[dict]:
    """Sets ``front`` on every row (the finished trials within the budget that no other such
    trial beats on every objective of ``space``); returns the front's rows, smallest first."""
    modes = {name: OBJECTIVE_MODES[name] for name in space.objectives}
    candidates = [r for r in rows if r["feasible"] and all(k in r for k in modes)]
    front = pareto_front(candidates, modes)
    for row in rows:
        row["front"] = any(row is f for f in front)
    return sorted(front, key=lambda r: r["bytes"])


def export_command(row: dict, space: Space) -> str:
    """The ``kiloml export`` command that deploys a front run (over the export the trial
    counted its instructions on, when it did)."""
    words = ["kiloml", "export", row["run"], "--out", str(Path(row["run"]) / DEMO_EXPORT_DIR),
             "--bits", str(space.bits)]
    if "m4_instructions" in row:
        words.append("--overwrite")
    if space.max_flash is not None:
        words += ["--max-flash", str(space.max_flash)]
    if space.max_ram is not None:
        words += ["--max-ram", str(space.max_ram)]
    return shlex.join(words)


def evaluate_front(front: list[dict]) -> None:
    """Test accuracy of each front run (its first look at the test split), stored in the row
    and in the run's ``metrics.json``."""
    from kiloml.train.fit import model_metrics

    for row in front:
        run = Path(row["run"])
        config, model = load_run(run)
        metrics, _ = model_metrics(model, load_run_data(config))
        row["test_accuracy"] = metrics["test_accuracy"]
        stored = read_json(run / METRICS_FILE)
        stored.update({"test_accuracy": metrics["test_accuracy"],
                       "test_loss": metrics["test_loss"],
                       "test_evaluated": "kiloml sweep, as a run on the Pareto front"})
        write_json(run / METRICS_FILE, stored)


COLUMNS = ("trial", "status", "epochs", "val_accuracy", "bytes", "flash_bytes", "ram_bytes",
           "feasible", "front", "test_accuracy", "m4_instructions", "export", "error", "run")


def columns(space: Space) -> list[str]:
    cols = list(COLUMNS)
    return cols[:2] + list(space.params) + cols[2:]


def write_results(rows: list[dict], space: Space, root: Path, notes: list[str]) -> None:
    """``results.csv`` (one line per trial) and ``results.json`` (the rows, the front's trial
    names, the objectives and budget, and notes) in ``root``."""
    cols = columns(space)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | bool) else v
                         for k, v in row.items()})
    atomic_write_bytes(root / "results.csv", text.getvalue().encode())
    atomic_write_bytes(root / "results.json", (json.dumps({
        "objectives": list(space.objectives), "bits": space.bits,
        "max_flash": space.max_flash, "max_ram": space.max_ram,
        "front": [r["trial"] for r in rows if r.get("front")],
        "notes": notes, "trials": rows}, indent=2) + "\n").encode())
