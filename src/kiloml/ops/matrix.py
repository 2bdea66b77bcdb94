"""Weight matrices and vectors as the ops store them: the storage choice, the kernel that reads
each matrix, the integer spec of a matrix-vector product, and their C (``kl_matvec.h``).

A matrix is stored dense, CSR or blocked sparse, the smallest or (``QTensor.storage ==
"speed"``) the fastest by the cost model (:func:`kiloml.compress.size.tensor_storage` decides,
so the exported bytes equal the size accounting); dense int8 matrices wider than
:data:`NARROW_COLS` columns keep each group of four columns as (c0, c2, c1, c3) for ``SXTB16``,
and so do the blocks of 4 of a blocked int8 matrix. Every format computes the same exact
integer sum, so :func:`matvec` (the dense product) is the spec of every kernel;
:func:`blocked_matvec` computes it from the blocked arrays as the blocked kernels read them.
Dense int16 matrices of 5 to :data:`NARROW_COLS` columns name the narrow int16 kernel.
Every tensor carries a one-byte power-of-two scale (its shift) in the bytes counted.
"""

from dataclasses import dataclass

import numpy as np
import torch

from kiloml.compress.size import STORAGE_RULES as STORAGE_RULES  # re-exported for deploy
from kiloml.compress.size import tensor_storage
from kiloml.ops.constants import BLOCK_WIDTH, INT8_ROW_LIMIT, NARROW_COLS
from kiloml.ops.fixed import QTensor, saturate, shift_round

C_WEIGHT_TYPES = {8: "int8_t", 16: "int16_t", 32: "int32_t"}
VALUES_PER_LINE = 12
INTERLEAVED_KERNEL = "kl_kernel_dense_s8_interleaved"
MATVEC_FILES = ("kl_matvec.h", "kl_matvec.c")
#: Narrowest dense int16 matrix of the narrow int16 kernel (it reads KL_NARROW_COLS weights per
#: row: below 5 columns the general kernel wastes less).
NARROW_S16_MIN_COLS = 5


def matvec(x: np.ndarray, weight: np.ndarray, shift: int) -> np.ndarray:
    """``sat32(shift_round(x @ weight.T, shift))`` for int64 ``x`` ``[N, cols]`` → ``[N, rows]``
    (the spec of ``kl_matvec_s16_s32``; ``kl_matvec_s16_s16`` saturates this to int16)."""
    return saturate(shift_round(np.asarray(x, dtype=np.int64) @ weight.T, shift), 32)


def c_array(ctype: str, name: str, values: np.ndarray, qualifier: str = " KL_CONST") -> str:
    """``static const <ctype> <name>[n] KL_CONST = {...};`` with a fixed number of values per
    line (``KL_CONST``, ``kl_flash.h``: in program memory on AVR; ``qualifier=""`` for arrays
    whose code reads them with plain loads)."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + VALUES_PER_LINE]) for i in range(0, len(flat), VALUES_PER_LINE)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(flat)}]{qualifier} = {{\n    {body}\n}};\n"


def kernel_name(storage_format: str, bits: int, cols: int, index_bits: int) -> str:
    """The ``kl_kernel_*`` of ``kl_matvec.c`` for a matrix stored this way."""
    if bits == 8 and cols > INT8_ROW_LIMIT:
        return "kl_kernel_rows"
    if storage_format == "csr":
        return f"kl_kernel_csr_s{bits}_u{index_bits}"
    if storage_format == "blocked":
        return f"kl_kernel_blocked_s{bits}"
    if bits == 8 and cols <= NARROW_COLS:
        return "kl_kernel_dense_s8_narrow"
    if bits == 8:
        return INTERLEAVED_KERNEL
    if NARROW_S16_MIN_COLS <= cols <= NARROW_COLS:
        return "kl_kernel_dense_s16_narrow"
    return "kl_kernel_dense_s16"


def interleave_columns(values: np.ndarray) -> np.ndarray:
    """``[rows, cols]`` with each full group of four columns stored as (c0, c2, c1, c3)
    (``KL_MATRIX_DENSE_INTERLEAVED``); the columns after the last full group keep their order."""
    rows, cols = values.shape
    grouped = cols - cols % 4
    out = values.copy()
    out[:, :grouped] = values[:, :grouped].reshape(rows, -1, 4)[:, :, [0, 2, 1, 3]].reshape(
        rows, grouped)
    return out


def blocked_arrays(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights [blocks, 4], block index [blocks], row pointers [rows + 1])`` of a matrix
    ``[rows, cols]`` (``cols`` a multiple of 4) stored blocked: every block of 4 columns of a
    row holding a nonzero, row by row; the block index is its first column / 4, the row
    pointers count blocks. int8 blocks are stored (c0, c2, c1, c3) for ``SXTB16``."""
    rows, cols = values.shape
    blocks = values.reshape(rows, cols // BLOCK_WIDTH, BLOCK_WIDTH)
    row_index, block_index = np.nonzero((blocks != 0).any(-1))
    weights = blocks[row_index, block_index]
    if bits == 8:
        weights = weights[:, [0, 2, 1, 3]]
    row_ptr = np.concatenate([[0], np.cumsum(np.bincount(row_index, minlength=rows))])
    return weights, block_index, row_ptr


def blocked_matvec(x: np.ndarray, weights: np.ndarray, block_index: np.ndarray,
                   row_ptr: np.ndarray, bits: int, shift: int) -> np.ndarray:
    """:func:`matvec` from the blocked arrays (:func:`blocked_arrays`) for int64 ``x``
    ``[N, cols]``: each row sums its blocks' four products with ``x[4 * index + j]``."""
    x = np.asarray(x, dtype=np.int64)
    order = [0, 2, 1, 3] if bits == 8 else [0, 1, 2, 3]
    columns = BLOCK_WIDTH * block_index[:, None] + np.array(order)[None, :]  # [blocks, 4]
    products = (x[:, columns] * weights[None]).sum(-1)  # [N, blocks]
    rows = len(row_ptr) - 1
    sums = np.zeros((x.shape[0], rows), dtype=np.int64)
    for r in range(rows):
        sums[:, r] = products[:, row_ptr[r]:row_ptr[r + 1]].sum(-1)
    return saturate(shift_round(sums, shift), 32)


@dataclass
class StoredMatrix:
    """C text and stored bytes of one matrix (values, indices, row pointers, shift byte)."""

    text: str
    bytes: int
    format: str
    nonzeros: int
    kernel: str


def matrix_storage(tensor: QTensor, blocked: bool = True) -> dict:
    """``format``, ``bytes``, ``bits`` and ``nonzeros`` of a stored integer matrix, the
    ``kernel`` of ``kl_matvec.c`` that reads it, the rule that chose the format (``storage``)
    and the Cortex-M4 instructions the cost model predicts for one product
    (``predicted_instructions``): what ``export.json`` reports per matrix. ``blocked=False``:
    a matrix whose op reads single rows (``kl_matrix_row_dot``), never stored blocked."""
    storage = tensor_storage("", torch.from_numpy(tensor.values), tensor.bits // 8,
                             scale_bytes=1, by=tensor.storage, blocked=blocked)
    cols = tensor.values.shape[1]
    kernel = kernel_name(storage.format, tensor.bits, cols, 8 if cols <= 256 else 16)
    return {"format": storage.format, "bytes": storage.bytes, "bits": tensor.bits,
            "nonzeros": storage.nonzeros, "kernel": kernel, "storage": tensor.storage,
            "predicted_instructions": storage.predicted_instructions}


def emit_matrix(symbol: str, tensor: QTensor, shift: int, blocked: bool = True
                ) -> StoredMatrix:
    """Arrays and the ``static const kl_matrix_t <symbol>`` of an integer matrix
    ``[rows, cols]`` whose row sums are rescaled by ``shift`` (``blocked``: as
    :func:`matrix_storage`)."""
    values = tensor.values
    rows, cols = values.shape
    storage = matrix_storage(tensor, blocked)
    ctype = C_WEIGHT_TYPES[tensor.bits]
    fields = {"rows": rows, "cols": cols, "value_bits": tensor.bits, "shift": shift}
    if storage["format"] == "csr":
        index_bits = 8 if cols <= 256 else 16
        row_index, col_index = np.nonzero(values)
        row_ptr = np.concatenate([[0], np.cumsum(np.bincount(row_index, minlength=rows))])
        text = (c_array(ctype, f"{symbol}_values", values[row_index, col_index])
                + c_array(f"uint{index_bits}_t", f"{symbol}_col_index", col_index)
                + c_array("uint16_t", f"{symbol}_row_ptr", row_ptr))
        fields.update(values=f"{symbol}_values", col_index=f"{symbol}_col_index",
                      row_ptr=f"{symbol}_row_ptr", format="KL_MATRIX_CSR", index_bits=index_bits)
    elif storage["format"] == "blocked":
        weights, block_index, row_ptr = blocked_arrays(values, tensor.bits)
        text = (c_array(ctype, f"{symbol}_values", weights)
                + c_array("uint8_t", f"{symbol}_col_index", block_index)
                + c_array("uint16_t", f"{symbol}_row_ptr", row_ptr))
        fields.update(values=f"{symbol}_values", col_index=f"{symbol}_col_index",
                      row_ptr=f"{symbol}_row_ptr", format="KL_MATRIX_BLOCKED", index_bits=8)
    else:
        interleaved = kernel_name("dense", tensor.bits, cols, 0) == INTERLEAVED_KERNEL
        text = c_array(ctype, f"{symbol}_values",
                       interleave_columns(values) if interleaved else values)
        fields.update(values=f"{symbol}_values", col_index="0", row_ptr="0", index_bits=0,
                      format="KL_MATRIX_DENSE_INTERLEAVED" if interleaved else "KL_MATRIX_DENSE")
    fields["kernel"] = kernel_name(storage["format"], tensor.bits, cols, fields["index_bits"])
    members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
    text += f"static const kl_matrix_t {symbol} KL_CONST = {{\n{members},\n}};\n"
    return StoredMatrix(text, storage["bytes"], storage["format"], storage["nonzeros"],
                        fields["kernel"])


def vector_bytes(tensor: QTensor) -> int:
    """Stored bytes of a vector with its scale byte."""
    return tensor.nbytes + 1


def emit_vector(symbol: str, tensor: QTensor, shift: int,
                fold_shift: bool = False) -> tuple[str, str]:
    """``(array text, kl_vector_t initializer)`` of an int8/int16 vector read with ``shift``.

    ``fold_shift``: a right shift (``shift > 0``) is applied at export, ``shift_round(v, shift)``
    stored with shift 0 (the same integers read, no rescaling in C; the values only shrink)."""
    values = tensor.values
    if fold_shift and shift > 0:
        values, shift = shift_round(np.asarray(values, dtype=np.int64), shift), 0
    text = c_array(C_WEIGHT_TYPES[tensor.bits], symbol, values)
    return text, f"{{ {symbol}, {tensor.bits}, {shift} }}"
