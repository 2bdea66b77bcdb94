"""Accuracy against deployed size: compressed FastGRNN, dense FastGRNN, FastRNN, nn.GRU and
nn.LSTM trained by the same Trainer on the same data with the same epoch budget; a markdown table
and a Pareto plot (accuracy vs log size) per dataset.

    python benchmarks/accuracy_vs_size.py                        # the four datasets, full budget
    python benchmarks/accuracy_vs_size.py --datasets fsdd smartwatch
    python benchmarks/accuracy_vs_size.py --quick      # smoke run, ~1 min (runs/benchmarks-quick)

Each finished (dataset, model) is saved at once in ``OUT/<dataset>.json``; a rerun skips what is
already there (``--overwrite`` retrains), so an interrupted run loses at most one model. kiloml's
own models are also quantized (int16 and int8 weights) and scored by the integer simulator, which
is what the generated C computes bit for bit. GRU/LSTM sizes are their float32 weights (how they
would ship without a quantizer; the int8 column is their weights at one byte, for reference).
``--quick`` trains 2 epochs on a few hundred sequences: it checks the pipeline and the structure
of the output, not the numbers.
"""

import argparse
import json
import math
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from kiloml.cli import DEFAULTS
from kiloml.data import load_dataset
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.nn import ModelConfig
from kiloml.train.fit import fit
from kiloml.train.recipes import IMU
from kiloml.train.trainer import TrainConfig
from machine_info import describe

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# dataset -> where its files live under the data root, training budget, kiloml model size and
# cell options, and the two hidden sizes of the GRU/LSTM baselines (the smaller matches kiloml's
# hidden size). On the audio sets kiloml's cells read out the mean state with a tanh candidate,
# which beat the last state and relu on speech-commands-12 (docs/benchmarks.md, "Choosing the
# audio recipe"); GRU/LSTM keep their last state, as a mean readout made nn.GRU h64 worse there
# (86.31% vs 88.29%).
AUDIO_CELL = dict(update_nonlinearity="tanh", readout="mean")
# A wider, sparser FastGRNN for the audio sets, in the int8 budget of a 20x target on speech
# (docs/benchmarks.md, "Speech: a wider, sparser FastGRNN"): at int8 a sparse matrix pays only
# below about 45% kept, since each nonzero carries a one-byte column index.
AUDIO_WIDE = {"FastGRNN compressed h160, 25% kept": (
    dict(hidden_size=160, u_rank=40), dict(keep_w=0.25, keep_u=0.25, keep_head=0.5))}
# Eight consecutive samples per recurrent step on the smartwatch data (``--frame-stack 8``): the
# GRU gains more from it than FastGRNN does, so it is a baseline row too (docs/benchmarks.md,
# "Smartwatch: frame stacking"). The FastGRNN is low-rank and unpruned, in the int8 budget of a
# 20x target against that GRU. The "3 paces" rows also train on the recordings replayed 0.75x
# and 1.333x as fast (``--train-speeds``; docs/benchmarks.md, "Smartwatch: exercise pace"),
# offered to both models.
PACES = [0.75, 1.0, 1.333]
STACKED_FASTGRNN = dict(hidden_size=120, w_rank=8, u_rank=6, frame_stack=8)
STACKED_GRU = dict(kind="gru", hidden_size=64, frame_stack=8)
SMARTWATCH_STACKED = {
    "FastGRNN compressed h120, 8 frames per step": (STACKED_FASTGRNN, {}),
    "FastGRNN compressed h120, 8 frames per step, 3 paces": (
        STACKED_FASTGRNN, dict(train_speeds=PACES)),
    "nn.GRU h64, 8 frames per step": (STACKED_GRU, {}),
    "nn.GRU h64, 8 frames per step, 3 paces": (STACKED_GRU, dict(train_speeds=PACES)),
}
# row fields that choose the training data, not the training: keywords of ``load_dataset``
DATA_FIELDS = ("train_speeds",)
RECIPES = {
    "smartwatch": dict(folder=None, epochs=60, batch_size=64, hidden=32, u_rank=8,
                       baselines=(32, 64), extra=SMARTWATCH_STACKED),
    "fsdd": dict(folder="fsdd", epochs=60, batch_size=64, hidden=64, u_rank=16,
                 baselines=(64, 128), cell=AUDIO_CELL, extra=AUDIO_WIDE),
    "speech-commands-12": dict(folder="speech_commands", epochs=60, batch_size=64, hidden=64,
                               u_rank=16, baselines=(64, 128), cell=AUDIO_CELL,
                               extra=AUDIO_WIDE),
    "mnist-rows": dict(folder="mnist", epochs=10, batch_size=128, hidden=64, u_rank=16,
                       baselines=(64, 128)),
}
QUICK = dict(epochs=3, train=256, val=64, test=128)
ACCURACIES = ("test_accuracy", "int16_accuracy", "int8_accuracy")
KILOML_KINDS = ("fastgrnn", "fastrnn")
COMPRESSED = "FastGRNN compressed"


def variants(recipe: dict) -> dict[str, tuple[dict, dict]]:
    """name -> (model config fields, train config fields beyond the shared ones)."""
    h, (small, large) = recipe["hidden"], recipe["baselines"]
    fast = {"update_nonlinearity": IMU.update_nonlinearity, **recipe.get("cell", {})}
    keep = dict(keep_w=DEFAULTS["sparsity_w"], keep_u=DEFAULTS["sparsity_u"],
                keep_head=DEFAULTS["sparsity_head"])
    extra, extra_baselines = {}, {}
    for name, (model, train) in recipe.get("extra", {}).items():
        kind = model.get("kind", "fastgrnn")
        if kind in KILOML_KINDS:
            extra[name] = ({"kind": kind, **fast, **model}, train)
        else:
            extra_baselines[name] = (model, train)
    return {
        COMPRESSED: (dict(kind="fastgrnn", hidden_size=h, u_rank=recipe["u_rank"], **fast), keep),
        f"{COMPRESSED} h{2 * h}": (dict(kind="fastgrnn", hidden_size=2 * h,
                                         u_rank=2 * recipe["u_rank"], **fast), keep),
        **extra,
        "FastGRNN dense": (dict(kind="fastgrnn", hidden_size=h, **fast), {}),
        "FastRNN": (dict(kind="fastrnn", hidden_size=h, **recipe.get("cell", {})), {}),
        f"nn.GRU h{small}": (dict(kind="gru", hidden_size=small), {}),
        f"nn.GRU h{large}": (dict(kind="gru", hidden_size=large), {}),
        f"nn.LSTM h{small}": (dict(kind="lstm", hidden_size=small), {}),
        f"nn.LSTM h{large}": (dict(kind="lstm", hidden_size=large), {}),
        **extra_baselines,
    }


def subset(data: DatasetSplits, sizes: dict) -> DatasetSplits:
    """``sizes[split]`` sequences drawn at random (seed 0) from each split (a smoke-run dataset)."""
    rng = np.random.default_rng(0)

    def cut(split: Split, n: int) -> Split:
        pick = np.sort(rng.permutation(len(split))[:n])
        return Split(split.x[pick], split.y[pick])

    return DatasetSplits(data.name, cut(data.train, sizes["train"]), cut(data.val, sizes["val"]),
                         cut(data.test, sizes["test"]), data.class_names, data.description,
                         data.info)


def split_fields(train_fields: dict) -> tuple[dict, dict]:
    """A row's train fields as (``load_dataset`` keywords, ``TrainConfig`` fields)."""
    return ({k: v for k, v in train_fields.items() if k in DATA_FIELDS},
            {k: v for k, v in train_fields.items() if k not in DATA_FIELDS})


class RowData:
    """Each row's data: ``load(**data_fields)``, loaded once per distinct set of data fields
    (and cut to the smoke-run sizes with ``quick``)."""

    def __init__(self, load, quick: bool):
        self.load, self.quick, self.loaded = load, quick, {}

    def __call__(self, data_fields: dict) -> DatasetSplits:
        key = json.dumps(data_fields, sort_keys=True)
        if key not in self.loaded:
            data = self.load(**data_fields)
            self.loaded[key] = subset(data, QUICK) if self.quick else data
        return self.loaded[key]


def integer_accuracy(model, data: DatasetSplits, bits: int,
                     calibration: np.ndarray | None = None) -> float:
    """Test accuracy of ``model`` quantized to ``bits``-bit weights, from the integer simulator
    (Q-formats calibrated on ``calibration``, by default the whole training split; ``kiloml
    export`` takes the first ``CALIBRATION_SAMPLES`` sequences of the default training split,
    which can move int8 accuracy by a test sequence or two)."""
    q = quantize_model(model, data.train.x if calibration is None else calibration, bits=bits)
    logits = simulate(q, quantize_input(q, data.test.x))
    return float(np.mean(np.argmax(logits, axis=1) == data.test.y))


def train_one(data: DatasetSplits, model_fields: dict, train_fields: dict, epochs: int,
              batch_size: int, seed: int, calibration: np.ndarray | None = None) -> dict:
    """Train one row on ``data`` (already loaded with the row's data fields) and score it; the
    integer accuracies calibrate on ``calibration`` (default: ``data``'s training split)."""
    augment = {k: getattr(IMU, k) for k in ("augment_scale", "augment_noise", "augment_rotation")}
    mc = ModelConfig(input_size=data.num_features, num_classes=data.num_classes, **model_fields)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, **augment,
                     **split_fields(train_fields)[1])
    outcome = fit(data, mc, tc)
    m = outcome.metrics
    entry = {k: m[k] for k in ("test_accuracy", "model_size_bytes", "model_size_bytes_int16",
                               "model_size_bytes_int8", "params_total", "params_nonzero",
                               "macs_per_inference", "train_seconds")}
    entry.update(kind=model_fields["kind"], hidden_size=model_fields["hidden_size"],
                 epochs=epochs, config={"model": model_fields, "train": train_fields})
    if model_fields["kind"] in KILOML_KINDS:
        outcome.model.eval()
        entry["int16_accuracy"] = integer_accuracy(outcome.model, data, 16, calibration)
        entry["int8_accuracy"] = integer_accuracy(outcome.model, data, 8, calibration)
    entry["seeds"] = {str(seed): {k: entry[k] for k in ACCURACIES if k in entry}}
    return entry


def upgrade(entry: dict) -> dict:
    """Results saved before several seeds were kept hold one ``seed``; give them ``seeds``."""
    if "seeds" not in entry:
        entry["seeds"] = {str(entry.pop("seed")): {k: entry[k] for k in ACCURACIES if k in entry}}
    return entry


def add_seed(old: dict | None, new: dict) -> dict:
    """``new`` (one seed) merged into ``old`` (same config, other seeds): the accuracy fields
    become means over the seeds, their standard deviations go to ``std``."""
    if old is None or old["config"] != new["config"] or old["epochs"] != new["epochs"]:
        merged = new
    else:
        merged = {**old, "seeds": {**old["seeds"], **new["seeds"]}}
    for k in ACCURACIES:
        values = [v[k] for v in merged["seeds"].values() if k in v]
        if values:
            merged[k] = float(np.mean(values))
            merged.setdefault("std", {})[k] = float(np.std(values, ddof=1)) if len(values) > 1 \
                else 0.0
    return merged


def save_atomic(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def deployed_points(entry: dict) -> list[tuple[str, int, float]]:
    """(precision, deployed bytes, test accuracy) points of one result."""
    points = [("float32", entry["model_size_bytes"], entry["test_accuracy"])]
    if "int8_accuracy" in entry:
        points += [("int16", entry["model_size_bytes_int16"], entry["int16_accuracy"]),
                   ("int8", entry["model_size_bytes_int8"], entry["int8_accuracy"])]
    return points


def summary(results: dict) -> dict:
    """The issue's target: each compressed FastGRNN (int8) against the most accurate GRU/LSTM."""
    baselines = {k: v for k, v in results.items() if v["kind"] in ("gru", "lstm")}
    best_name = max(baselines, key=lambda k: baselines[k]["test_accuracy"])
    best = baselines[best_name]
    compressed = {}
    for name, ours in results.items():
        if name.startswith(COMPRESSED):
            compressed[name] = {
                "int8_accuracy": ours["int8_accuracy"],
                "int8_bytes": ours["model_size_bytes_int8"],
                "size_ratio": best["model_size_bytes"] / ours["model_size_bytes_int8"],
                "size_ratio_vs_int8_baseline": (best["model_size_bytes_int8"]
                                                / ours["model_size_bytes_int8"]),
                "accuracy_gap_points": 100 * (best["test_accuracy"] - ours["int8_accuracy"]),
            }
            compressed[name]["target_met"] = (compressed[name]["accuracy_gap_points"] <= 1.0
                                              and compressed[name]["size_ratio"] >= 20)
    return {"best_baseline": best_name, "best_baseline_accuracy": best["test_accuracy"],
            "best_baseline_bytes": best["model_size_bytes"], "compressed": compressed}


def markdown(dataset: str, results: dict, recipe: dict, quick: bool) -> str:
    s = summary(results)
    epochs = QUICK["epochs"] if quick else recipe["epochs"]
    seeds = sorted({int(k) for e in results.values() for k in e["seeds"]})
    lines = [f"### {dataset}", "",
             f"{epochs} epochs, batch {recipe['batch_size']}, seeds "
             f"{', '.join(map(str, seeds))}; accuracy on the test split (mean ± standard deviation "
             "over the seeds a row ran).", "",
             "| model | hidden | seeds | accuracy float32 (%) | int16 (%) | int8 (%) "
             "| bytes float32 | bytes int16 | bytes int8 | nonzero params | MACs/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = [n for n in variants(recipe) if n in results]

    def cell(e: dict, key: str) -> str:
        if key not in e:
            return "—"
        spread = f" ± {100 * e['std'][key]:.2f}" if len(e["seeds"]) > 1 else ""
        return f"{100 * e[key]:.2f}{spread}"

    for name, e in ((n, results[n]) for n in order):
        lines.append(f"| {name} | {e['hidden_size']} | {len(e['seeds'])} "
                     f"| {cell(e, 'test_accuracy')} | {cell(e, 'int16_accuracy')} "
                     f"| {cell(e, 'int8_accuracy')} | "
                     f"{e['model_size_bytes']:,} | {e['model_size_bytes_int16']:,} | "
                     f"{e['model_size_bytes_int8']:,} | {e['params_nonzero']:,} | "
                     f"{e['macs_per_inference']:,} |")
    lines += ["", f"Most accurate baseline: {s['best_baseline']} "
              f"({100 * s['best_baseline_accuracy']:.2f}%, {s['best_baseline_bytes']:,} B "
              "float32). Target: a compressed FastGRNN ≥20x smaller within 1 point.", ""]
    for name, c in s["compressed"].items():
        lines.append(f"- {name} at int8: {100 * c['int8_accuracy']:.2f}%, {c['int8_bytes']:,} B: "
                     f"{c['size_ratio']:.1f}x smaller ({c['size_ratio_vs_int8_baseline']:.1f}x "
                     f"against the baseline's weights at int8), "
                     f"{abs(c['accuracy_gap_points']):.2f} points "
                     f"{'behind' if c['accuracy_gap_points'] > 0 else 'ahead'}: "
                     f"{'met' if c['target_met'] else 'missed'}.")
    lines.append("")
    return "\n".join(lines)


def plot(dataset: str, results: dict, path: Path) -> None:
    """Accuracy vs log size; one marker per deployed precision, the Pareto front dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"fastgrnn": "o", "fastrnn": "s", "gru": "^", "lstm": "v"}
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(9, 4.8))
    order = [n for n in variants(RECIPES[dataset]) if n in results]
    everything = [(b, 100 * a) for n in order for _, b, a in deployed_points(results[n])]
    top = max(a for _, a in everything)
    # an outlier far below the rest (a baseline that failed to train) would squash the plot:
    # it is drawn on the bottom edge with its value written next to it
    low = max(min(a for _, a in everything) - 0.5, top - 15)
    for i, (name, e) in enumerate((n, results[n]) for n in order):
        pts = deployed_points(e)
        xs, ys = [b for _, b, _ in pts], [max(100 * a, low) for _, _, a in pts]
        filled = name.startswith(COMPRESSED)
        ax.plot(xs, ys, color=colors[i % len(colors)], marker=markers[e["kind"]],
                linestyle=":" if len(pts) > 1 else "", markersize=7, clip_on=False,
                markerfacecolor=colors[i % len(colors)] if filled else "white",
                label=f"{name} (h{e['hidden_size']})" if f"h{e['hidden_size']}" not in name
                else name)
        for precision, b, a in pts:
            if 100 * a < low:
                ax.annotate(f"{100 * a:.1f}% (off scale)", (b, low), fontsize=7,
                            textcoords="offset points", xytext=(6, 4), color="dimgray")
            elif len(pts) > 1:
                ax.annotate(precision.replace("float", "f"), (b, 100 * a), fontsize=6,
                            textcoords="offset points", xytext=(0, 6), ha="center",
                            color="dimgray")
    ax.set_ylim(low, top + 0.1 * (top - low) + 0.2)
    front, best = [], -math.inf
    for b, a in sorted(everything):
        if a > best:
            front.append((b, a))
            best = a
    ax.step([b for b, _ in front], [a for _, a in front], where="post", color="gray",
            linestyle="--", linewidth=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set(xlabel="deployed model size (bytes, log scale)", ylabel="test accuracy (%)",
           title=f"{dataset}: accuracy vs size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def check_outputs(out: Path, datasets: list[str]) -> None:
    """The structure a run must leave behind: per dataset a complete JSON, a table and a PNG."""
    report = (out / "accuracy_vs_size.md").read_text()
    for dataset in datasets:
        results = json.loads((out / f"{dataset}.json").read_text())["results"]
        expected = set(variants(RECIPES[dataset]))
        assert set(results) == expected, f"{dataset}: results for {sorted(results)}"
        for name, e in results.items():
            assert 0.0 <= e["test_accuracy"] <= 1.0, (dataset, name)
            assert e["model_size_bytes"] > e["model_size_bytes_int8"] > 0, (dataset, name)
            assert (e["kind"] in KILOML_KINDS) == ("int8_accuracy" in e), (dataset, name)
            assert f"| {name} |" in report, f"{dataset}: no table row for {name}"
        assert (results[COMPRESSED]["model_size_bytes"]
                < results["FastGRNN dense"]["model_size_bytes"])
        png = (out / f"{dataset}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, f"{dataset}.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--datasets", nargs="+", default=list(RECIPES), choices=list(RECIPES),
                        metavar="DATASET", help=f"any of {', '.join(RECIPES)} (default: all)")
    parser.add_argument("--data-root", type=Path,
                        default=Path(os.environ.get("KILOML_DATA", SHARED_DATA)),
                        help="folder holding fsdd/, speech_commands/, mnist/ (default: "
                             "$KILOML_DATA, else the shared data folder next to the project)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the JSON results, the tables and the PNGs go (default: "
                             "docs/benchmarks, or runs/benchmarks-quick with --quick)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train every model once per seed; tables show mean ± std")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="train only the models whose name contains one of these texts "
                             "(e.g. extra seeds for a few rows)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['epochs']} epochs on {QUICK['train']} training "
                             "sequences; checks the pipeline and the output, not the numbers")
    parser.add_argument("--overwrite", action="store_true", help="retrain finished models too")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the tables and plots from the saved JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.out is None:
        args.out = ROOT / ("runs/benchmarks-quick" if args.quick else "docs/benchmarks")
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        recipe = RECIPES[dataset]
        path = args.out / f"{dataset}.json"
        saved = json.loads(path.read_text()) if path.exists() and not args.overwrite else {}
        if saved.get("quick", args.quick) != args.quick:
            saved = {}  # never mix a smoke run with a full one
        results = {k: upgrade(v) for k, v in saved.get("results", {}).items()}
        stale = sorted(set(results) - set(variants(recipe)))
        if stale and not args.report_only:
            print(f"{dataset}: dropping results of models no longer in the suite: "
                  f"{', '.join(stale)}", flush=True)
            results = {k: v for k, v in results.items() if k not in stale}
        if args.report_only:
            continue
        folder = recipe["folder"]
        row_data = RowData(partial(load_dataset, dataset,
                                   args.data_root / folder if folder else None), args.quick)
        try:
            row_data({})
        except KilomlError as e:
            print(f"accuracy_vs_size: {e}", file=sys.stderr)
            return 2
        epochs = QUICK["epochs"] if args.quick else recipe["epochs"]
        for seed, (name, (model_fields, train_fields)) in (
                (seed, v) for seed in args.seeds for v in variants(recipe).items()):
            if args.only and not any(text in name for text in args.only):
                continue
            done = results.get(name, {})
            if (done.get("epochs"), done.get("config")) == (
                    epochs, {"model": model_fields, "train": train_fields}) \
                    and str(seed) in done["seeds"]:
                continue
            started = time.perf_counter()
            results[name] = add_seed(results.get(name), train_one(
                row_data(split_fields(train_fields)[0]), model_fields, train_fields, epochs,
                recipe["batch_size"], seed, calibration=row_data({}).train.x))
            save_atomic(path, {"dataset": dataset, "quick": args.quick,
                               "machine": f"{describe()}, torch {torch.__version__}, 1 thread",
                               "results": results})
            print(f"{dataset:20s} {name:22s} seed {seed} "
                  f"{100 * results[name]['seeds'][str(seed)]['test_accuracy']:6.2f}% "
                  f"{results[name]['model_size_bytes']:>8,} B "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    finished = [d for d in RECIPES if (args.out / f"{d}.json").exists()
                and set(json.loads((args.out / f"{d}.json").read_text())["results"])
                == set(variants(RECIPES[d]))]
    sections = []
    for dataset in finished:
        saved = json.loads((args.out / f"{dataset}.json").read_text())
        results = {k: upgrade(v) for k, v in saved["results"].items()}
        sections.append(markdown(dataset, results, RECIPES[dataset], saved["quick"]))
        plot(dataset, results, args.out / f"{dataset}.png")
    (args.out / "accuracy_vs_size.md").write_text("\n".join(sections))
    assert all("Most accurate baseline" in section for section in sections)
    print("\n".join(sections))
    check_outputs(args.out, [d for d in args.datasets if d in finished])
    missing = [d for d in args.datasets if d not in finished]
    if missing:
        print(f"accuracy_vs_size: no complete results for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
