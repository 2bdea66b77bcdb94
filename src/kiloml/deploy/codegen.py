"""C source generation for a :class:`~kiloml.quantize.QuantizedModel`: ``model.h``, ``model.c``
(weights as ``const`` arrays plus the model descriptor) and ``test_vectors.h``.

The C code that runs lives in ``deploy/c/*.c``; the templates in ``deploy/c/templates`` get
their ``@NAME@`` placeholders filled in here. Every matrix is stored in the format
:func:`kiloml.compress.size.tensor_storage` picks (dense, or CSR when smaller), so the flash
bytes reported here equal the size accounting of :mod:`kiloml.compress.size`, except that
the normalisation vectors are always int16 (they live in the input's Q-format).
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from kiloml.compress.size import tensor_storage
from kiloml.quantize.activations import ACTIVATION_IDS
from kiloml.quantize.quantizer import QTensor, QuantizedModel

C_TYPES = {8: "int8_t", 16: "int16_t", 32: "int32_t"}
VALUES_PER_LINE = 12
#: Per-step elementwise multiplies of the state update (as kiloml.compress.size counts them).
ELEMENTWISE_MACS = {"fastgrnn": 3, "fastrnn": 2}


def library_dir() -> Path:
    """The directory holding kiloml's C sources (``kiloml_*.c/h``, templates, QEMU files)."""
    return Path(str(resources.files("kiloml.deploy") / "c"))


def fill_template(name: str, values: dict[str, object], folder: str = "templates") -> str:
    """The template ``deploy/c/<folder>/<name>`` with every ``@KEY@`` replaced."""
    text = (library_dir() / folder / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    if "@" in text:
        leftover = text[text.index("@"):].split("\n", 1)[0]
        raise ValueError(f"template {name}: unfilled placeholder near {leftover!r}")
    return text


def c_array(ctype: str, name: str, values: np.ndarray) -> str:
    """``static const <ctype> <name>[n] = {...};`` with a fixed number of values per line."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + VALUES_PER_LINE]) for i in range(0, len(flat), VALUES_PER_LINE)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"


@dataclass
class StoredMatrix:
    """C text and stored bytes of one matrix (values, indices, row pointers, shift byte)."""

    text: str
    bytes: int
    format: str
    nonzeros: int


#: Longest int8 row the int32-accumulating kernels take (kiloml_matvec.c, KL_INT8_ROW_LIMIT).
INT8_ROW_LIMIT = 511
#: Widest dense int8 matrix for kl_kernel_dense_s8_narrow (KL_NARROW_COLS).
NARROW_COLS = 8
#: The kernel of dense int8 matrices stored with ``interleave_columns``.
INTERLEAVED_KERNEL = "kl_kernel_dense_s8_interleaved"


def kernel_name(storage_format: str, bits: int, cols: int, index_bits: int) -> str:
    """The ``kl_kernel_*`` of ``kiloml_matvec.c`` for a matrix stored this way."""
    if bits == 8 and cols > INT8_ROW_LIMIT:
        return "kl_kernel_rows"
    if storage_format == "csr":
        return f"kl_kernel_csr_s{bits}_u{index_bits}"
    if bits == 8 and cols <= NARROW_COLS:
        return "kl_kernel_dense_s8_narrow"
    if bits == 8:
        return INTERLEAVED_KERNEL
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


def matrix_source(name: str, tensor: QTensor, shift: int) -> StoredMatrix:
    """Arrays and the ``kl_matrix_t kiloml_<name>`` for an integer matrix ``[rows, cols]``."""
    values = tensor.values
    rows, cols = values.shape
    value_bytes = tensor.bits // 8
    storage = tensor_storage(name, torch.from_numpy(values), value_bytes, scale_bytes=1)
    ctype = C_TYPES[tensor.bits]
    symbol = f"kiloml_{name}"
    fields = {"rows": rows, "cols": cols, "value_bits": tensor.bits, "shift": shift}
    if storage.format == "csr":
        index_bits = 8 if cols <= 256 else 16
        row_index, col_index = np.nonzero(values)
        row_ptr = np.concatenate([[0], np.cumsum(np.bincount(row_index, minlength=rows))])
        text = (c_array(ctype, f"{symbol}_values", values[row_index, col_index])
                + c_array(f"uint{index_bits}_t", f"{symbol}_col_index", col_index)
                + c_array("uint16_t", f"{symbol}_row_ptr", row_ptr))
        fields.update(values=f"{symbol}_values", col_index=f"{symbol}_col_index",
                      row_ptr=f"{symbol}_row_ptr", format="KL_MATRIX_CSR", index_bits=index_bits)
    else:
        interleaved = kernel_name("dense", tensor.bits, cols, 0) == INTERLEAVED_KERNEL
        text = c_array(ctype, f"{symbol}_values",
                       interleave_columns(values) if interleaved else values)
        fields.update(values=f"{symbol}_values", col_index="0", row_ptr="0", index_bits=0,
                      format="KL_MATRIX_DENSE_INTERLEAVED" if interleaved else "KL_MATRIX_DENSE")
    fields["kernel"] = kernel_name(storage.format, tensor.bits, cols, fields["index_bits"])
    members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
    text += f"static const kl_matrix_t {symbol} = {{\n{members},\n}};\n"
    return StoredMatrix(text, storage.bytes, storage.format, storage.nonzeros)


def _vector(name: str, tensor: QTensor, shift: int) -> tuple[str, str, int]:
    symbol = f"kiloml_{name}"
    text = c_array(C_TYPES[tensor.bits], symbol, tensor.values)
    initializer = f"{{ {symbol}, {tensor.bits}, {shift} }}"
    return text, initializer, tensor.values.size * tensor.bits // 8 + 1


def scratch_sizes(q: QuantizedModel) -> dict[str, int]:
    """Element counts of the ``kiloml_scratch_t`` arrays and its size in bytes."""
    sizes = {"preact": q.hidden_size, "sum": q.hidden_size if q.readout == "mean" else 1,
             "h": q.hidden_size, "xn": q.input_size,
             "low_rank": max(q.w_rank or 0, q.u_rank or 0, 1)}
    raw = 4 * (sizes["preact"] + sizes["sum"]) + 2 * (sizes["h"] + sizes["xn"] + sizes["low_rank"])
    sizes["bytes"] = (raw + 3) // 4 * 4
    return sizes


def macs_per_inference(q: QuantizedModel) -> int:
    """MACs of one inference, counted like :func:`kiloml.compress.size.macs_per_inference` from
    the stored (quantized) nonzeros: normalisation, every matrix, the state update, the mean
    readout and the head."""
    matrices = [n for n in ("W", "W1", "W2", "U", "U1", "U2") if n in q.tensors]
    per_step = q.input_size + sum(int(np.count_nonzero(q.tensors[n].values)) for n in matrices)
    per_step += ELEMENTWISE_MACS[q.kind] * q.hidden_size
    per_step += q.hidden_size if q.readout == "mean" else 0
    return q.steps * per_step + int(np.count_nonzero(q.tensors["head_weight"].values))


@dataclass
class GeneratedModel:
    """``model.h``/``model.c`` text and what they store."""

    header: str
    source: str
    weight_flash_bytes: int
    scratch_bytes: int
    storage: dict[str, dict]


def generate_model(q: QuantizedModel, description: str) -> GeneratedModel:
    """``model.h`` and ``model.c`` for ``q``."""
    shifts = q.shifts()
    parts: list[str] = []
    storage: dict[str, dict] = {}
    flash = 0
    for name, shift_bytes in (("input_mean", 0), ("input_inv_std", 1)):
        text, _, size = _vector(name, q.tensors[name], 0)
        parts.append(text)
        size = size - 1 + shift_bytes  # the mean is in the input's Q-format: no scale byte
        flash += size
        storage[name] = {"format": "dense", "bytes": size, "bits": 16}
    matrices = {}
    for name in ("W", "W1", "W2", "U", "U1", "U2", "head_weight"):
        if name in q.tensors:
            stored = matrix_source(name, q.tensors[name], shifts[name])
            parts.append(stored.text)
            flash += stored.bytes
            matrices[name] = f"&kiloml_{name}"
            storage[name] = {"format": stored.format, "bytes": stored.bytes, "bits": q.bits,
                             "nonzeros": stored.nonzeros}
    vectors = {}
    for name in ("bias_gate", "bias_update", "head_bias"):
        if name in q.tensors:
            text, initializer, size = _vector(name, q.tensors[name], shifts[name])
            parts.append(text)
            vectors[name] = initializer
            flash += size
            storage[name] = {"format": "dense", "bytes": size, "bits": q.bits}
    if q.kind == "fastgrnn":
        coef_a, coef_b = q.tensors["sigmoid_zeta"], q.tensors["sigmoid_nu"]
    else:
        coef_a, coef_b = q.tensors["sigmoid_alpha"], q.tensors["sigmoid_beta"]
    flash += coef_a.values.size * 2 + coef_b.values.size * 2
    low_rank_w = "W1" in matrices
    low_rank_u = "U1" in matrices
    sizes = scratch_sizes(q)
    common = {"HIDDEN_SIZE": q.hidden_size, "INPUT_SIZE": q.input_size}
    header = fill_template("model.h.in", {
        **common, "DESCRIPTION": description, "KIND": q.kind, "STEPS": q.steps,
        "FRAME_STACK": q.frame_stack,
        "NUM_CLASSES": q.num_classes, "WEIGHT_BITS": q.bits,
        "INPUT_FRAC_BITS": q.formats["input"], "LOGITS_FRAC_BITS": q.formats["logits"],
        "WEIGHT_FLASH_BYTES": flash, "SCRATCH_BYTES": sizes["bytes"],
        "MACS": macs_per_inference(q), "SUM_SIZE": sizes["sum"],
        "LOW_RANK_SIZE": sizes["low_rank"]})
    source = fill_template("model.c.in", {
        "ARRAYS": "\n".join(parts),
        "KIND_ID": 0 if q.kind == "fastgrnn" else 1,
        "GATE_ID": ACTIVATION_IDS.get(q.gate, 0),
        "UPDATE_ID": ACTIVATION_IDS[q.update],
        "READOUT_ID": 1 if q.readout == "mean" else 0,
        "NORMALIZE_SHIFT": shifts["normalize"],
        "W_FIRST": matrices["W1"] if low_rank_w else matrices["W"],
        "W_SECOND": matrices["W2"] if low_rank_w else "0",
        "U_FIRST": matrices["U1"] if low_rank_u else matrices["U"],
        "U_SECOND": matrices["U2"] if low_rank_u else "0",
        "BIAS_GATE": vectors.get("bias_gate", "{ 0, 16, 0 }"),
        "BIAS_UPDATE": vectors["bias_update"],
        "COEF_A": int(coef_a.values[0]),
        "COEF_B": int(coef_b.values[0]),
        "PREACT_FRAC_BITS": q.formats["preactivation"],
        "GATE_FRAC_BITS": q.formats["gate_out"],
        "STATE_ALIGN": -shifts["state_align"],
        "UPDATE_ALIGN": -shifts["update_align"],
        "STATE_SHIFT": shifts["state_update"],
        "INV_STEPS": q.inv_steps(),
        "HEAD_BIAS": vectors["head_bias"]})
    return GeneratedModel(header, source, flash, sizes["bytes"], storage)


def c_rows(values: np.ndarray) -> str:
    """Brace-enclosed initializer rows, one per leading index of ``values``."""
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row.reshape(-1)) + "}"
                      for row in values)


def generate_test_vectors(q: QuantizedModel, inputs: np.ndarray, labels: np.ndarray,
                          logits: np.ndarray) -> str:
    """``test_vectors.h``: int16 inputs ``[n, T, F]``, labels ``[n]`` and the simulator's int32
    logits ``[n, C]`` for the example program."""
    return fill_template("test_vectors.h.in", {
        "INPUT_FRAC_BITS": q.formats["input"], "COUNT": inputs.shape[0],
        "INPUTS": c_rows(inputs), "LOGITS": c_rows(logits),
        "LABELS": "    " + ", ".join(str(int(v)) for v in labels)})
