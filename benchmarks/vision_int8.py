"""Int8 accuracy and deployment of the trained runs of ``vision_models.py`` (issue 19): each run
exported at int8 under every applicable schedule (``kiloml export --schedule``) and checked with
``kiloml verify`` (C against the integer simulator on a few test images, on the host, Cortex-M4
and Cortex-M3; RAM measured on the M4), and its int8 test accuracy measured with the integer
simulator on the same test images as its float accuracy.

    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/vision_models.py \\
        --width-mult 0.35 --epochs 4 --train-images 3000 --val-images 1000 --test-images 4000 \\
        --threads 1 --seeds 0 1 2 --runs runs/vision
    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/vision_int8.py \\
        runs/vision/*-seed* --out exports/vision
    python benchmarks/vision_int8.py --report --out exports/vision   # only the table

Each run's row goes to ``OUT/vision_int8_RUN.json`` as it finishes (a rerun skips the runs
saved); ``OUT/vision_int8.md`` gets, per model and schedule, float and int8 test accuracy as
mean ± sample standard deviation over the seeds, and the deployment figures of the exports.

The test images are the subset the run was tested on (``config.json``'s ``subset_counts``, drawn
by ``vision_models.reduced``); the float accuracy is measured again on them and must equal the
run's ``metrics.json`` (to two images). Every schedule of a run computes the same integers: the
int8 accuracy is the layer-by-layer graph's (``quantized_model.npz``) on every test image, and
each schedule's graph is checked to give the same logits on the export's test images
(``same_logits``).
Calibration is the export's: the first images of the whole training split. Nothing is chosen on
the test split.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from image_export import measure
from kiloml.data import load_dataset
from kiloml.deploy.export import float_logits
from kiloml.ir.quantize import quantize_input
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate
from kiloml.runs import METRICS_FILE, load_run, read_json
from seed_results import mean_std
from vision_models import MODELS, reduced

#: images per call of the integer simulator (it keeps every value of the batch as int64)
BATCH = 32
SCHEDULES = ("layers", "patches", "rnnpool")


def test_split(config: dict, cache: dict):
    """The test images ``[N, H, W·C]`` (lazy) and labels the run of ``config`` was tested on."""
    data = config["data"]
    counts = data.get("subset_counts")
    if counts is None:
        sys.exit(f"run of {data['dataset']} records no subset_counts: train it with "
                 "vision_models.py --runs")
    key = (data["dataset"], counts["train"], counts["val"], counts["test"])
    if key not in cache:
        cache[key] = reduced(load_dataset(data["dataset"]), counts["train"], counts["val"],
                             counts["test"]).test
    return cache[key]


def int8_logits(graph, x, labels_count: int) -> np.ndarray:
    """The integer simulator's logits ``[N, C]`` for image rows ``x``, in batches."""
    out = [simulate(graph, quantize_input(graph, np.asarray(x[start:start + BATCH])))
           for start in range(0, labels_count, BATCH)]
    return np.concatenate(out)


def evaluate(run: Path, out: Path, targets: str, cache: dict) -> dict:
    """Float and int8 test accuracy of ``run``, and every schedule's export and verification."""
    config, model = load_run(run)
    test = test_split(config, cache)
    count = len(test.y)
    floats = np.concatenate([float_logits(model, np.asarray(test.x[s:s + 256]))
                             for s in range(0, count, 256)])
    float_accuracy = float(np.mean(floats.argmax(1) == test.y))
    recorded = read_json(run / METRICS_FILE)["test_accuracy"]
    if abs(float_accuracy - recorded) * count > 2:  # more than rounding on a tie or two
        sys.exit(f"{run}: float accuracy {float_accuracy} on its test subset, metrics.json "
                 f"says {recorded}: not the run's test images")
    report = measure(run, out, targets, tilings=False)
    layers = load_graph(out / f"{run.name}-layers" / "quantized_model.npz")
    logits = int8_logits(layers, test.x, count)
    for kind, row in report["schedules"].items():
        saved = np.load(out / f"{run.name}-{kind}" / "test_inputs.npz")
        row["same_logits"] = bool(np.array_equal(simulate(layers, saved["inputs"]),
                                                 saved["simulated_logits"]))
    return {**report, "run": run.name, "seed": config["train"]["seed"], "test_images": count,
            "float_accuracy": float_accuracy, "int8_accuracy": float(np.mean(
                logits.argmax(1) == test.y)),
            "float_int8_agreement": float(np.mean(logits.argmax(1) == floats.argmax(1)))}


def spread(values: list) -> str:
    """One value, or ``min–max`` when the seeds differ (``–`` when not measured)."""
    if any(v is None for v in values):
        return "–"
    low, high = min(values), max(values)
    return f"{low:,.0f}" if low == high else f"{low:,.0f}–{high:,.0f}"


def stage_text(stages: list[dict]) -> str:
    """A schedule's tiled stages: ``nodes 0–11 on 3×3 tiles; …`` (``—`` layer by layer)."""
    return "; ".join(f"nodes {st['first']}–{st['first'] + st['nodes'] - 1} on "
                     f"{st['patch'][0]}×{st['patch'][1]} tiles" for st in stages) or "—"


def table(rows: list[dict]) -> str:
    """Per model and schedule: accuracy over the seeds, then the deployment figures."""
    lines = ["| model | schedule | seeds | tiled stages | test images | float test acc. | "
             "int8 test acc. | "
             "planned peak RAM (arena) | measured RAM (M4) | MACs | constants | "
             "M4 image (text + data) | M4 instructions | bit-exact | same logits |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for kind in MODELS:
        got = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["seed"])
        for schedule in SCHEDULES:
            runs = [r for r in got if schedule in r["schedules"]]
            if not runs:
                continue
            s = [r["schedules"][schedule] for r in runs]
            exact = [t for t in s[0]["exact"] if all(x["exact"].get(t) == 1.0 for x in s)]
            stages = {stage_text(x["stages"]) for x in s}
            lines.append(
                f"| {kind} | {schedule} | {', '.join(str(r['seed']) for r in runs)} | "
                f"{' / '.join(sorted(stages))} | "
                f"{spread([r['test_images'] for r in runs])} | "
                f"{mean_std([r['float_accuracy'] for r in runs])} | "
                f"{mean_std([r['int8_accuracy'] for r in runs])} | "
                f"{spread([x['planned_arena_bytes'] for x in s])} | "
                f"{spread([x['measured_m4_ram_bytes'] for x in s])} | "
                f"{spread([x['macs'] for x in s])} | {spread([x['constants_bytes'] for x in s])} | "
                f"{spread([x['m4_image_bytes'] for x in s])} | "
                f"{spread([x['m4_instructions'] for x in s])} | {', '.join(exact) or 'no'} | "
                f"{'yes' if all(x['same_logits'] for x in s) else 'NO'} |")
    lines.append("\nAccuracy: mean ± sample standard deviation over the seeds listed; "
                 "bytes, except MACs and instructions; a range when the seeds differ.")
    for r in sorted(rows, key=lambda r: (r["kind"], r["seed"])):
        lines.append(f"- {r['run']}: float {100 * r['float_accuracy']:.2f} %, int8 "
                     f"{100 * r['int8_accuracy']:.2f} %, float and int8 agree on "
                     f"{100 * r['float_int8_agreement']:.2f} % of {r['test_images']:,} images")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="*",
                        help="run directories of vision_models.py --runs")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the exports, the rows and the table")
    parser.add_argument("--targets", default="host,cortex-m4,cortex-m3")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the table from the rows already saved")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    for run in [] if args.report else args.runs:
        path = args.out / f"vision_int8_{run.name}.json"
        if path.exists():
            continue
        row = evaluate(run, args.out, args.targets, cache)
        path.write_text(json.dumps(row, indent=1) + "\n")
        print(run.name, f"float {row['float_accuracy']:.4f} int8 {row['int8_accuracy']:.4f}",
              flush=True)
    rows = [json.loads(p.read_text()) for p in sorted(args.out.glob("vision_int8_*.json"))]
    if not rows:
        print(f"no rows saved in {args.out}; run without --report first", file=sys.stderr)
        return 1
    report = table(rows)
    (args.out / "vision_int8.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
