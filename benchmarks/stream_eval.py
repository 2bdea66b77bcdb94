"""Runs on whole streams, as ``kiloml eval RUN --stream`` scores them, in one table: stream
accuracy, events detected, latency, false alarms per hour, the cascade's upper-tier calls and
Cortex-M4 instructions per second of stream counted on the C (int8).

    python benchmarks/stream_eval.py runs/sw-fastgrnn-0 runs/sw-sharnn-0 ... [--target none]

Runs whose names differ only in a last ``-N`` (the seed) are one group: the table gives the
mean ± standard deviation over them and the per-run rows. Every run streams its own dataset's
test split (see :mod:`kiloml.data.streams`), with the defaults of ``kiloml eval --stream``
(hop: a ShaRNN's brick, an EMI-FastGRNN's instance stride, else the largest divisor of the
window not above its square root; clip datasets: one ``_silence_`` clip around each event,
seed 0) unless ``--hop`` is given. An EMI-FastGRNN's pushes are counted on the stream's first
6,000 frames (``kiloml.deploy.stream_cost.EARLY_EXIT_FRAMES``): its row also gives the steps
its instances read there (C) and on the whole stream (float model).
"""

import argparse
import re
from pathlib import Path

import numpy as np

from kiloml.data.splits import Split
from kiloml.data.streams import clip_stream, dataset_stream
from kiloml.deploy.stream_cost import stream_instructions
from kiloml.runs import load_run, load_run_data
from kiloml.train.cascade import choose_stream_threshold
from kiloml.train.stream_decisions import default_hop, evaluate_stream
from kiloml.train.stream_metrics import decision_frames, majority_labels

COLUMNS = ("accuracy", "detection_rate", "latency_seconds", "false_alarms_per_hour",
           "upper_fraction", "steps_per_instance", "instructions_per_second")


def measure(run: Path, hop: int | None, target: str, stream_threshold: bool = False) -> dict:
    """One run's stream scores and instructions per second of stream; with
    ``stream_threshold``, a cascade's threshold is chosen again on a stream of the validation
    clips built like the test stream (:func:`kiloml.train.cascade.choose_stream_threshold`)."""
    config, model = load_run(run)
    data = load_run_data(config)
    noise = (str(data.class_names[model.config.noise_class]) if model.config.kind == "cascade"
             else "_silence_")
    stream = dataset_stream(data, noise)
    hop = hop or default_hop(model.config, data.steps)
    if stream_threshold and model.config.kind == "cascade":
        val = clip_stream(Split(data.val.x, data.val.y), model.config.noise_class)
        ends = decision_frames(len(val.frames), data.steps, hop)
        model.config.threshold = choose_stream_threshold(
            model, val.frames, majority_labels(val.labels, ends, data.steps), ends, data.steps)
    row = evaluate_stream(model, stream, data.steps, hop)
    if target != "none":
        parts = ([("lower", model.lower, 1.0), ("upper", model.upper, row["upper_fraction"])]
                 if "upper_fraction" in row else [("model", model, 1.0)])
        cost = stream_instructions(parts, data.train.x[:512], stream.frames, data.steps, hop,
                                   stream.rate, 8, target)
        row["instructions_per_second"] = cost.get("per_second")
        row["instructions_note"] = cost.get("skipped", "")
        counted = cost.get("parts", {}).get("model", {})
        if "steps_per_instance" in counted:
            row["instructions_note"] = counted["how"]
    return dict(row, run=run.name, model=model.config.kind,
                threshold=getattr(model.config, "threshold", None))


PERCENT_KEYS = ("accuracy", "detection_rate", "upper_fraction", "instance_val_accuracy")


def cell(values: list, key: str) -> str:
    """Mean (± std over seeds) of one column; fractions shown as percent."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    scale = 100 if key in PERCENT_KEYS else 1
    digits = {"instructions_per_second": 0, "false_alarms_per_hour": 0}.get(key, 2)
    mean = scale * float(np.mean(values))
    if len(values) == 1:
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {scale * float(np.std(values)):,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories")
    parser.add_argument("--hop", type=int, default=None, help="frames between decisions")
    parser.add_argument("--target", default="cortex-m4",
                        choices=("cortex-m4", "cortex-m3", "none"))
    parser.add_argument("--stream-threshold", action="store_true",
                        help="cascades: choose the threshold again on a stream of the "
                             "validation clips (seed 0, one noise clip around each event)")
    args = parser.parse_args()
    rows = [measure(run, args.hop, args.target, args.stream_threshold) for run in args.runs]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(re.sub(r"-\d+$", "", row["run"]), []).append(row)
    header = ("group", "runs", "hop", "stream accuracy (%)", "events detected (%)",
              "latency (s)", "false alarms / h", "upper-tier calls (%)",
              "steps read per instance (EMI)", "M4 instructions / s of stream")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, members in groups.items():
        cells = [cell([m.get(k) for m in members], k) for k in COLUMNS]
        print(f"| {name} | {len(members)} | {members[0]['hop']} | " + " | ".join(cells) + " |")
    print()
    for row in rows:
        cells = [cell([row.get(k)], k) for k in COLUMNS]
        print(f"{row['run']}: {row['decisions']} decisions over {row['seconds'] / 60:.1f} min; "
              + ", ".join(f"{k} {c}" for k, c in zip(COLUMNS, cells, strict=True) if c)
              + (f", threshold {row['threshold']:g}" if row.get("threshold") else "")
              + (f" ({row['instructions_note']})" if row.get("instructions_note") else ""))


if __name__ == "__main__":
    main()
