"""Calibration of the storage cost model (``kiloml.compress.kernel_cost``): instructions of one
``kl_matvec_s16_s32`` call on emulated Cortex-M4 for matrices stored dense, CSR and blocked,
int16 and int8, at the shapes of kiloml's models and several densities; a least-squares fit of
``per_call + per_row * rows + per_weight * stored`` per format and width (CSR and blocked:
``+ per_empty_row * empty_rows``, the rows without a stored weight, which cost their kernels
less than the others: a matrix of few nonzeros has many).

    python benchmarks/kernel_costs.py [--quick] [--target cortex-m4] [--json FILE]

prints the measured counts, the fitted ``COSTS`` table to paste into
``src/kiloml/compress/kernel_cost.py``, the fit's relative errors and those of the committed
table (``--quick``: two shapes, :data:`QUICK_SHAPES`, to check the committed table). ``stored`` is
the weights the kernel reads (dense: ``rows * cols``, CSR: nonzeros, blocked: 4 per block).
Matrices are seeded random (|w|, |x| <= 4096, so int16 row sums stay within int32 as in a
calibrated model); each is stored in the format the byte rule picks for it (dense: all
nonzero; CSR: scattered nonzeros; blocked: whole blocks of 4; a matrix the rule stores
otherwise is left out), and
every output is checked against ``kiloml.ops.matrix.matvec``. Dense matrices of at most 8
columns (narrow kernels) are fitted apart as ``dense_narrow``. Needs ``arm-none-eabi-gcc`` and
``qemu-system-arm``.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kiloml.compress.kernel_cost import cost_key, predicted_instructions  # noqa: E402
from kiloml.deploy.codegen import library_dir  # noqa: E402
from kiloml.deploy.targets import TARGETS, Build, run_records  # noqa: E402
from kiloml.ops.fixed import QTensor  # noqa: E402
from kiloml.ops.matrix import emit_matrix, matrix_storage, matvec  # noqa: E402

PROGRAM_DIR = Path(__file__).parent / "kernel_costs"
MAIN = PROGRAM_DIR / "kernel_costs_main.c"
RANGE = 4096
SHIFT = 12
#: (rows, cols): the recurrent and head matrices of the smartwatch default and the speech h64
#: model, and wider squares.
SHAPES = [(8, 32), (32, 8), (7, 32), (16, 64), (64, 16), (64, 32), (12, 64), (32, 32),
          (64, 64), (128, 128), (32, 6), (64, 8), (16, 5), (32, 7), (16, 8)]
QUICK_SHAPES = [(16, 64), (32, 32)]
#: Densities of nonzeros (CSR) and of nonzero blocks of 4 (blocked); the lowest leave rows
#: empty.
CSR_DENSITIES = (0.03, 0.1, 0.25, 0.4)
BLOCK_DENSITIES = (0.1, 0.25, 0.5, 0.75)


def matrices(shapes: list[tuple[int, int]], seed: int = 0) -> list[tuple[str, np.ndarray, int]]:
    """``(expected format, values, bits)`` of every measured matrix (those the byte rule
    stores in another format left out)."""
    rng = np.random.default_rng(seed)
    out = []
    for bits in (16, 8):
        high = RANGE if bits == 16 else 127
        for rows, cols in shapes:
            full = rng.integers(1, high + 1, (rows, cols)) * rng.choice([-1, 1], (rows, cols))
            out.append(("dense", full, bits))
            for density in CSR_DENSITIES:
                out.append(("csr", full * (rng.random((rows, cols)) < density), bits))
            if cols % 4 == 0:
                for density in BLOCK_DENSITIES:
                    blocks = rng.random((rows, cols // 4)) < density
                    out.append(("blocked", full * np.repeat(blocks, 4, axis=1), bits))
    return [(fmt, values, bits) for fmt, values, bits in out
            if matrix_storage(QTensor(values, 0, bits))["format"] == fmt]


def measure(target: str, cases: list, folder: Path) -> list[int]:
    """Instructions of one call per case on ``target``, outputs checked against the spec."""
    rng = np.random.default_rng(1)
    cols_max = max(values.shape[1] for _, values, _ in cases)
    x = rng.integers(-RANGE, RANGE + 1, cols_max)
    text = [f"#define COST_MATRICES {len(cases)}\n",
            f"#define COST_MAX_ROWS {max(v.shape[0] for _, v, _ in cases)}\n",
            f"static const int16_t cost_x[{cols_max}] = {{ {', '.join(map(str, x))} }};\n"]
    for i, (expected, values, bits) in enumerate(cases):
        tensor = QTensor(values, 0, bits)
        stored = matrix_storage(tensor)["format"]
        if stored != expected:
            raise SystemExit(f"matrix {i}: stored {stored}, meant to measure {expected}")
        text.append(emit_matrix(f"m{i}", tensor, SHIFT).text)
    text.append(f"static const kl_matrix_t *const cost_matrices[{len(cases)}] = {{ "
                + ", ".join(f"&m{i}" for i in range(len(cases))) + " };\n")
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "kernel_costs_data.h").write_text("".join(text))
    build = Build(TARGETS[target], [], [data_dir, library_dir()], folder / target)
    build.build_dir.mkdir(parents=True, exist_ok=True)
    build.objects = [build.compile_one(library_dir() / "kl_matvec.c")]
    output = run_records(build, MAIN, [b"\0\0\0\0"], count_from="kl_bench_start")
    if output.instructions is None or len(output.instructions) != len(cases) + 1:
        raise SystemExit(f"{target}: instruction counting unavailable or incomplete "
                         f"({output.note})")
    printed = {int(line.split()[1]): np.array(line.split()[2:], dtype=np.int64)
               for line in output.lines if line.startswith("r ")}
    for i, (_, values, _) in enumerate(cases):
        if not np.array_equal(printed[i], matvec(x[None, :values.shape[1]], values, SHIFT)[0]):
            raise SystemExit(f"{target}: matrix {i} computed other values than the spec")
    empty = output.instructions[0]
    return [count - empty for count in output.instructions[1:]]


def fit(cases: list, counts: list[int]) -> tuple[dict, float]:
    """Least-squares ``(per_call, per_row, per_weight)`` per cost key (``per_weight`` 0 for the
    narrow kernels, which read 8 weights per row whatever the width; CSR and blocked also
    ``per_empty_row``), and the largest relative error of the fitted predictions."""
    groups: dict[tuple[str, int], list[tuple[int, int, int, int]]] = {}
    for (fmt, values, bits), count in zip(cases, counts, strict=True):
        rows, cols = values.shape
        key = cost_key(fmt, bits, cols)
        groups.setdefault(key, []).append((rows, storage_stored(fmt, values),
                                           empty_rows(fmt, values), count))
    costs, worst = {}, 0.0
    for key, measured in sorted(groups.items()):
        data = np.array(measured, dtype=np.float64)
        design = np.column_stack([np.ones(len(data)), data[:, 0], data[:, 1]])
        if key[0] == "dense_narrow":
            design[:, 2] = 0.0
        if key[0] in ("csr", "blocked"):
            design = np.column_stack([design, data[:, 2]])
        coef, *_ = np.linalg.lstsq(design, data[:, 3], rcond=None)
        costs[key] = tuple(round(float(c), 2) for c in coef)
        worst = max(worst, float(np.max(np.abs(design @ coef - data[:, 3]) / data[:, 3])))
    return costs, worst


def empty_rows(fmt: str, values: np.ndarray) -> int:
    """Rows without a stored weight (0 for dense matrices, which store every row)."""
    return 0 if fmt == "dense" else int(np.sum(~values.any(axis=1)))


def storage_stored(fmt: str, values: np.ndarray) -> int:
    """Weights the kernel of ``fmt`` reads."""
    if fmt == "dense":
        return values.size
    if fmt == "csr":
        return int(np.count_nonzero(values))
    rows, cols = values.shape
    return 4 * int((values.reshape(rows, cols // 4, 4) != 0).any(-1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_SHAPES}")
    parser.add_argument("--target", default="cortex-m4", choices=("cortex-m4", "cortex-m3"))
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args()
    missing = TARGETS[args.target].missing()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)}")
    cases = matrices(QUICK_SHAPES if args.quick else SHAPES)
    with tempfile.TemporaryDirectory() as folder:
        counts = measure(args.target, cases, Path(folder))
    costs, worst = fit(cases, counts)
    errors = [abs(predicted_instructions(f, b, *v.shape, storage_stored(f, v), costs,
                                         empty_rows(f, v)) - c) / c
              for (f, v, b), c in zip(cases, counts, strict=True)]
    committed = [abs(predicted_instructions(f, b, *v.shape, storage_stored(f, v),
                                            empty_rows=empty_rows(f, v)) - c) / c
                 for (f, v, b), c in zip(cases, counts, strict=True)]
    print(f"{len(cases)} matrices on {args.target}; instructions per call:")
    for (fmt, values, bits), count in zip(cases, counts, strict=True):
        print(f"  {fmt:8} int{bits:<2} {values.shape[0]:4} x {values.shape[1]:<4} "
              f"stored {storage_stored(fmt, values):6}  empty rows {empty_rows(fmt, values):4}"
              f"  {count:7,}")
    print("\nCOSTS = {")
    for (fmt, bits), coef in costs.items():
        print(f'    ("{fmt}", {bits}): {coef},')
    print("}")
    print(f"relative error of the fit: largest {100 * worst:.1f} %, median "
          f"{100 * float(np.median(errors)):.1f} %, {100 * np.mean(np.array(errors) < 0.1):.0f} % "
          f"of the matrices within 10 %, 90th percentile "
          f"{100 * float(np.percentile(errors, 90)):.1f} %")
    print(f"committed table (kiloml.compress.kernel_cost.COSTS): largest error "
          f"{100 * max(committed):.1f} %, median {100 * float(np.median(committed)):.1f} %")
    if args.json:
        args.json.write_text(json.dumps({
            "target": args.target,
            "measured": [{"format": f, "bits": b, "shape": list(v.shape),
                          "stored": storage_stored(f, v), "empty_rows": empty_rows(f, v),
                          "instructions": c}
                         for (f, v, b), c in zip(cases, counts, strict=True)],
            "costs": {f"{f}/{b}": list(c) for (f, b), c in costs.items()},
            "largest_relative_error": worst,
            "committed_relative_errors": committed}, indent=2) + "\n")


if __name__ == "__main__":
    main()
