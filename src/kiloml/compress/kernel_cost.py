"""Predicted Cortex-M4 instructions of one matrix-vector product, per storage format and weight
width: ``per_call + per_row * rows + per_weight * stored``, where ``stored`` is the weights the
kernel reads (dense: ``rows * cols``; CSR: the nonzeros; blocked: 4 per stored block), plus for
CSR and blocked matrices ``per_empty_row * empty_rows`` (rows without a stored weight, which
their kernels pass through faster: an int8 CSR row costs 28 instructions, an empty one 16).

The constants are least-squares fits to instruction counts of ``kl_matvec.c``'s kernels under
QEMU (``mps2-an386``), measured with

    python benchmarks/kernel_costs.py

which prints this table (one call of ``kl_matvec_s16_s32`` per matrix, 234 matrices of the
shapes of kiloml's models and squares up to 128 x 128, at several densities, the lowest with
empty rows). The fit's median relative error is 0.0 %, 97 % of the matrices are within 5 %, the
largest error 32 % (dense int16 matrices of 5 to 8 columns, one fit for the narrow kernel's
widths: 6 columns take fewer instructions than 5, 7 or 8). Dense matrices of 5 to 8 columns
(int8: at most 8) take the narrow kernels, which read 8 weights per row whatever the width:
their entry has a cost per row and none per weight.
"""

#: ``(format, bits) -> (per_call, per_row, per_weight[, per_empty_row])`` in instructions.
COSTS: dict[tuple[str, int], tuple[float, ...]] = {
    ("blocked", 8): (49.0, 29.0, 2.75, -14.0),
    ("blocked", 16): (55.0, 30.0, 2.75, -10.0),
    ("csr", 8): (39.0, 28.0, 6.0, -12.0),
    ("csr", 16): (49.64, 14.74, 4.5, 0.2),
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
                           stored: int, costs: dict | None = None,
                           empty_rows: int = 0) -> float:
    """Predicted instructions of one product of a ``[rows, cols]`` matrix stored as
    ``storage_format`` with ``bits``-bit weights, ``stored`` of them read, ``empty_rows`` of its
    rows without a stored weight (CSR and blocked; ``costs``: another table than
    :data:`COSTS`, as the calibration compares its fit)."""
    per_call, per_row, per_weight, *per_empty_row = (costs or COSTS)[
        cost_key(storage_format, bits, cols)]
    return (per_call + per_row * rows + per_weight * stored
            + (per_empty_row[0] * empty_rows if per_empty_row else 0.0))
