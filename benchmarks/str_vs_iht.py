"""STR (learned per-matrix budgets) against hard thresholding at equal total sparsity.

Every run is ``kiloml train`` with the dataset's defaults (recipe, budget, epoch chosen on the
validation split) and one of

* ``iht``: ``--sparsity-w K --sparsity-u K --sparsity-head K`` with ``K = 1 - sparsity``: the
  same fraction of every matrix, iterative hard thresholding (the FastGRNN paper's schedule);
* ``str``: ``--compress str --target-sparsity sparsity``: STR learns each matrix's share.

Both use the same phases (40% dense, 20% IHT or STR, 40% fixed support). Reported per row: the
mean and spread of the test accuracy (float) over the seeds, the deployed bytes with int8
weights (nonzeros, indices and scales, from ``metrics.json``), and for STR the learned kept
fraction per group. Results go to ``docs/benchmarks/str_vs_iht.{json,md}``; runs to
``runs/str-vs-iht``.

    python benchmarks/str_vs_iht.py --sparsities 0.9 0.95 --seeds 0 1 2 --jobs 2
    python benchmarks/str_vs_iht.py --datasets mnist-rows --sparsities 0.9 0.95 --seeds 0 \
        --train-args "--epochs 10 --batch-size 128"

Rows are added to the report already there (a row run again replaces its earlier self).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine_info import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--hidden-size", "8", "--u-rank", "4", "--epochs", "3", "--batch-size", "256",
         "--folds", "0"]


def arguments(method: str, sparsity: float) -> list[str]:
    if method == "str":
        return ["--compress", "str", "--target-sparsity", f"{sparsity:g}"]
    keep = f"{1 - sparsity:.4g}"
    return ["--sparsity-w", keep, "--sparsity-u", keep, "--sparsity-head", keep]


def run(dataset: str, method: str, sparsity: float, seed: int, runs: Path,
        extra: list[str]) -> dict:
    out = runs / f"{dataset}-{method}-{sparsity:g}-seed{seed}"
    metrics_file = out / "metrics.json"
    command = [sys.executable, "-m", "kiloml.cli", "train", "--dataset", dataset,
               *arguments(method, sparsity), "--seed", str(seed), "--out", str(out),
               "--overwrite", *extra]
    if not metrics_file.is_file():
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    metrics = json.loads(metrics_file.read_text())
    zeros = metrics["params_total"] - metrics["params_nonzero"]
    return {"dataset": dataset, "method": method, "sparsity": sparsity, "seed": seed,
            "command": " ".join(["kiloml", *command[3:]]).replace(f"{ROOT}/", ""),
            "test_accuracy": metrics["test_accuracy"],
            "val_accuracy": metrics["best_val_accuracy"],
            "bytes_int8": metrics["model_size_bytes_int8"],
            "bytes_int16": metrics["model_size_bytes_int16"],
            "zeros_of_all_params": zeros / metrics["params_total"],
            "learned": metrics.get("str", {}).get("kept_by_group"),
            "reached": metrics.get("str", {}).get("reached")}


def table(results: list[dict]) -> str:
    rows = ["| dataset | total sparsity | method | seeds | test accuracy (float) | "
            "validation | int8 bytes | kept W / U / head |",
            "|---|---:|---|---:|---|---:|---:|---|"]
    keys = sorted({(r["dataset"], r["sparsity"], r["method"]) for r in results})
    for dataset, sparsity, method in keys:
        rs = [r for r in results if (r["dataset"], r["sparsity"], r["method"]) ==
              (dataset, sparsity, method)]
        acc = [100 * r["test_accuracy"] for r in rs]
        spread = f" ± {statistics.stdev(acc):.2f}%" if len(acc) > 1 else "% (one run)"
        val = statistics.mean(100 * r["val_accuracy"] for r in rs)
        size = statistics.mean(r["bytes_int8"] for r in rs)
        if method == "str":
            kept = " / ".join(
                f"{100 * statistics.mean(r['learned'][g] for r in rs):.1f}%"
                for g in ("W", "U", "head"))
        else:
            kept = " / ".join([f"{100 * (1 - sparsity):.1f}%"] * 3)
        rows.append(f"| {dataset} | {100 * sparsity:g}% | {method} | {len(rs)} | "
                    f"{statistics.mean(acc):.2f}{spread} | {val:.2f}% | {size:,.0f} | {kept} |")
    return "\n".join(rows) + "\n"


def merged(path: Path, results: list[dict], quick: bool) -> list[dict]:
    """``results`` and the rows of an earlier report at ``path`` (same ``quick``) that they do not
    replace, so that rows can be added a few at a time."""
    if not path.is_file():
        return results
    earlier = json.loads(path.read_text())
    if earlier.get("quick") != quick:
        return results
    key = ("dataset", "method", "sparsity", "seed")
    new = {tuple(r[k] for k in key) for r in results}
    return [r for r in earlier["results"] if tuple(r[k] for k in key) not in new] + results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["smartwatch"])
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.5, 0.75, 0.9, 0.95])
    parser.add_argument("--methods", nargs="+", default=["iht", "str"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "str-vs-iht")
    parser.add_argument("--train-args", default="",
                        help="more kiloml train options for every run, the same for both "
                             "methods (e.g. a fixed reduced budget: '--epochs 10 "
                             "--batch-size 128')")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model for 3 epochs (checks the script, not the methods)")
    args = parser.parse_args()
    extra = (QUICK if args.quick else []) + args.train_args.split()
    started = time.perf_counter()
    jobs = [(d, m, s, seed) for d in args.datasets for s in args.sparsities
            for m in args.methods for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run(*j, args.runs, extra), jobs))
    args.out.mkdir(parents=True, exist_ok=True)
    results = merged(args.out / "str_vs_iht.json", results, args.quick)
    report = {"machine": describe(), "quick": args.quick, "results": results,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (args.out / "str_vs_iht.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "str_vs_iht.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
