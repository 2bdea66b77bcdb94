"""``kiloml train --dataset NAME`` with no other option on the UCR/UEA ``.ts`` classification
sets that sktime 1.2.0's package data ships, against 1-nearest-neighbour DTW.

    python benchmarks/ucr_defaults.py                      # 7 sets x seeds 0 1 2 (about 40 min)
    python benchmarks/ucr_defaults.py --only GunPoint --seeds 3
    python benchmarks/ucr_defaults.py --quick              # smoke run: one set, three epochs

Each run is ``kiloml train --dataset DATA/NAME/NAME --seed S --out runs/ucr-defaults/NAME-S`` in
its own process (``--seed`` and ``--out`` are the only options), timed from start to exit.
Finished runs are kept in ``OUT/ucr_defaults.json`` (default ``docs/benchmarks``) and skipped by
a rerun. The table goes to ``OUT/ucr_defaults.md``.

The 1-NN DTW column is the UCR archive's published accuracy with an unconstrained warping window
("DTW (w=100)" in the archive's ``DataSummary.csv``, 2018 release) for the univariate sets, and
for the two multivariate ones (which the univariate table does not cover) the same classifier
computed by ``dtw_1nn.py`` on the same files (all channels warped together). ``dtw_1nn.py``
reproduces the published univariate figures it was checked on (ItalyPowerDemand 95.04%,
GunPoint 90.67%, ArrowHead 70.29%). The archive's other baseline, DTW with a warping window
learned on the training set, is listed for reference.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kiloml.data.uea import sktime_data_dir
from machine_info import describe

#: name -> (1-NN full-window DTW, 1-NN DTW with the learned window), test accuracy. Univariate:
#: 1 - the error rates of the UCR archive's DataSummary.csv (2018). Multivariate: None =
#: computed here with dtw_1nn.py (the archive's univariate table has no row for them).
DATASETS = {
    "ArrowHead": (1 - 0.2971, 1 - 0.2000),
    "GunPoint": (1 - 0.0933, 1 - 0.0867),
    "ItalyPowerDemand": (1 - 0.0496, 1 - 0.0447),
    "OSULeaf": (1 - 0.4091, 1 - 0.3884),
    "ACSF1": (1 - 0.3600, 1 - 0.3800),
    "BasicMotions": (None, None),
    "JapaneseVowels": (None, None),
}
SEEDS = (0, 1, 2)


def train(name: str, seed: int, runs: Path, extra: list[str]) -> dict:
    """One ``kiloml train`` run in a fresh process: its metrics, its wall-clock seconds and the
    CPU seconds it used (on a machine shared with other work, wall-clock time grows with the
    load; CPU time much less)."""
    run_dir = runs / f"{name}-{seed}"
    command = [sys.executable, "-m", "kiloml.cli", "train", "--dataset",
               str(sktime_data_dir() / name / name), "--seed", str(seed), "--out", str(run_dir),
               "--overwrite", *extra]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "load_average": round(os.getloadavg()[0], 1),
            "test_accuracy": metrics["test_accuracy"],
            "validation_accuracy": metrics["best_val_accuracy"],
            "bytes_float32": metrics["model_size_bytes"],
            "bytes_int8": metrics["model_size_bytes_int8"], "recipe": metrics["recipe"]["kind"],
            "frame_stack": metrics["frame_stack"],
            "steps": config["data"].get("padded_from", config["data"]["steps"]),
            "budget_steps": metrics["budget"]["steps"],
            "channels": config["data"]["num_features"],
            "selection": metrics["selection"]["method"], "warning": metrics["warning"],
            "sizes": config["data"]["sizes"]}


def dtw_reference(name: str, saved: dict) -> float:
    """The 1-NN full-DTW accuracy of ``name``: published, or computed once and saved."""
    published = DATASETS[name][0]
    if published is not None:
        return published
    if name not in saved.setdefault("dtw", {}):
        from dtw_1nn import dtw_accuracy

        saved["dtw"][name] = dtw_accuracy(name)
    return saved["dtw"][name]


def table(saved: dict, names: list[str]) -> str:
    lines = ["| dataset | train / test | steps × channels | kiloml default FastGRNN | 1-NN DTW "
             "(full window) | 1-NN DTW (learned window) | bytes float32 / int8 | CPU seconds "
             "(mean, max) | wall seconds (mean, max) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        runs = saved["runs"].get(name, {})
        if not runs:
            continue
        acc = np.array([r["test_accuracy"] for r in runs.values()])
        secs = [r["seconds"] for r in runs.values()]
        cpu = [r["cpu_seconds"] for r in runs.values()]
        spread = acc.std(ddof=1) if len(acc) > 1 else 0.0  # standard deviation over seeds
        first = next(iter(runs.values()))
        sizes = first["sizes"]
        dtw = saved.get("dtw", {}).get(name, DATASETS[name][0])
        learned = DATASETS[name][1]
        verdict = "**" if acc.mean() >= dtw - 5e-5 else ""
        k = first["frame_stack"]
        stacked = f" ({-(-first['steps'] // k)} frames of {k})" if k > 1 else ""
        lines.append(
            f"| {name} | {sizes['train'] + sizes['val']} / {sizes['test']} | "
            f"{first['steps']} × {first['channels']}{stacked} | "
            f"{verdict}{100 * acc.mean():.1f} ± {100 * spread:.1f}{verdict} "
            f"({len(acc)} seeds) | {100 * dtw:.1f}{'' if DATASETS[name][0] else ' (computed)'} | "
            f"{'-' if learned is None else f'{100 * learned:.1f}'} | "
            f"{first['bytes_float32']:,} / {first['bytes_int8']:,} | "
            f"{np.mean(cpu):.0f}, {max(cpu):.0f} | {np.mean(secs):.0f}, {max(secs):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--out", type=Path, default=None,
                        help="where ucr_defaults.json and .md go (default: docs/benchmarks, or "
                             "runs/ucr-defaults-quick with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: ItalyPowerDemand, seed 0, --epochs 3 (not the defaults)")
    args = parser.parse_args()
    if sktime_data_dir() is None:
        raise SystemExit("sktime is not installed (pip install --no-deps sktime==1.2.0)")
    out = args.out or (Path("runs/ucr-defaults-quick") if args.quick else Path("docs/benchmarks"))
    runs = out / "runs" if args.quick else Path("runs/ucr-defaults")
    names, seeds = (["ItalyPowerDemand"], [0]) if args.quick else (args.only, args.seeds)
    extra = ["--epochs", "3"] if args.quick else []
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ucr_defaults.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved.update(machine=describe(), threads=1, quick=args.quick)
    saved.setdefault("runs", {})
    for name in names:
        for seed in seeds:
            if str(seed) in saved["runs"].get(name, {}):
                continue
            result = train(name, seed, runs, extra)
            saved["runs"].setdefault(name, {})[str(seed)] = result
            print(f"{name} seed {seed}: test accuracy {100 * result['test_accuracy']:.2f}% in "
                  f"{result['seconds']:.0f} s, {result['cpu_seconds']:.0f} s of CPU (load average "
                  f"{result['load_average']:.1f})", flush=True)
            path.write_text(json.dumps(saved, indent=1) + "\n")
        dtw_reference(name, saved)
        path.write_text(json.dumps(saved, indent=1) + "\n")
    report = table(saved, list(DATASETS))
    (out / "ucr_defaults.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
