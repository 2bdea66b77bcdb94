"""Subject-wise cross-validation on the smartwatch data: the comparison of docs/benchmarks.md
with every subject tested once instead of only subjects 9 and 10.

    python benchmarks/smartwatch_cv.py            # 5 folds x 6 models, about 30 min on 1 core
    python benchmarks/smartwatch_cv.py --seeds 0 1 2  # more seeds per fold (keeps those done)
    python benchmarks/smartwatch_cv.py --quick    # smoke run (runs/smartwatch-cv-quick)
    python benchmarks/smartwatch_cv.py --train-hop 16 --only "8 frames"  # denser training windows

Fold i (0-4) tests subjects 2i+1 and 2i+2, validates on the subject before them (subject 10
for fold 0) and trains on the other seven, so fold 4 is the fixed split of ``kiloml train``.
The models are the smartwatch rows of ``accuracy_vs_size.py`` named in ``MODELS``, trained the
same way (same Trainer, augmentation and 60 epochs); kiloml's models are also scored with int8
weights by the integer simulator. A fold's accuracy is the mean over the seeds it ran. Each
finished (model, fold, seed) is saved at once in ``OUT/smartwatch_cv.json`` and skipped by a
rerun, so an interrupted run loses at most one model; runs of different ``--folds`` may share
the file at the same time (two cores: two runs). With ``--train-hop N`` other than 64 the
training windows start every N samples (validation and test stay at 64) and the results go to
``smartwatch_cv_hopN.{json,md}``; the best baseline is then also sought among the default-window
results in the same folder.
"""

import argparse
import fcntl
import json
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch

from accuracy_vs_size import (
    COMPRESSED,
    QUICK,
    RECIPES,
    ROOT,
    SMARTWATCH_STACKED,
    RowData,
    save_atomic,
    split_fields,
    train_one,
    variants,
)
from kiloml.data.smartwatch import SUBJECTS, TRAIN_HOP, load_smartwatch
from kiloml.errors import KilomlError
from machine_info import describe

MODELS = (COMPRESSED, "nn.GRU h64", *SMARTWATCH_STACKED)
FOLDS = 5
SCORES = ("test_accuracy", "int8_accuracy")


def fold_subjects(fold: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(train, validation, test) subjects of ``fold``."""
    test = (2 * fold + 1, 2 * fold + 2)
    val = ((test[0] - 2) % len(SUBJECTS) + 1,)
    train = tuple(s for s in SUBJECTS if s not in test + val)
    return train, val, test


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path`` + ``.lock`` (runs of other folds share one file)."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_results(path: Path, quick: bool) -> dict:
    """The saved results in ``path`` of a run like this one (smoke or full), else none."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    return saved.get("results", {}) if saved.get("quick", quick) == quick else {}


def add_seed(fold_entry: dict, seed: int, scores: dict) -> None:
    """Store one seed's ``scores`` in ``fold_entry`` and make its accuracies the seed means."""
    fold_entry["seeds"][str(seed)] = scores
    for k in SCORES:
        values = [v[k] for v in fold_entry["seeds"].values() if k in v]
        if values:
            fold_entry[k] = float(np.mean(values))


def fold_means(entry: dict, folds: list[int], seeds: list[int]) -> tuple[list[float], list[float]]:
    """Per-fold float32 and int8 test accuracies (%) of one model, each the mean over ``seeds``;
    the int8 list is empty for models without int8 scores."""
    runs = [[entry["folds"][str(f)]["seeds"][str(s)] for s in seeds] for f in folds]
    accs = [100 * float(np.mean([r["test_accuracy"] for r in fold])) for fold in runs]
    int8 = [100 * float(np.mean([r["int8_accuracy"] for r in fold])) for fold in runs
            if all("int8_accuracy" in r for r in fold)]
    return accs, int8


def markdown(results: dict, folds: list[int], seeds: list[int], quick: bool,
             train_hop: int = TRAIN_HOP, reference: dict | None = None) -> str:
    """The per-fold table, the means, and each compressed FastGRNN against the best baseline:
    of ``results``, or of ``reference`` (the default-window results, when ``train_hop`` is not
    the default and they cover the same folds and seeds)."""
    heads = [f"test {'–'.join(map(str, fold_subjects(f)[2]))}" for f in folds]
    hop = "" if train_hop == TRAIN_HOP else f", training windows every {train_hop} samples"
    lines = [f"Subject-wise cross-validation{' (quick smoke run)' if quick else ''}{hop}: "
             f"{len(folds)} folds, float32 test accuracy (%) per fold (mean over seeds "
             f"{', '.join(map(str, seeds))}); the mean is over folds.",
             "", "| model | bytes float32 | bytes int8 | " + " | ".join(heads)
             + " | mean ± std | int8 mean |", "|---|---:|---:|" + "---:|" * (len(folds) + 2)]
    means = {}
    for name, entry in results.items():
        accs, int8 = fold_means(entry, folds, seeds)
        means[name] = (float(np.mean(accs)), float(np.mean(int8)) if int8 else None)
        std = np.std(accs, ddof=1) if len(accs) > 1 else 0.0
        lines.append(f"| {name} | {entry['model_size_bytes']:,} | "
                     f"{entry['model_size_bytes_int8']:,} | "
                     + " | ".join(f"{a:.2f}" for a in accs)
                     + f" | {np.mean(accs):.2f} ± {std:.2f}"
                     + f" | {f'{np.mean(int8):.2f}' if int8 else '—'} |")
    # candidate baselines: name -> (mean accuracy, float32 bytes)
    baselines = {n: (means[n][0], e["model_size_bytes"]) for n, e in results.items()
                 if e["kind"] in ("gru", "lstm")}
    for name, entry in (reference or {}).items():
        if entry["kind"] in ("gru", "lstm"):
            baselines[f"{name}, training windows every {TRAIN_HOP} samples"] = (
                float(np.mean(fold_means(entry, folds, seeds)[0])), entry["model_size_bytes"])
    if not baselines:
        return "\n".join(lines) + "\n"
    best = max(baselines, key=lambda n: baselines[n][0])
    best_acc, best_bytes = baselines[best]
    lines += ["", f"Most accurate baseline: {best} ({best_acc:.2f}%, {best_bytes:,} B float32)."]
    for name in results:
        if name.startswith(COMPRESSED):
            ratio = best_bytes / results[name]["model_size_bytes_int8"]
            gap = best_acc - means[name][1]
            verdict = "met" if ratio >= 20 and gap <= 1.0 else "missed"
            lines.append(f"- {name} at int8: {means[name][1]:.2f}%, "
                         f"{results[name]['model_size_bytes_int8']:,} B: {ratio:.1f}x smaller, "
                         f"{abs(gap):.2f} points {'behind' if gap > 0 else 'ahead'}: {verdict}.")
    return "\n".join(lines) + "\n"


def reference_results(args, folds: list[int]) -> dict:
    """The default-window results in ``args.out`` that cover ``folds`` and ``args.seeds``, when
    this run uses other windows (its baselines may then be beaten by the default ones)."""
    path = args.out / "smartwatch_cv.json"
    if args.train_hop == TRAIN_HOP or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("quick") != args.quick:
        return {}
    wanted = {str(s) for s in args.seeds}
    return {name: entry for name, entry in saved["results"].items()
            if all(wanted <= set(entry["folds"].get(str(f), {}).get("seeds", {})) for f in folds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(FOLDS)),
                        choices=range(FOLDS), metavar="FOLD", help="folds to run (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train every model once per seed and fold (default: 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where smartwatch_cv.json and .md go (default: docs/benchmarks, or "
                             "runs/smartwatch-cv-quick with --quick)")
    parser.add_argument("--train-hop", type=int, default=TRAIN_HOP, metavar="SAMPLES",
                        help="samples between the starts of training windows (default: "
                             "%(default)s; results of other values go to smartwatch_cv_hopN)")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="train only the models whose name contains one of these texts")
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain the chosen models' folds and seeds even if saved")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['epochs']} epochs on {QUICK['train']} training "
                             "windows, two folds; checks the pipeline and the output")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.out is None:
        args.out = ROOT / ("runs/smartwatch-cv-quick" if args.quick else "docs/benchmarks")
    if args.quick:
        args.folds = args.folds[:2]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "smartwatch_cv" + ("" if args.train_hop == TRAIN_HOP else f"_hop{args.train_hop}")
    path = args.out / f"{stem}.json"
    recipe = RECIPES["smartwatch"]
    models = {name: fields for name, fields in variants(recipe).items() if name in MODELS
              and (args.only is None or any(text in name for text in args.only))}
    if not models:
        print(f"smartwatch_cv: --only {' '.join(args.only)} matches none of: {', '.join(MODELS)}",
              file=sys.stderr)
        return 2
    # every model's saved results stay, also those --only leaves out
    results = {k: v for k, v in read_results(path, args.quick).items() if k in MODELS}
    epochs = QUICK["epochs"] if args.quick else recipe["epochs"]
    for fold in args.folds:
        fold_data = RowData(partial(load_smartwatch, subjects=fold_subjects(fold),
                                    train_hop=args.train_hop), args.quick)
        try:
            fold_data({})
        except KilomlError as e:
            print(f"smartwatch_cv: {e}", file=sys.stderr)
            return 2
        for seed, (name, (model_fields, train_fields)) in (
                (s, m) for s in args.seeds for m in models.items()):
            done = results.get(name)
            config = {"model": model_fields, "train": train_fields}
            if done and (done["epochs"], done["config"]) == (epochs, config) \
                    and str(seed) in done["folds"].get(str(fold), {}).get("seeds", {}) \
                    and not args.overwrite:
                continue
            started = time.perf_counter()
            entry = train_one(fold_data(split_fields(train_fields)[0]), model_fields,
                              train_fields, epochs, recipe["batch_size"], seed,
                              calibration=fold_data({}).train.x)
            scores = {k: entry[k] for k in SCORES if k in entry}
            with locked(path):  # another run (other --folds) may have saved since we read
                results.update({k: v for k, v in read_results(path, args.quick).items()
                                if k in MODELS})
                done = results.get(name)
                if not done or (done["epochs"], done["config"]) != (epochs, config):
                    done = {k: entry[k] for k in ("kind", "model_size_bytes",
                                                  "model_size_bytes_int8", "macs_per_inference",
                                                  "epochs", "config")}
                    done["folds"] = {}
                fold_entry = done["folds"].setdefault(
                    str(fold), {"subjects": fold_subjects(fold), "seeds": {}})
                add_seed(fold_entry, seed, scores)
                results[name] = done
                save_atomic(path, {"quick": args.quick, "train_hop": args.train_hop,
                                   "machine": f"{describe()}, torch {torch.__version__}, "
                                              "1 thread", "results": results})
            print(f"fold {fold} (test {fold_subjects(fold)[2]}) seed {seed} {name:45s} "
                  f"{100 * entry['test_accuracy']:6.2f}% ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    wanted = {str(s) for s in args.seeds}

    def complete(name: str) -> set[int]:
        return {int(f) for f, e in results.get(name, {}).get("folds", {}).items()
                if wanted <= set(e["seeds"])}

    folds = sorted(set.intersection(*(complete(n) for n in models)))
    if not set(args.folds) <= set(folds):
        print("smartwatch_cv: some models have no result for every fold and seed",
              file=sys.stderr)
        return 1
    # the report shows every model with these folds and seeds, also those --only left out
    shown = {n: results[n] for n in MODELS if set(folds) <= complete(n)}
    report = markdown(shown, folds, args.seeds, args.quick, args.train_hop,
                      reference_results(args, folds))
    (args.out / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
