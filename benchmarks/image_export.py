"""Deployment of trained vision runs (issue 19): every applicable schedule of each run exported
at int8 with ``kiloml export --schedule`` and checked with ``kiloml verify`` (C against the
integer simulator on the host, Cortex-M4 and Cortex-M3; RAM measured on the M4: arena + logits
+ painted stack), with the planner's best tiling of one and of two tiled stages.

    python benchmarks/image_export.py RUN [RUN ...] --out DIR

Prints a Markdown table and writes ``DIR/image_export.json``; the exports stay in ``DIR``.
"""

import argparse
import json
from pathlib import Path

from kiloml.cli import main as kiloml
from kiloml.ir.lower import lower_model
from kiloml.ir.plan import plan_arena
from kiloml.ir.quantize import quantize_graph
from kiloml.ir.schedule_choice import applicable, candidates, tile_stages
from kiloml.runs import load_run


def stage_figures(run: Path) -> dict:
    """Per tiled schedule of ``run``: the planned arena and MACs of its best tiling with one
    and with two tiled stages (shapes and weights only; no data)."""
    _, model = load_run(run)
    graph = quantize_graph(lower_model(model, model.config.height), {}, 8)
    out = {}
    for kind in applicable(graph)[1:]:
        best: dict[int, tuple[int, int]] = {}
        for stages in candidates(graph, kind):
            scheduled = tile_stages(graph, stages, kind)
            key = (plan_arena(scheduled).peak, scheduled.macs())
            best[len(stages)] = min(best.get(len(stages), key), key)
        out[kind] = {f"{n} stage{'s' * (n > 1)}": {"arena_bytes": a, "macs": m}
                     for n, (a, m) in sorted(best.items())}
    return out


def measure(run: Path, out: Path, targets: str, tilings: bool = True) -> dict:
    """Export and verify ``run`` under every applicable schedule (with ``tilings``, also the
    planner's best tiling of one and two stages, :func:`stage_figures`)."""
    _, model = load_run(run)
    graph = quantize_graph(lower_model(model, model.config.height), {}, 8)
    rows = {}
    for kind in applicable(graph):
        folder = out / f"{run.name}-{kind}"
        for words in (["export", str(run), "--bits", "8", "--schedule", kind, "--out",
                       str(folder), "--overwrite"], ["verify", str(folder), "--targets", targets]):
            if kiloml(words) != 0:
                raise SystemExit(f"kiloml {' '.join(words)} failed")
        info = json.loads((folder / "export.json").read_text())
        report = json.loads((folder / "verify.json").read_text())
        m4 = report["targets"].get("cortex-m4", {})
        rows[kind] = {
            "stages": info["schedule"].get("stages", []),
            "planned_arena_bytes": info["scratch_ram_bytes"],
            "stated_ram_bytes": info["ram_bytes"],
            "measured_m4_ram_bytes": m4.get("ram_bytes_measured"),
            "macs": info["macs_per_inference"],
            "constants_bytes": info["weight_flash_bytes"],
            "m4_image_bytes": m4.get("flash_bytes"),
            "m4_instructions": m4.get("instructions_per_inference"),
            "exact": {t: e.get("exact_match") for t, e in report["targets"].items()},
            "inputs": report["inputs"]}
    return {"kind": model.config.kind, "schedules": rows,
            "tilings": stage_figures(run) if tilings else {}}


def table(report: dict) -> str:
    lines = ["| model | schedule | planned peak RAM (arena) | stated RAM (M4) | measured RAM (M4) "
             "| MACs | constants | M4 image (text + data) | M4 instructions | bit-exact |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for entry in report.values():
        for kind, r in entry["schedules"].items():
            exact = ", ".join(t for t, e in r["exact"].items() if e == 1.0) or "no"
            lines.append(f"| {entry['kind']} | {kind} | {r['planned_arena_bytes']:,} | "
                         f"{r['stated_ram_bytes']:,} | {r['measured_m4_ram_bytes'] or 0:,} | "
                         f"{r['macs']:,} | {r['constants_bytes']:,} | "
                         f"{r['m4_image_bytes'] or 0:,} | {r['m4_instructions'] or 0:,.0f} | "
                         f"{exact} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories of kiloml train")
    parser.add_argument("--out", type=Path, required=True, help="folder for the exports")
    parser.add_argument("--targets", default="host,cortex-m4,cortex-m3")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {run.name: measure(run, args.out, args.targets) for run in args.runs}
    (args.out / "image_export.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    for entry in report.values():
        for kind, tilings in entry["tilings"].items():
            print(f"{entry['kind']} {kind}: " + "; ".join(
                f"best with {n}: {t['arena_bytes']:,} B arena, {t['macs']:,} MACs"
                for n, t in tilings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
