"""Deployed cost of compressed runs: ``kiloml export --bits 8`` and ``kiloml verify`` on the host
and Cortex-M4 (QEMU) for each run directory given.

Reported per run: the weight flash of the export (``weight_flash_bytes``: every stored value,
index, row pointer and scale), the integer (int8 weights) accuracy of the simulator on the
exported test inputs, whether the C matched the simulator integer for integer on both targets,
and Cortex-M4 instructions per inference. Results go to ``docs/benchmarks/str_deploy.{json,md}``
(rows of runs given again replace their earlier selves).

    python benchmarks/str_deploy.py runs/str-vs-iht/smartwatch-*-seed0 runs/str-rank/*-seed0
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine_info import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def deploy(run: Path, exports: Path) -> dict:
    out = exports / run.name
    kiloml = [sys.executable, "-m", "kiloml.cli"]
    for command in (["export", str(run), "--out", str(out), "--bits", "8", "--overwrite"],
                    ["verify", str(out), "--targets", "host,cortex-m4",
                     "--require", "host,cortex-m4"]):
        done = subprocess.run(kiloml + command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"kiloml {' '.join(command)} failed: {done.stderr[-1000:]}")
    export = json.loads((out / "export.json").read_text())
    verify = json.loads((out / "verify.json").read_text())["targets"]
    metrics = json.loads((run / "metrics.json").read_text())
    return {"run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
            "weight_flash_bytes": export["weight_flash_bytes"],
            "model_size_bytes_int8": metrics["model_size_bytes_int8"],
            "float_test_accuracy": metrics["test_accuracy"],
            "int8_accuracy": export["simulated_accuracy"],
            "test_count": export["test_count"],
            "exact_host": verify["host"]["exact_match"],
            "exact_m4": verify["cortex-m4"]["exact_match"],
            "m4_instructions": verify["cortex-m4"]["instructions_per_inference"],
            "macs": export["macs_per_inference"]}


def table(rows: list[dict]) -> str:
    lines = ["| run | float test acc. | int8 acc. (exported inputs) | weight flash B | "
             "exact host / M4 | M4 instructions | MACs |", "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {Path(r['run']).name} | {100 * r['float_test_accuracy']:.2f}% | "
                     f"{100 * r['int8_accuracy']:.2f}% ({r['test_count']}) | "
                     f"{r['weight_flash_bytes']:,} | {r['exact_host']:g} / {r['exact_m4']:g} | "
                     f"{r['m4_instructions']:,.0f} | {r['macs']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--exports", type=Path, default=ROOT / "runs" / "str-deploy")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    rows = [deploy(run.resolve(), args.exports) for run in args.runs]
    path = args.out / "str_deploy.json"
    if path.is_file():
        names = {r["run"] for r in rows}
        rows = [r for r in json.loads(path.read_text())["results"] if r["run"] not in names] + rows
    rows.sort(key=lambda r: r["run"])
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": describe(), "results": rows}, indent=2) + "\n")
    (args.out / "str_deploy.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
