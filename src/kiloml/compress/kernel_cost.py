"""Predicted Cortex-M4 instructions of one matrix-vector product, per storage format and weight
width: ``per_call + per_row * rows + per_weight * stored``, where ``stored`` is the weights the
kernel reads (dense: ``rows * cols``; CSR: the nonzeros; blocked: 4 per stored block).

The constants are least-squares fits to instruction counts of ``kl_matvec.c``'s kernels under
QEMU (``mps2-an386``), measured with

    python benchmarks/kernel_costs.py

which prints this table (one call of ``kl_matvec_s16_s32`` per matrix, 134 matrices of the
shapes of kiloml's models and squares up to 128 x 128, at several densities; the fit's largest
relative error is 23 % (sparse 32 x 8: rows of one or two entries), the median 0.6 %, 96 % of
the matrices within 10 %). Dense matrices of 5 to 8 columns (int8: at most 8) take the narrow
kernels and have their own entry.
"""

#: ``(format, bits) -> (per_call, per_row, per_weight)`` in instructions.
COSTS: dict[tuple[str, int], tuple[float, float, float]] = {
    ("blocked", 8): (31.95, 26.63, 2.77),
    ("blocked", 16): (44.86, 27.45, 2.76),
    ("csr", 8): (31.15, 24.58, 6.01),
    ("csr", 16): (31.38, 28.61, 6.01),
    ("dense", 8): (73.6, 20.39, 1.88),
    ("dense", 16): (83.45, 21.41, 1.56),
    ("dense_narrow", 8): (0.01, 0.45, 3.62),
    ("dense_narrow", 16): (0.02, 0.48, 3.87),
}


#: Widest dense matrix of the narrow kernels (``kiloml.ops.constants.NARROW_COLS``), and the
#: narrowest int16 one.
NARROW_COLS, NARROW_S16_MIN_COLS = 8, 5


def cost_key(storage_format: str, bits: int, cols: int) -> tuple[str, int]:
    """The :data:`COSTS` entry of a matrix: dense matrices of the narrow kernels apart."""
    if storage_format == "dense" and cols <= NARROW_COLS and (bits == 8 or
                                                             cols >= NARROW_S16_MIN_COLS):
        return "dense_narrow", bits
    return storage_format, bits


def predicted_instructions(storage_format: str, bits: int, rows: int, cols: int,
                           stored: int) -> float:
    """Predicted instructions of one product of a ``[rows, cols]`` matrix stored as
    ``storage_format`` with ``bits``-bit weights, ``stored`` of them read."""
    per_call, per_row, per_weight = COSTS[cost_key(storage_format, bits, cols)]
    return per_call + per_row * rows + per_weight * stored
