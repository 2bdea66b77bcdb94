"""Predicted Cortex-M4 instructions of one matrix-vector product, per storage format and weight
width: ``per_call + per_row * rows + per_weight * stored``, where ``stored`` is the weights the
kernel reads (dense: ``rows * cols``; CSR: the nonzeros; blocked: 4 per stored block).

The constants are least-squares fits to instruction counts of ``kl_matvec.c``'s kernels under
QEMU (``mps2-an386``), measured with

    python benchmarks/kernel_costs.py

which prints this table (one call of ``kl_matvec_s16_s32`` per matrix, 178 matrices of the
shapes of kiloml's models and squares up to 128 x 128, at several densities). The fit's median
relative error is 1.0 %, 92 % of the matrices are within 10 %, the largest error 33 % (a
blocked int8 matrix of 8 columns whose rows hold zero or one block, over-predicted). Dense
matrices of 5 to 8 columns (int8: at most 8) take the narrow kernels, which read 8 weights per
row whatever the width: their entry has a cost per row and none per weight.
"""

#: ``(format, bits) -> (per_call, per_row, per_weight)`` in instructions.
COSTS: dict[tuple[str, int], tuple[float, float, float]] = {
    ("blocked", 8): (37.1, 26.56, 2.79),
    ("blocked", 16): (47.59, 28.74, 2.77),
    ("csr", 8): (19.76, 27.03, 6.03),
    ("csr", 16): (50.48, 14.76, 4.5),
    ("dense", 8): (112.3, 15.4, 1.5),
    ("dense", 16): (83.45, 21.41, 1.56),
    ("dense_narrow", 8): (160.0, 26.78, 0.0),
    ("dense_narrow", 16): (260.67, 17.89, 0.0),
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
                           stored: int, costs: dict | None = None) -> float:
    """Predicted instructions of one product of a ``[rows, cols]`` matrix stored as
    ``storage_format`` with ``bits``-bit weights, ``stored`` of them read (``costs``: another
    table than :data:`COSTS`, as the calibration compares its fit)."""
    per_call, per_row, per_weight = (costs or COSTS)[cost_key(storage_format, bits, cols)]
    return per_call + per_row * rows + per_weight * stored
