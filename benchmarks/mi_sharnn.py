"""MI-ShaRNN: a ShaRNN trained on the instances an EMI-FastGRNN run relabelled, on whole
streams, in the table of ``benchmarks/stream_eval.py``, its training setting chosen on a
validation stream.

    python benchmarks/mi_sharnn.py runs/sw-emi-0 runs/sw-emi-1 ... --out runs/mi \\
        --candidate "--epochs 20" --candidate "--epochs 40"

For each candidate setting (``kiloml train`` options; default: ``--epochs 20``) and each EMI
run, ``kiloml train --model sharnn --instances-from RUN --brick-size K --seed S`` (the EMI
run's seed; :mod:`kiloml.train.mi_sharnn`) trains ``OUT/mi-<run>-c<j>`` and scores it on the
stream of the dataset's validation split (smartwatch: the validation subject's recordings end
to end; clip datasets: the validation clips around ``_silence_`` clips, seed 0). The candidate
of highest mean validation-stream accuracy over the runs is the one reported; only its runs
are streamed on the test split, as ``kiloml eval RUN --stream`` does: a decision every brick,
the longest run of a class other than noise in the last ``I = 1 + (T - W) // K`` instance
decisions, and Cortex-M4 instructions per second of stream counted on the ShaRNN's
``kiloml_stream_push`` (int8; the longest run over ``I`` classes is not in the C and not
counted). Nothing is chosen on the test split.
"""

import argparse
import re
import shlex
import sys
from pathlib import Path

import numpy as np

from kiloml.cli import main as kiloml
from kiloml.data.streams import dataset_stream
from kiloml.deploy.stream_cost import stream_instructions
from kiloml.runs import load_run, load_run_data, read_json
from kiloml.train.mi_sharnn import evaluate_mi_stream
from stream_eval import cell

COLUMNS = ("accuracy", "detection_rate", "latency_seconds", "false_alarms_per_hour",
           "instructions_per_second")


def train(emi_run: Path, run: Path, brick: int, options: list[str]) -> None:
    """``kiloml train`` of one MI-ShaRNN, seeded as its EMI run."""
    seed = str(read_json(emi_run / "config.json").get("train", {}).get("seed", 0))
    if kiloml(["train", "--model", "sharnn", "--instances-from", str(emi_run), "--brick-size",
               str(brick), "--seed", seed, "--out", str(run), "--overwrite", *options]) != 0:
        sys.exit(f"training {run} failed")


def stream_row(run: Path, split: str, target: str) -> dict:
    """The run's stream scores on ``split`` (and on ``test`` its instructions per second)."""
    config, model = load_run(run)
    mi = config["mi"]
    data = load_run_data({"data": mi["data"]})
    stream = dataset_stream(data, "_silence_", split=split)
    row = evaluate_mi_stream(model, stream, data.steps, mi)
    row.update(run=run.name, window=row["steps"],
               instance_val_accuracy=read_json(run / "metrics.json").get("best_val_accuracy"))
    if split == "test" and target != "none":
        calib = load_run_data(config, check=False).train.x[:512]
        cost = stream_instructions([("model", model, 1.0)], calib, stream.frames,
                                   mi["instance_width"], row["hop"], stream.rate, 8, target)
        row["instructions_per_second"] = cost.get("per_second")
        row["instructions_note"] = cost.get("skipped") or cost["parts"]["model"]["how"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="EMI-FastGRNN run directories")
    parser.add_argument("--out", type=Path, required=True, help="folder for the MI-ShaRNN runs")
    parser.add_argument("--brick", type=int, default=8, help="ShaRNN brick (frames)")
    parser.add_argument("--candidate", action="append", default=None, metavar="OPTIONS",
                        help="kiloml train options of one candidate setting, quoted (repeat; "
                             "default: one, '--epochs 20')")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the runs of OUT that finished (their metrics.json exists) "
                             "instead of training them again")
    parser.add_argument("--target", default="cortex-m4",
                        choices=("cortex-m4", "cortex-m3", "none"))
    args = parser.parse_args()
    candidates = args.candidate or ["--epochs 20"]
    val: dict[int, list[dict]] = {}
    for j, options in enumerate(candidates):
        for emi_run in args.runs:
            run = args.out / f"mi-{emi_run.name}-c{j}"
            if not (args.reuse and (run / "metrics.json").is_file()):
                train(emi_run, run, args.brick, shlex.split(options))
            val.setdefault(j, []).append(stream_row(run, "val", "none"))
    print("| candidate | kiloml train options | validation stream accuracy (%) | "
          "validation instance accuracy (%) |")
    print("|---|---|---:|---:|")
    for j, rows in val.items():
        print(f"| c{j} | `{candidates[j]}` | {cell([r['accuracy'] for r in rows], 'accuracy')} "
              f"| {cell([r['instance_val_accuracy'] for r in rows], 'instance_val_accuracy')} |")
    for j, rows in val.items():
        print(f"c{j} per run (validation stream / instance accuracy, %): " + ", ".join(
            f"{r['run']} {100 * r['accuracy']:.2f} / {100 * r['instance_val_accuracy']:.2f}"
            for r in rows))
    best = max(val, key=lambda j: np.mean([r["accuracy"] for r in val[j]]))
    print(f"\nchosen on the validation stream: c{best} ({candidates[best]})\n")
    rows = [stream_row(args.out / f"mi-{emi_run.name}-c{best}", "test", args.target)
            for emi_run in args.runs]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(re.sub(r"-\d+-c\d+$", "", row["run"]), []).append(row)
    header = ("group", "runs", "hop", "window", "stream accuracy (%)", "events detected (%)",
              "latency (s)", "false alarms / h", "M4 instructions / s of stream")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, members in groups.items():
        cells = [cell([m.get(k) for m in members], k) for k in COLUMNS]
        print(f"| {name} | {len(members)} | {members[0]['hop']} | {members[0]['window']} | "
              + " | ".join(cells) + " |")
    print()
    for row in rows:
        cells = [cell([row.get(k)], k) for k in COLUMNS]
        print(f"{row['run']}: {row['decisions']} decisions; "
              + ", ".join(f"{k} {c}" for k, c in zip(COLUMNS, cells, strict=True) if c)
              + (f" ({row['instructions_note']})" if row.get("instructions_note") else ""))


if __name__ == "__main__":
    main()
