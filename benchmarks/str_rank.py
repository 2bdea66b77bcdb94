"""Low-rank STR (learned ranks) against fixed ranks on smartwatch.

Every run is ``kiloml train`` with the dataset's defaults (recipe, budget, epoch chosen on the
validation split) and one of

* ``learned S``: ``--compress str --target-sparsity S --learn-rank``: the ranks of ``W`` and
  ``U`` are learned from the full matrices (singular-value soft thresholds) and the head's
  sparsity entrywise, at a total of ``1 - S`` of the dense matrices' values stored;
* ``fixed R``: ``--u-rank R`` with ``W`` full and every matrix dense (``--sparsity-w/-u/-head
  1``): the FastGRNN paper's low rank without sparsity, the rank chosen by hand.

Configurations are fixed here, before any run. Reported per row: test accuracy (float) mean
and spread over the seeds, validation accuracy, int8 bytes as deployed (from ``metrics.json``)
and the ranks of ``W`` and ``U`` (learned: per seed). Results go to
``docs/benchmarks/str_rank.{json,md}``; runs to ``runs/str-rank``.

    python benchmarks/str_rank.py --seeds 0 1 2
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
QUICK = ["--hidden-size", "8", "--epochs", "3", "--batch-size", "256", "--folds", "0"]
#: (label, kiloml train options), fixed before any run
CONFIGURATIONS = [
    ("learned 0.75", ["--compress", "str", "--target-sparsity", "0.75", "--learn-rank"]),
    ("learned 0.9", ["--compress", "str", "--target-sparsity", "0.9", "--learn-rank"]),
    ("fixed U rank 2", ["--u-rank", "2", "--sparsity-w", "1", "--sparsity-u", "1",
                        "--sparsity-head", "1"]),
    ("fixed U rank 4", ["--u-rank", "4", "--sparsity-w", "1", "--sparsity-u", "1",
                        "--sparsity-head", "1"]),
    # added after the runs above: the ranks "learned 0.75" learned on every seed (from the
    # training data), fixed by hand with a dense head, to tell the ranks from the pruned head
    ("fixed W+U rank 3", ["--w-rank", "3", "--u-rank", "3", "--sparsity-w", "1",
                          "--sparsity-u", "1", "--sparsity-head", "1"]),
]


def run(dataset: str, label: str, options: list[str], seed: int, runs: Path,
        extra: list[str]) -> dict:
    out = runs / f"{dataset}-{label.replace(' ', '-')}-seed{seed}"
    metrics_file = out / "metrics.json"
    command = [sys.executable, "-m", "kiloml.cli", "train", "--dataset", dataset, *options,
               "--seed", str(seed), "--out", str(out), "--overwrite", *extra]
    if not metrics_file.is_file():
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    metrics = json.loads(metrics_file.read_text())
    model = json.loads((out / "config.json").read_text())["model"]
    return {"dataset": dataset, "configuration": label, "seed": seed,
            "command": " ".join(["kiloml", *command[3:]]).replace(f"{ROOT}/", ""),
            "test_accuracy": metrics["test_accuracy"],
            "val_accuracy": metrics["best_val_accuracy"],
            "bytes_int8": metrics["model_size_bytes_int8"],
            "macs": metrics["macs_per_inference"],
            "w_rank": model["w_rank"], "u_rank": model["u_rank"],
            "learned_ranks": metrics.get("str", {}).get("ranks"),
            "kept_by_group": metrics.get("str", {}).get("kept_by_group"),
            "reached": metrics.get("str", {}).get("reached")}


def table(results: list[dict]) -> str:
    rows = ["| configuration | seeds | test accuracy (float) | validation | int8 bytes | "
            "rank of W / U (per seed) | head kept |",
            "|---|---:|---|---:|---:|---|---:|"]
    for label, _ in CONFIGURATIONS:
        rs = [r for r in results if r["configuration"] == label]
        if not rs:
            continue
        acc = [100 * r["test_accuracy"] for r in rs]
        spread = f" ± {statistics.stdev(acc):.2f}%" if len(acc) > 1 else "% (one run)"
        val = statistics.mean(100 * r["val_accuracy"] for r in rs)
        size = statistics.mean(r["bytes_int8"] for r in rs)
        ranks = ", ".join(f"{r['w_rank'] or 'full'} / {r['u_rank'] or 'full'}" for r in rs)
        head = (f"{100 * statistics.mean(r['kept_by_group']['head'] for r in rs):.1f}%"
                if rs[0]["kept_by_group"] else "100%")
        rows.append(f"| {label} | {len(rs)} | {statistics.mean(acc):.2f}{spread} | "
                    f"{val:.2f}% | {size:,.0f} | {ranks} | {head} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="smartwatch")
    parser.add_argument("--configurations", nargs="+", default=[c for c, _ in CONFIGURATIONS],
                        help="labels of the configurations to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (1 thread each)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "str-rank")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model for 3 epochs (checks the script, not the methods)")
    args = parser.parse_args()
    extra = QUICK if args.quick else []
    options = dict(CONFIGURATIONS)
    started = time.perf_counter()
    jobs = [(args.dataset, label, options[label], seed) for label in args.configurations
            for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run(*j, args.runs, extra), jobs))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": describe(), "quick": args.quick, "results": results,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    name = "str_rank_quick" if args.quick else "str_rank"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
