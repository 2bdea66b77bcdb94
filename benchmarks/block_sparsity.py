"""Block-sparse training (``--sparsity-block 4``) against unstructured hard thresholding on the
smartwatch default (FastGRNN h32, W and U 50 % kept), several seeds: float validation and test
accuracy, the int16 export's accuracy, weight and image flash and Cortex-M4 instructions per
inference with each storage rule (``--storage-by bytes`` and ``speed``), and the cost model's
prediction of the matrix kernels' instructions against a per-function profile of one inference.

    python benchmarks/block_sparsity.py --runs DIR [--seeds 0 1 2] [--block 4] [--json FILE]

Every step is the CLI: ``kiloml train [--sparsity-block B] --seed S --out DIR/<variant>-s<S>``
(skipped when that run finished before), ``kiloml export RUN --bits 16 --storage-by R --out
RUN/c16-<R> --overwrite`` and ``kiloml verify ... --targets host,cortex-m4`` (bit-exact on
both). The epoch is chosen on the validation split; test accuracy is only reported. Measured
matrix-kernel instructions are those of ``kl_kernel_*`` and ``kl_matvec*`` in the profile of the
first test input (``benchmarks/golden_costs.py``'s profiler); predicted ones are each matrix's
``predicted_instructions`` in ``export.json``, times the steps for the recurrent matrices.
Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.golden_costs import profile  # noqa: E402

from kiloml.deploy.codegen import c_sources  # noqa: E402
from kiloml.deploy.targets import TARGETS, Build  # noqa: E402

RULES = ("bytes", "speed")


def kiloml(*argv: str) -> None:
    """Run one kiloml command (the same interpreter), failing loudly."""
    subprocess.run([sys.executable, "-m", "kiloml.cli", *argv], check=True,
                   stdout=subprocess.DEVNULL)


def train(run: Path, seed: int, block: int) -> dict:
    if not (run / "metrics.json").is_file():
        extra = ["--sparsity-block", str(block)] if block > 1 else []
        kiloml("train", "--seed", str(seed), *extra, "--out", str(run), "--overwrite")
    return json.loads((run / "metrics.json").read_text())


def matrix_profile(export: Path, info: dict) -> tuple[float, int]:
    """(predicted, measured) instructions of the matrix products of one inference."""
    steps = info["steps"]
    predicted = sum(entry["predicted_instructions"] * (steps if name.startswith("rnn.") else 1)
                    for name, entry in info["storage"].items()
                    if entry.get("predicted_instructions") is not None)
    sources = [export / "model.c", *(export / f for f in c_sources(info["files"]))]
    build = Build(TARGETS["cortex-m4"], sources, [export], export / "build" / "profile").compile()
    first = np.load(export / "test_inputs.npz")["inputs"][0]
    counts = profile(build, first, export / "build" / "profiling")
    measured = sum(n for name, n in counts.items()
                   if name.startswith("kl_kernel_") or name.startswith("kl_matvec"))
    return predicted, measured


def measure(run: Path, rule: str) -> dict:
    export = run / f"c16-{rule}"
    kiloml("export", str(run), "--bits", "16", "--storage-by", rule, "--out", str(export),
           "--overwrite")
    kiloml("verify", str(export), "--targets", "host,cortex-m4", "--require", "host,cortex-m4")
    info = json.loads((export / "export.json").read_text())
    verify = json.loads((export / "verify.json").read_text())["targets"]
    m4 = verify["cortex-m4"]
    if verify["host"]["exact_match"] != 1.0 or m4["exact_match"] != 1.0:
        raise SystemExit(f"{export}: the C differs from the simulator")
    predicted, measured = matrix_profile(export, info)
    return {"int16_test_accuracy": m4["accuracy"], "weight_flash_bytes": info["weight_flash_bytes"],
            "flash_bytes": m4["flash_bytes"], "instructions": m4["instructions_per_inference"],
            "formats": {name: e["format"] for name, e in info["storage"].items() if "kernel" in e},
            "predicted_matrix_instructions": predicted,
            "measured_matrix_instructions": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="where the runs are kept")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    for variant, block in (("unstructured", 1), (f"block{args.block}", args.block)):
        for seed in args.seeds:
            run = args.runs / f"{variant}-s{seed}"
            metrics = train(run, seed, block)
            row = {"variant": variant, "seed": seed,
                   "val_accuracy": metrics["best_val_accuracy"],
                   "test_accuracy": metrics["test_accuracy"],
                   "storage": {rule: measure(run, rule) for rule in RULES}}
            results.append(row)
            print(json.dumps(row), flush=True)
    print("\n| variant | seed | val. acc. (float) | test acc. float / int16 | storage rule | "
          "weight flash B | image flash B | M4 instr. / inference | matrix kernels predicted "
          "/ measured | formats (W, U1, U2, head) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for row in results:
        for rule, s in row["storage"].items():
            formats = ", ".join(s["formats"].values())
            print(f"| {row['variant']} | {row['seed']} | {100 * row['val_accuracy']:.2f}% | "
                  f"{100 * row['test_accuracy']:.2f}% / {100 * s['int16_test_accuracy']:.2f}% | "
                  f"{rule} | {s['weight_flash_bytes']:,} | {s['flash_bytes']:,} | "
                  f"{s['instructions']:,.0f} | {s['predicted_matrix_instructions']:,.0f} / "
                  f"{s['measured_matrix_instructions']:,} | {formats} |")
    print("\nmeans over seeds:")
    for variant in dict.fromkeys(r["variant"] for r in results):
        rows = [r for r in results if r["variant"] == variant]
        for rule in RULES:
            mean = {k: np.mean([r["storage"][rule][k] for r in rows])
                    for k in ("int16_test_accuracy", "weight_flash_bytes", "flash_bytes",
                              "instructions")}
            val = np.mean([r["val_accuracy"] for r in rows])
            test = np.mean([r["test_accuracy"] for r in rows])
            print(f"  {variant:13} {rule:5} val {100 * val:.2f}% test {100 * test:.2f}% "
                  f"int16 {100 * mean['int16_test_accuracy']:.2f}% "
                  f"weights {mean['weight_flash_bytes']:,.0f} B image {mean['flash_bytes']:,.0f} B "
                  f"M4 {mean['instructions']:,.0f} instructions")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
