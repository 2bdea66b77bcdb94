"""kiloml's dense matrix-vector kernels against Arm's CMSIS-DSP on emulated Cortex-M4 and
Cortex-M3: instructions per call on the same matrices, side by side in one program.

    python benchmarks/kernels_vs_cmsis.py [--quick] [--cache DIR] [--json FILE] [--markdown FILE]

CMSIS-DSP comes from the sdist of ``cmsisdsp==1.10.3`` (``pip download --no-deps --no-binary
:all: --no-build-isolation``, so that pip does not build numpy only to read the sdist's
metadata), unpacked into ``--cache`` (default ``$KILOML_CACHE/cmsisdsp-1.10.3`` or
``~/.cache/kiloml/cmsisdsp-1.10.3``); it is never part of kiloml. The sdist has no CMSIS-Core,
so ``benchmarks/cmsis_shim/cmsis_compiler.h`` supplies its intrinsics from GCC's
``arm_acle.h``. Everything is built with kiloml's one flag set (``arm-none-eabi-gcc -O2``,
``kiloml.deploy.targets``; CMSIS with ``ARM_MATH_LOOPUNROLL``) and counted with kiloml's QEMU
plugin; the cost of the markers around each call (an empty interval) is subtracted.

Measured per shape, with seeded random matrices:

* int16: kiloml ``kl_matvec_s16_s16`` (int16 weights and x, exact int64 sums, rounded rescale,
  int16 out) against ``arm_mat_vec_mult_q15`` (q15 weights and x, int64 sums, truncating
  ``>> 15``, q15 out) and ``arm_dot_prod_q15`` called once per row (int64 sums, no rescale);
* int8: kiloml ``kl_matvec_s16_s16`` on int8 weights (int16 x, exact int32 sums, int16 out)
  against ``arm_mat_vec_mult_q7`` (q7 weights and q7 x, int32 sums, q7 out). CMSIS-DSP has no
  int8 x int16 matrix-vector product; q7 x q7 is the nearest, and its x is half as wide.

Every output is checked against numpy (kiloml's against its spec
``kiloml.ops.matrix.matvec``), so both sides compute what they claim.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import library_dir
from kiloml.deploy.targets import TARGETS, Build, run_records
from kiloml.ops.fixed import QTensor, saturate, shift_round
from kiloml.ops.matrix import emit_matrix, matvec

PACKAGE = "cmsisdsp==1.10.3"
SDIST = "cmsisdsp-1.10.3"
SOURCES = ("Source/MatrixFunctions/arm_mat_vec_mult_q15.c",
           "Source/MatrixFunctions/arm_mat_vec_mult_q7.c",
           "Source/BasicMathFunctions/arm_dot_prod_q15.c")
SHIM_DIR = Path(__file__).parent / "cmsis_shim"
MAIN = SHIM_DIR / "kernels_vs_cmsis_main.c"
#: kiloml's rescaling shifts (int16 weights: Q15 like CMSIS's q15; int8 weights: Q7).
SHIFT16, SHIFT8 = 15, 7
#: Values of the random int16 weights and x: |w|, |x| <= 4096, so rows sum within int32 as
#: in a calibrated model (kiloml's int64 fallback for larger sums is not what is measured).
INT16_RANGE = 4096

#: name -> (rows, cols): the matrices of the smartwatch default (FastGRNN h32, 6 features,
#: U of rank 8, 7 classes) and of the speech h64 model (32 features, U of rank 16, 12
#: classes), and two squares.
SHAPES = {
    "smartwatch W": (32, 6), "smartwatch U1": (8, 32), "smartwatch U2": (32, 8),
    "smartwatch head": (7, 32),
    "speech W": (64, 32), "speech U1": (16, 64), "speech U2": (64, 16), "speech head": (12, 64),
    "square 64": (64, 64), "square 128": (128, 128),
}
QUICK_SHAPES = ("smartwatch U2", "square 64")
#: Exit status when the sdist cannot be fetched (no network, no index).
FETCH_FAILED = 3
#: Output tags of the C program, in the order it measures.
KERNELS = {"a": "kiloml int16", "b": "CMSIS q15", "c": "CMSIS dot_prod q15 per row",
           "d": "kiloml int8", "e": "CMSIS q7"}


def default_cache() -> Path:
    root = os.environ.get("KILOML_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "kiloml") / SDIST


def fetch_cmsis(cache: Path) -> Path:
    """The unpacked CMSIS-DSP sdist in ``cache`` (downloaded once); exits with a one-line
    message and status :data:`FETCH_FAILED` when it cannot be fetched."""
    if (cache / SOURCES[0]).exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--no-binary", ":all:", "--no-build-isolation", PACKAGE,
                               "-d", folder], capture_output=True, text=True)
        archives = list(Path(folder).glob(f"{SDIST}.tar.gz"))
        if done.returncode != 0 or not archives:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:]
            print(f"cannot fetch the {PACKAGE} sdist: {' '.join(last)}", file=sys.stderr)
            sys.exit(FETCH_FAILED)
        with tarfile.open(archives[0]) as archive:
            members = [m for m in archive.getmembers()
                       if m.name.startswith((f"{SDIST}/Include/", f"{SDIST}/PrivateInclude/",
                                             f"{SDIST}/LICENSE"))
                       or m.name in {f"{SDIST}/{s}" for s in SOURCES}]
            archive.extractall(Path(folder) / "x", members=members, filter="data")
        (Path(folder) / "x" / SDIST).rename(cache)
    return cache


def c_array(ctype: str, name: str, values: np.ndarray) -> str:
    body = ", ".join(str(int(v)) for v in values.reshape(-1))
    return f"static const {ctype} {name}[{values.size}] = {{ {body} }};\n"


def make_data(shapes: dict[str, tuple[int, int]], seed: int = 0) -> tuple[str, dict]:
    """The C header of the matrices and vectors, and the same as numpy arrays."""
    rng = np.random.default_rng(seed)
    cols_max = max(c for _, c in shapes.values())
    rows_max = max(r for r, _ in shapes.values())
    x16 = rng.integers(-INT16_RANGE, INT16_RANGE + 1, cols_max)
    x8 = rng.integers(-128, 128, cols_max)
    text = ["#ifndef KERNELS_VS_CMSIS_DATA_H\n#define KERNELS_VS_CMSIS_DATA_H\n",
            f"#define BENCH_SHAPES {len(shapes)}\n#define BENCH_MAX_ROWS {rows_max}\n",
            "typedef struct {\n    arm_matrix_instance_q15 q15;\n"
            "    arm_matrix_instance_q7 q7;\n    const kl_matrix_t *kiloml16;\n"
            "    const kl_matrix_t *kiloml8;\n} bench_shape_t;\n",
            c_array("q15_t", "bench_x16", x16), c_array("q7_t", "bench_x8", x8)]
    arrays, entries = {"x16": x16, "x8": x8, "shapes": []}, []
    for i, (rows, cols) in enumerate(shapes.values()):
        w16 = rng.integers(-INT16_RANGE, INT16_RANGE + 1, (rows, cols))
        w8 = rng.integers(-128, 128, (rows, cols))
        text.append(c_array("q15_t", f"s{i}_w16", w16) + c_array("q7_t", f"s{i}_w8", w8))
        text.append(emit_matrix(f"s{i}_k16", QTensor(w16, 0, 16), SHIFT16).text)
        text.append(emit_matrix(f"s{i}_k8", QTensor(w8, 0, 8), SHIFT8).text)
        entries.append(f"    {{ {{ {rows}, {cols}, (q15_t *)s{i}_w16 }}, "
                       f"{{ {rows}, {cols}, (q7_t *)s{i}_w8 }}, &s{i}_k16, &s{i}_k8 }}")
        arrays["shapes"].append((w16, w8))
    text.append("static const bench_shape_t bench_shapes[BENCH_SHAPES] = {\n"
                + ",\n".join(entries) + "\n};\n#endif\n")
    return "".join(text), arrays


def expected(tag: str, w16: np.ndarray, w8: np.ndarray, x16: np.ndarray, x8: np.ndarray
             ) -> np.ndarray:
    """What each kernel must print (CMSIS: truncating shifts, as its sources do)."""
    cols = w16.shape[1]
    if tag == "a":
        return saturate(matvec(x16[None, :cols], w16, SHIFT16), 16)[0]
    if tag == "b":
        return saturate((w16 @ x16[:cols]) >> 15, 16)
    if tag == "c":
        return (w16 @ x16[:cols]) >> 15
    if tag == "d":
        return saturate(shift_round(w8 @ x16[:cols], SHIFT8), 16)
    return saturate((w8 @ x8[:cols]) >> 7, 8)


def measure(target: str, shapes: dict[str, tuple[int, int]], cmsis: Path, folder: Path
            ) -> dict[str, dict[str, int]]:
    """Instructions of every kernel on every shape on ``target`` ({shape: {kernel: n}})."""
    header, arrays = make_data(shapes)
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "kernels_vs_cmsis_data.h").write_text(header)
    kiloml = [library_dir() / "kl_matvec.c"]
    includes = [SHIM_DIR, data_dir, library_dir(), cmsis / "Include", cmsis / "PrivateInclude"]
    build = Build(TARGETS[target], [], includes, folder / target)
    build.build_dir.mkdir(parents=True, exist_ok=True)
    build.objects = [build.compile_one(source) for source in kiloml]
    third_party = ("-std=gnu99", "-w", "-Wno-error", "-DARM_MATH_LOOPUNROLL")
    build.objects += [build.compile_one(cmsis / source, third_party) for source in SOURCES]
    output = run_records(build, MAIN, [b"\0\0\0\0"], count_from="kl_bench_start")
    if output.instructions is None:
        raise SystemExit(f"{target}: instruction counting unavailable: {output.note}")
    tags = list(KERNELS)
    per_shape = len(tags) + 1
    if len(output.instructions) != per_shape * len(shapes):
        raise SystemExit(f"{target}: {len(output.instructions)} counted calls, expected "
                         f"{per_shape * len(shapes)}")
    printed = {(line[0], int(line.split()[1])): np.array(line.split()[2:], dtype=np.int64)
               for line in output.lines if line[:1] in KERNELS}
    results = {}
    for i, name in enumerate(shapes):
        counts = output.instructions[i * per_shape:(i + 1) * per_shape]
        empty = counts[0]
        w16, w8 = arrays["shapes"][i]
        for tag in tags:
            want = expected(tag, w16, w8, arrays["x16"], arrays["x8"])
            if not np.array_equal(printed[(tag, i)], want):
                raise SystemExit(f"{target}, {name}: {KERNELS[tag]} computed other values")
        results[name] = {KERNELS[tag]: count - empty
                         for tag, count in zip(tags, counts[1:], strict=True)}
    return results


def markdown(results: dict[str, dict[str, dict[str, int]]], shapes: dict) -> str:
    lines = ["| target | matrix | rows × cols | kiloml int16 | CMSIS q15 | ratio | "
             "CMSIS dot_prod_q15 per row | kiloml int8 | CMSIS q7 | ratio |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for target, per_shape in results.items():
        for name, r in per_shape.items():
            rows, cols = shapes[name]
            lines.append(
                f"| {target} | {name} | {rows} × {cols} | {r['kiloml int16']:,} | "
                f"{r['CMSIS q15']:,} | {r['kiloml int16'] / r['CMSIS q15']:.2f} | "
                f"{r['CMSIS dot_prod q15 per row']:,} | {r['kiloml int8']:,} | "
                f"{r['CMSIS q7']:,} | {r['kiloml int8'] / r['CMSIS q7']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"two shapes ({', '.join(QUICK_SHAPES)}) on the Cortex-M4 only")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where the CMSIS-DSP sources are kept (default "
                             "$KILOML_CACHE/cmsisdsp-1.10.3 or ~/.cache/kiloml/...)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    missing = sorted({tool for t in ("cortex-m4", "cortex-m3") for tool in TARGETS[t].missing()})
    if missing:
        raise SystemExit(f"needs {', '.join(missing)}")
    cmsis = fetch_cmsis(args.cache or default_cache())
    shapes = {k: SHAPES[k] for k in QUICK_SHAPES} if args.quick else SHAPES
    targets = ("cortex-m4",) if args.quick else ("cortex-m4", "cortex-m3")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for target in targets:
            results[target] = measure(target, shapes, cmsis, Path(folder))
    table = markdown(results, shapes)
    print(f"instructions per call, arm-none-eabi-gcc -O2, QEMU instruction counter; "
          f"ratio = kiloml / CMSIS-DSP ({PACKAGE})\n")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "package": PACKAGE,
                                         "shapes": {k: list(v) for k, v in shapes.items()},
                                         "instructions": results}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
