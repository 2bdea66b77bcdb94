"""Cost on emulated Cortex-M of the models frozen in ``tests/golden`` (among them the smartwatch
default ``demo-int16``/``demo-int8`` and the speech h64 model ``kws-h64-int16``/``-int8``),
built from the working tree's C: instructions per inference (mean over the golden's stored
inputs), instructions per MAC and flash, every output checked against the golden logits; with
``--profile``, the instructions of one inference per C function on the Cortex-M4.

    python benchmarks/golden_costs.py demo-int16 kws-h64-int16 [--targets cortex-m4,cortex-m3]
                                      [--profile] [--storage-by bytes|speed] [--json FILE]

The profile runs the first stored input under ``benchmarks/profile/insn_profile_plugin.c``
(instructions per executed block, added up per function from the image's symbols) and lists
the functions of the model and the library (kiloml_predict and what it calls), so the per-step
work of the FastGRNN op (matrix kernels, state update, the op's own loop) is measured apart.
``--storage-by speed`` stores every matrix as ``kiloml export --storage-by speed`` would (the
goldens are frozen with the default, ``bytes``; the logits are the same integers, the golden's
flash and instructions in brackets are then those of the bytes rule).
Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm``.
"""

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.golden.test_goldens import CORTEX_M_CASES, golden, golden_graph  # noqa: E402

from kiloml.deploy.codegen import c_sources, generate_model, library_dir  # noqa: E402
from kiloml.deploy.export import write_sources  # noqa: E402
from kiloml.deploy.targets import TARGETS, Build, _program, blob, flash_bytes, run  # noqa: E402
from kiloml.deploy.verify import run_model  # noqa: E402

PLUGIN = Path(__file__).parent / "profile" / "insn_profile_plugin.c"


def functions(nm_tool: str, path: Path) -> list[tuple[int, int, str]]:
    """``(start, size, name)`` of the code symbols of an object or image."""
    out = []
    for line in run([nm_tool, "-S", str(path)]).stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            out.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return out


def profile(build: Build, first_input: np.ndarray, folder: Path) -> dict[str, int]:
    """Instructions per library function of one inference on ``build`` (a Cortex-M build)."""
    folder.mkdir(parents=True, exist_ok=True)
    plugin = folder / "insn_profile_plugin.so"
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(plugin),
         str(PLUGIN)])
    main = build.compile_one(library_dir() / "harness" / "model_main.c", ("-std=gnu99",),
                             "main_model_main")
    record = [np.ascontiguousarray(first_input, dtype="<i2").tobytes()]
    program = _program(build, main, build.support_objects(), blob(record), folder / "profile")
    result = run(["qemu-system-arm", "-machine", build.target.machine, "-nographic", "-monitor",
                  "none", "-serial", "none", "-semihosting-config", "enable=on,target=native",
                  "-kernel", str(program), "-d", "plugin", "-plugin", str(plugin)])
    library = {name for obj in build.objects for _, _, name in functions(build.target.nm_tool, obj)}
    symbols = [s for s in functions(build.target.nm_tool, program) if s[2] in library]
    per_function: collections.Counter = collections.Counter()
    for line in (result.stdout + result.stderr).decode(errors="replace").splitlines():
        if line.startswith("kiloml-block "):
            _, address, count = line.split()
            start = int(address, 16) & ~1
            for low, size, name in symbols:
                if low <= start < low + size:
                    per_function[name] += int(count)
                    break
    return dict(per_function.most_common())


def measure(name: str, targets: list[str], with_profile: bool, folder: Path,
            storage_by: str = "bytes") -> dict:
    info, arrays = golden(name)
    graph = golden_graph(name)
    for node in graph.nodes:
        for tensor in node.q.values():
            tensor.storage = storage_by
    generated = generate_model(graph, f"golden {name}")
    files = write_sources(generated, folder / "src")
    sources = [folder / "src" / "model.c", *(folder / "src" / f for f in c_sources(files))]
    result = {"macs_per_inference": info["macs_per_inference"],
              "steps": info["model"].get("steps"), "hidden_size": info["model"].get("hidden_size"),
              "targets": {}}
    for target in targets:
        build = Build(TARGETS[target], sources, [folder / "src"], folder / target).compile()
        _, logits, output = run_model(build, arrays["inputs"], graph.meta["num_classes"],
                                      count_instructions=True)
        if not np.array_equal(logits, arrays["logits"]):
            raise SystemExit(f"{name} on {target}: the C output differs from the golden")
        mean = float(np.mean(output.instructions))
        entry = {"instructions_per_inference": mean,
                 "instructions_per_mac": mean / info["macs_per_inference"],
                 "flash_bytes": flash_bytes(build),
                 "golden_instructions_per_inference":
                     info["targets"][target]["instructions_per_inference"],
                 "golden_flash_bytes": info["targets"][target]["flash_bytes"]}
        if with_profile and target == "cortex-m4":
            entry["profile"] = profile(build, arrays["inputs"][0], folder / "profiling")
        result["targets"][target] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="+", choices=CORTEX_M_CASES, metavar="CASE",
                        help=f"golden cases run on Cortex-M ({', '.join(CORTEX_M_CASES)})")
    parser.add_argument("--targets", default="cortex-m4,cortex-m3")
    parser.add_argument("--profile", action="store_true",
                        help="instructions per function of one inference on the Cortex-M4")
    parser.add_argument("--storage-by", choices=("bytes", "speed"), default="bytes",
                        help="each matrix's format, as kiloml export chooses it (default bytes, "
                             "as the goldens were frozen)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    targets = args.targets.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases:
            results[name] = measure(name, targets, args.profile, Path(folder) / name,
                                    args.storage_by)
    print("| model | target | instructions / inference (golden) | MACs | instructions / MAC "
          "| flash bytes (golden) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in results.items():
        for target, e in r["targets"].items():
            print(f"| {name} | {target} | {e['instructions_per_inference']:,.0f} "
                  f"({e['golden_instructions_per_inference']:,.0f}) | "
                  f"{r['macs_per_inference']:,} | {e['instructions_per_mac']:.2f} | "
                  f"{e['flash_bytes']:,} ({e['golden_flash_bytes']:,}) |")
    for name, r in results.items():
        entry = r["targets"].get("cortex-m4", {})
        if "profile" in entry:
            steps = r["steps"] or 1
            print(f"\n{name}, Cortex-M4, one inference ({steps} steps): instructions per function")
            for function, count in entry["profile"].items():
                print(f"  {function:36s} {count:10,}  ({count / steps:9,.1f} per step)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
