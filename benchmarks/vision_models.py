"""MobileNetV2 against RNNPool-MobileNetV2 on the 96×96 person-detection stand-in: accuracy,
parameters, MACs and peak activation RAM.

    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/vision_models.py \\
        --width-mult 0.35 --epochs 4 --train-images 3000 --val-images 1000 --test-images 4000 \\
        --threads 1 --seeds 0 1 2
    python benchmarks/vision_models.py --report   # the table over every seed saved
    python benchmarks/vision_models.py --thread-ratio  # a training step, 2 threads against 1
    KILOML_DATA=../shared/data python benchmarks/vision_models.py --quick  # smoke run

Both models train with kiloml's Trainer as ``kiloml train --model mobilenetv2|rnnpool-mobilenetv2``
does (Adam, learning rate cosine-decayed over all steps, the vision recipe: random crop after
12 black pixels of padding and horizontal flips), on the first ``--train-images`` of a fixed
random order (seed 0) of the training split, for ``--epochs`` epochs; the epoch kept is the best
on the first ``--val-images`` of the validation split among the last 40 % of epochs; the test
split (all of it) is looked at once, at the end. Nothing is chosen on the test split.

Peak RAM is an estimate from the layer shapes for one image at one byte per map value (int8):
layer by layer, the largest over the layers of input + output map (plus a residual block's
input while its inner layers run); for RNNPool-MobileNetV2 also RNNPool's patch-by-patch
schedule, where the stem and RNNPool run one patch at a time (input image, one patch of the
stem's map, the RNN summaries at int16, RNNPool's output map; the stem recomputed on
overlapping patches, which its MACs include).

Seeds: ``--seeds 0 1 2`` trains both models once per seed (the seed initialises the weights and
draws batches and augmentation; the image subsets stay those of seed 0). Each seed's rows go to
``OUT/vision_models_seed{N}.json`` (default OUT ``docs/benchmarks``) as each model finishes, so
seeds can be added by later runs and a rerun skips the models a seed file already holds;
``OUT/vision_models.md`` gets mean ± sample standard deviation over every seed file in OUT, with
the seeds of each row, then each seed's rows. ``--report`` only rewrites that table.
``--shapes-only`` prints parameters, MACs and peak RAM of both models without data or training.
``--thread-ratio`` times training steps with 1 and 2 threads side by side: on two cores shared
with other jobs, two threads wait for each other and one thread trains faster.
"""

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from kiloml.compress.size import count_parameters
from kiloml.data import load_dataset
from kiloml.data.resized_images import UpsampledImages
from kiloml.data.splits import DatasetSplits, Split
from kiloml.models import build_model, get_family
from kiloml.train.fit import fit
from kiloml.train.recipes import vision_recipe
from kiloml.train.trainer import TrainConfig
from machine_info import describe
from seed_results import mean_std, seed_files

MODELS = ("mobilenetv2", "rnnpool-mobilenetv2")
QUICK_IMAGES = 200
#: the issue's target: RNNPool within this many points at this many times less peak RAM
TARGET_POINTS, TARGET_RATIO = 1.5, 4.0


def subset(split: Split, indices: np.ndarray) -> Split:
    """The images ``indices`` of ``split`` (a lazy split stays lazy)."""
    x = split.x
    if getattr(x, "is_lazy", False):
        return Split(UpsampledImages(x.images[indices], x.factor), split.y[indices])
    return Split(x[indices], split.y[indices])


def reduced(data: DatasetSplits, train: int | None, val: int | None,
            test: int | None) -> DatasetSplits:
    """The first ``train`` / ``val`` / ``test`` images of a fixed random order (seed 0) of each
    split (kept in their original order); ``None`` keeps a split whole."""
    rng = np.random.default_rng(0)
    parts = {}
    for name, count in (("train", train), ("val", val), ("test", test)):
        split = getattr(data, name)
        order = rng.permutation(len(split))
        parts[name] = (split if count is None or count >= len(split)
                       else subset(split, np.sort(order[:count])))
    return replace(data, **parts)


def save_run(run_dir: Path, full: DatasetSplits, data: DatasetSplits, config, train: TrainConfig,
             outcome, args) -> None:
    """``outcome`` as an ordinary run directory (``config.json``, ``model.safetensors``,
    ``metrics.json``) that ``kiloml export`` / ``eval`` / ``info`` read: its data section names
    the whole dataset ``full`` (export calibrates on its training images) and records the
    subsets trained, chosen and tested on (``subsets``: the counts given to :func:`reduced`)."""
    from kiloml.data.fingerprint import data_sources, fingerprint
    from kiloml.runs import METRICS_FILE, WEIGHTS_FILE, save_run_config, save_weights, write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    sources = data_sources(full)
    data_info = {"dataset": full.name, "path": str(sources[0]) if sources else None,
                 "fingerprint": fingerprint(sources), "data_dir": None,
                 "skip_bad_files": False, "steps": full.steps,
                 "num_features": full.num_features, "class_names": full.class_names,
                 "sizes": {s: len(getattr(full, s)) for s in ("train", "val", "test")},
                 "subsets": {s: len(getattr(data, s)) for s in ("train", "val", "test")},
                 "subset_counts": {"train": args.train_images, "val": args.val_images,
                                   "test": args.test_images}}
    save_run_config(run_dir, config, data_info, train.to_dict())
    save_weights(outcome.model, run_dir / WEIGHTS_FILE)
    write_json(run_dir / METRICS_FILE, outcome.metrics)


def run(data: DatasetSplits, kind: str, args, seed: int, full: DatasetSplits | None = None
        ) -> dict:
    c, h, w = data.info["image_shape"]
    config = get_family(kind).config(kind=kind, input_size=w * c, num_classes=data.num_classes,
                                     in_channels=c, height=h, width=w,
                                     width_mult=args.width_mult).validate()
    recipe = vision_recipe(data)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, seed=seed,
                        augment_crop=recipe.augment_crop, augment_flip=recipe.augment_flip)
    started, wall = time.process_time(), time.perf_counter()
    outcome = fit(data, config, train)
    seconds, wall = time.process_time() - started, time.perf_counter() - wall
    model = outcome.model
    if args.runs is not None:
        save_run(args.runs / f"{kind}-seed{seed}", full if full is not None else data, data,
                 config, train, outcome, args)
    peak, where = model.peak_activation_bytes()
    row = {"config": config.to_dict(), "test_accuracy": outcome.metrics["test_accuracy"],
           "val_accuracy": outcome.result.best_val_accuracy,
           "best_epoch": outcome.result.best_epoch, "epochs": args.epochs,
           "parameters": outcome.metrics["params_total"], "macs": model.macs(),
           "peak_bytes_layer_by_layer": peak, "peak_layer": where,
           "train_images": len(data.train), "val_images": len(data.val),
           "test_images": len(data.test), "batch": args.batch, "lr": args.lr, "seed": seed,
           "augment_crop": recipe.augment_crop, "cpu_seconds": round(seconds, 1),
           "wall_seconds": round(wall, 1), "machine": describe()}
    if hasattr(model, "patch_schedule"):
        patch_peak, patch_where = model.patch_peak_activation_bytes()
        row.update({"peak_bytes_patch_by_patch": patch_peak, "patch_peak_layer": patch_where,
                    "macs_patch_by_patch": sum(layer.macs for layer in model.patch_schedule())})
    return row


def thread_ratios(width_mult: float, rounds: int = 3, steps: int = 3, size: int = 96) -> str:
    """Wall-clock seconds of a training step (batch 64, random images) with 1 and with 2 threads,
    measured side by side in alternating rounds (the median of ``rounds``), as the ratio 2 / 1
    threads per model: on cores shared with other jobs, two threads can be slower than one."""
    lines = ["| model | width | wall per step, 2 threads / 1 thread | CPU per step, 2 / 1 |",
             "|---|---|---|---|"]
    x, y = torch.rand(64, size, 3 * size), torch.randint(0, 2, (64,))
    for kind in MODELS:
        config = get_family(kind).config(kind=kind, input_size=3 * size, num_classes=2,
                                         height=size, width=size, width_mult=width_mult)
        torch.manual_seed(0)
        model = build_model(config.validate())
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        wall, cpu = {1: [], 2: []}, {1: [], 2: []}
        for _ in range(rounds):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(steps):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                wall[threads].append(time.perf_counter() - started)
                cpu[threads].append(time.process_time() - cpu_started)
        w = statistics.median(wall[2]) / statistics.median(wall[1])
        c = statistics.median(cpu[2]) / statistics.median(cpu[1])
        lines.append(f"| {kind} | {width_mult:g} | {w:.2f} | {c:.2f} |")
    return "\n".join(lines) + "\n"


def shapes_table(width_mult: float, size: int = 96) -> str:
    """Parameters, MACs and peak RAM of both models at ``size``×``size`` (untrained: these
    depend on the shapes only)."""
    lines = ["| model | width | parameters | MACs | peak RAM int8, layer by layer | peak RAM "
             "int8, RNNPool patch by patch |", "|---|---|---|---|---|---|"]
    for kind in MODELS:
        config = get_family(kind).config(kind=kind, input_size=3 * size, num_classes=2,
                                         height=size, width=size, width_mult=width_mult)
        torch.manual_seed(0)
        model = build_model(config.validate())
        peak, where = model.peak_activation_bytes()
        patch = "—"
        if hasattr(model, "patch_schedule"):
            patch_peak, patch_where = model.patch_peak_activation_bytes()
            patch = (f"{patch_peak:,} B ({patch_where}); "
                     f"{sum(layer.macs for layer in model.patch_schedule()):,} MACs")
        lines.append(f"| {kind} | {width_mult:g} | {count_parameters(model)[0]:,} | "
                     f"{model.macs():,} | {peak:,} B ({where}) | {patch} |")
    return "\n".join(lines) + "\n"


BUDGET = ("epochs", "train_images", "val_images", "test_images", "batch", "lr")


def check_budget(results: dict, args, path: Path) -> None:
    """Exit with a one-line error if ``path`` holds rows trained with another budget (a seed
    file mixes no budgets)."""
    for row in results.values():
        wanted = {"epochs": args.epochs, "batch": args.batch, "lr": args.lr}
        for name in ("train_images", "val_images", "test_images"):
            if getattr(args, name) is not None:
                wanted[name] = min(getattr(args, name), row[name])
        if row["config"]["width_mult"] != args.width_mult or any(
                row[k] != v for k, v in wanted.items()):
            held = ", ".join(f"{k} {row[k]}" for k in BUDGET)
            sys.exit(f"{path} holds runs of another budget ({held}, width "
                     f"{row['config']['width_mult']:g}): use another --out")


def patch_cell(r: dict) -> str:
    if "peak_bytes_patch_by_patch" not in r:
        return "—"
    return (f"{r['peak_bytes_patch_by_patch']:,} B ({r['patch_peak_layer']}); "
            f"{r['macs_patch_by_patch']:,} MACs")


def table(runs: dict[int, dict]) -> str:
    """Mean ± std over the seeds of both models (with the seeds each row has), the target's
    verdict on the means, then every seed's rows."""
    lines = ["| model | width | seeds | parameters | MACs | peak RAM int8, layer by layer | "
             "peak RAM int8, RNNPool patch by patch | val acc. | test acc. | CPU min / run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    done = {kind: {seed: rows[kind] for seed, rows in runs.items() if kind in rows}
            for kind in MODELS}
    for kind, by_seed in done.items():
        if not by_seed:
            continue
        got = list(by_seed.values())
        r = got[0]
        cpu = statistics.fmean(g["cpu_seconds"] for g in got) / 60
        lines.append(f"| {kind} | {r['config']['width_mult']:g} | "
                     f"{', '.join(map(str, by_seed))} | {r['parameters']:,} | {r['macs']:,} | "
                     f"{r['peak_bytes_layer_by_layer']:,} B ({r['peak_layer']}) | "
                     f"{patch_cell(r)} | {mean_std([g['val_accuracy'] for g in got])} | "
                     f"{mean_std([g['test_accuracy'] for g in got])} | {cpu:.1f} |")
    first = next((row for rows in runs.values() for row in rows.values()), None)
    if first is not None:
        lines.append(f"\n{first['epochs']} epochs on {first['train_images']:,} training images, "
                     f"epoch chosen on {first['val_images']:,} validation images, tested on "
                     f"{first['test_images']:,}; batch {first['batch']}, Adam lr "
                     f"{first['lr']:g} cosine-decayed, crop padding {first['augment_crop']} "
                     "and flips. Mean ± sample standard deviation over the seeds listed.")
    if done["mobilenetv2"] and done["rnnpool-mobilenetv2"]:
        base = list(done["mobilenetv2"].values())
        pool = list(done["rnnpool-mobilenetv2"].values())
        points = 100 * (statistics.fmean(b["test_accuracy"] for b in base)
                        - statistics.fmean(p["test_accuracy"] for p in pool))
        ratio = base[0]["peak_bytes_layer_by_layer"] / pool[0]["peak_bytes_patch_by_patch"]
        met = points <= TARGET_POINTS and ratio >= TARGET_RATIO
        lines.append(f"\nRNNPool-MobileNetV2's mean test accuracy is {points:+.2f} points below "
                     f"MobileNetV2's (negative: above; {len(base)} / {len(pool)} seeds) at "
                     f"{ratio:.2f}x less peak RAM (patch by patch against layer by layer). The "
                     f"target (within {TARGET_POINTS} points at >= {TARGET_RATIO:g}x less peak "
                     f"RAM) is {'met' if met else 'not met'} on these means.")
    for seed, rows in runs.items():
        lines.append(f"\n### Seed {seed}\n")
        lines.append("| model | val acc. | test acc. | epoch kept | CPU s | wall s |")
        lines.append("|---|---|---|---|---|---|")
        for kind in MODELS:
            if kind in rows:
                r = rows[kind]
                lines.append(f"| {kind} | {100 * r['val_accuracy']:.2f} % | "
                             f"{100 * r['test_accuracy']:.2f} % | {r['best_epoch']} | "
                             f"{r['cpu_seconds']:,.0f} | {r['wall_seconds']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="cifar10-animals-vs-vehicles-96")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--width-mult", type=float, default=0.35)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--val-images", type=int, default=None)
    parser.add_argument("--test-images", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train both models once per seed (default: 0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--runs", type=Path, default=None, metavar="DIR",
                        help="also keep each trained model as the run directory "
                             "DIR/MODEL-seedN (for kiloml export and benchmarks/vision_int8.py)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_IMAGES} images per split, 1 epoch, width 0.25 (a smoke run)")
    parser.add_argument("--shapes-only", action="store_true",
                        help="print parameters, MACs and peak RAM without data or training")
    parser.add_argument("--thread-ratio", action="store_true",
                        help="time training steps with 1 and 2 threads side by side (ratios)")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the table from the seed files already saved")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.thread_ratio:
        print(thread_ratios(args.width_mult))
        return 0
    if args.shapes_only:
        print(shapes_table(args.width_mult))
        return 0
    if args.quick:
        args.epochs, args.width_mult = 1, 0.25
        args.train_images = args.val_images = args.test_images = QUICK_IMAGES
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "vision_models_quick" if args.quick else "vision_models"
    data = full = None
    for seed in [] if args.report else args.seeds:
        path = args.out / f"{stem}_seed{seed}.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        check_budget(results, args, path)
        for kind in [kind for kind in args.models if kind not in results]:
            if data is None:
                full = load_dataset(args.dataset)
                data = reduced(full, args.train_images, args.val_images, args.test_images)
            results[kind] = run(data, kind, args, seed, full)
            print(seed, kind, {k: v for k, v in results[kind].items() if k != "machine"},
                  flush=True)
            path.write_text(json.dumps(results, indent=1))
    runs = seed_files(args.out, stem)
    if not runs:
        print(f"no results saved in {args.out} ({stem}_seed*.json); run without --report first",
              file=sys.stderr)
        return 1
    report = table(runs)
    (args.out / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
