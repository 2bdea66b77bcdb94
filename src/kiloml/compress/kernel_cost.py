"""Predicted Cortex-M4 instructions of one matrix-vector product, per storage format and weight
width: ``per_call + per_row * rows + per_weight * stored``, where ``stored`` is the weights the
kernel reads (dense: ``rows * cols``; CSR: the nonzeros; blocked: 4 per stored block).

The constants are least-squares fits to instruction counts of ``kl_matvec.c``'s kernels under
QEMU (``mps2-an386``), measured with

    python benchmarks/kernel_costs.py

which prints this table (one call of ``kl_matvec_s16_s32`` per matrix, shapes and densities of
the models kiloml trains; the fit's largest relative error is printed with it). Dense matrices
of at most 8 columns take narrow kernels that the fit does not describe (they have no sparse
rival worth choosing).
"""

#: ``(format, bits) -> (per_call, per_row, per_weight)`` in instructions.
COSTS: dict[tuple[str, int], tuple[float, float, float]] = {
    ("dense", 16): (30.0, 12.0, 0.7),
    ("dense", 8): (30.0, 12.0, 0.6),
    ("csr", 16): (30.0, 14.0, 5.0),
    ("csr", 8): (30.0, 10.0, 4.0),
    ("blocked", 16): (30.0, 14.0, 2.0),
    ("blocked", 8): (30.0, 10.0, 1.8),
}


def predicted_instructions(storage_format: str, bits: int, rows: int, cols: int,
                           stored: int) -> float:
    """Predicted instructions of one product of a ``[rows, cols]`` matrix stored as
    ``storage_format`` with ``bits``-bit weights, ``stored`` of them read."""
    per_call, per_row, per_weight = COSTS[(storage_format, bits)]
    return per_call + per_row * rows + per_weight * stored
