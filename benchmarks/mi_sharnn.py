"""MI-ShaRNN: a ShaRNN trained on the instances an EMI-FastGRNN run relabelled, on whole
streams, in the table of ``benchmarks/stream_eval.py``.

    python benchmarks/mi_sharnn.py runs/kws-emi-0 runs/kws-emi-1 ... --out runs/mi --epochs 20

For each EMI run: its trained model relabels every training, validation and test window's
instances (:func:`kiloml.train.emi.relabel`: the ``k`` consecutive instances most likely of
the window's class keep it, the others become the noise class), the instances and their
labels are written to ``OUT/<run>-instances.npz`` (classes: the data's and ``noise``), and
``kiloml train --model sharnn --brick-size K --epochs E --seed S`` (the EMI run's seed) learns
them into ``OUT/mi-<run>``. On the run's test stream (:mod:`kiloml.data.streams`) the ShaRNN
classifies the last ``W`` frames (one instance) every brick, reusing the bricks it read (its
streaming form); each decision's window is its last ``I = 1 + (T - W) // K`` instance
decisions, ``(I - 1) K + W`` frames, and takes their longest run of a class other than noise
(:func:`kiloml.nn.emi.longest_run`); a window of noise is scored as the stream's noise class
when it has one. Cortex-M4 instructions per second of stream are the ShaRNN's
``kiloml_stream_push`` counted on the C (int8; :mod:`kiloml.deploy.stream_cost`; the longest
run over ``I`` classes is not in the C and not counted). Nothing is chosen on the test split.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from kiloml.cli import main as kiloml
from kiloml.data.bags import make_bags
from kiloml.data.streams import dataset_stream
from kiloml.deploy.stream_cost import stream_instructions
from kiloml.nn.emi import longest_run
from kiloml.runs import load_run, load_run_data
from kiloml.train.emi import instance_scores, relabel
from kiloml.train.stream_decisions import stream_decisions
from kiloml.train.stream_metrics import stream_metrics

COLUMNS = ("accuracy", "detection_rate", "latency_seconds", "false_alarms_per_hour",
           "instructions_per_second")


def write_instances(emi, data, path: Path) -> None:
    """The relabelled instances of every split of ``data`` as a ``.npz`` dataset."""
    c = emi.config
    arrays = {"class_names": np.array([*map(str, data.class_names), "noise"])}
    for name, key in (("train", "train"), ("val", "val"), ("test", "test")):
        split = getattr(data, name)
        bags = make_bags(split.x, c.instance_width, c.instance_stride)
        labels = relabel(instance_scores(emi, bags, split.y), split.y, c.keep_instances,
                         c.noise_class)
        arrays[f"X_{key}"] = bags.reshape(-1, *bags.shape[2:]).astype(np.float32)
        arrays[f"y_{key}"] = labels.reshape(-1)
    np.savez(path, **arrays)


def mi_decisions(model, frames: np.ndarray, width: int, brick: int, count: int, noise: int,
                 stream_noise: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(frames decided at, window classes)``: the longest run of the last ``count``
    instance decisions (one every ``brick`` frames on the last ``width``)."""
    ends, classes, _ = stream_decisions(model, frames, width, brick)
    bags = np.array([longest_run(classes[i - count + 1:i + 1], noise)
                     for i in range(count - 1, len(classes))], dtype=np.int64)
    if stream_noise is not None:
        bags[bags == noise] = stream_noise
    return ends[count - 1:], bags


def measure(emi_run: Path, out: Path, brick: int, epochs: int, target: str,
            data_dir: Path | None, extra: list[str]) -> dict:
    config, emi = load_run(emi_run)
    data = load_run_data(config, data_dir)
    c = emi.config
    out.mkdir(parents=True, exist_ok=True)
    npz = out / f"{emi_run.name}-instances.npz"
    write_instances(emi, data, npz)
    run = out / f"mi-{emi_run.name}"
    seed = str(config.get("train", {}).get("seed", 0))
    if kiloml(["train", "--dataset", str(npz), "--model", "sharnn", "--brick-size", str(brick),
               "--epochs", str(epochs), "--seed", seed, "--out", str(run), "--overwrite",
               *extra]) != 0:
        sys.exit(f"training {run} failed")
    _, model = load_run(run)
    noise = "_silence_"
    stream = dataset_stream(data, noise)
    count = 1 + (data.steps - c.instance_width) // brick
    window = (count - 1) * brick + c.instance_width
    ends, classes = mi_decisions(model, stream.frames, c.instance_width, brick, count,
                                 c.noise_class, stream.noise)
    row = stream_metrics(stream, ends, classes, window)
    row.update(run=run.name, hop=brick, window=window, instances=count)
    if target != "none":
        calib = np.load(npz)["X_train"][:512]
        cost = stream_instructions([("model", model, 1.0)], calib, stream.frames,
                                   c.instance_width, brick, stream.rate, 8, target)
        row["instructions_per_second"] = cost.get("per_second")
        row["instructions_note"] = cost.get("skipped") or cost["parts"]["model"]["how"]
    return row


def _cell(values: list, key: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return ""
    scale = 100 if key in ("accuracy", "detection_rate") else 1
    digits = {"instructions_per_second": 0, "false_alarms_per_hour": 0}.get(key, 2)
    mean = scale * float(np.mean(values))
    if len(values) == 1:
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {scale * float(np.std(values)):,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="EMI-FastGRNN run directories")
    parser.add_argument("--out", type=Path, required=True, help="folder for the MI-ShaRNN runs")
    parser.add_argument("--brick", type=int, default=8, help="ShaRNN brick (frames)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--target", default="cortex-m4",
                        choices=("cortex-m4", "cortex-m3", "none"))
    parser.add_argument("--train-option", action="append", default=[], metavar="OPTION",
                        help="more kiloml train options (repeat; e.g. --train-option=--folds "
                             "--train-option=0)")
    args = parser.parse_args()
    rows = [measure(run, args.out, args.brick, args.epochs, args.target, args.data_dir,
                    args.train_option) for run in args.runs]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(re.sub(r"-\d+$", "", row["run"]), []).append(row)
    header = ("group", "runs", "hop", "window", "stream accuracy (%)", "events detected (%)",
              "latency (s)", "false alarms / h", "M4 instructions / s of stream")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, members in groups.items():
        cells = [_cell([m.get(k) for m in members], k) for k in COLUMNS]
        print(f"| {name} | {len(members)} | {members[0]['hop']} | {members[0]['window']} | "
              + " | ".join(cells) + " |")
    print()
    for row in rows:
        cells = [_cell([row.get(k)], k) for k in COLUMNS]
        print(f"{row['run']}: {row['decisions']} decisions; "
              + ", ".join(f"{k} {c}" for k, c in zip(COLUMNS, cells, strict=True) if c)
              + (f" ({row['instructions_note']})" if row.get("instructions_note") else ""))


if __name__ == "__main__":
    main()
