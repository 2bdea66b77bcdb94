"""``kl_matvec.c``: every kernel (dense int16, narrow and interleaved int8 at every width around
their 4- and 8-column boundaries, CSR int8/int16 with uint8/uint16 indices, blocked int8/int16
with empty rows, the row-by-row
kernel for int8 rows longer than 511 and for shifts outside 1..31) in every output mode
(int32, int32 accumulated, int16) equals the spec ``kiloml.ops.matrix.matvec``, with sums
saturating int32 and int16. The kernels are reached through a test op whose one node holds
all the matrices; the sweep's instrumented builds must reach every branch of ``kl_matvec.c``."""

import numpy as np
import pytest

from kiloml.ir.simulate import simulate
from kiloml.ops.base import OPS, Buffer, EmitContext, Emitted, Node, Op, Value, get_op
from kiloml.ops.constants import INT8_ROW_LIMIT, NARROW_COLS
from kiloml.ops.fixed import QTensor, saturate, shift_round
from kiloml.ops.matrix import (
    MATVEC_FILES,
    blocked_arrays,
    blocked_matvec,
    emit_matrix,
    kernel_name,
    matrix_storage,
    matvec,
)

from .kernel_coverage import branch_coverage, summary
from .op_harness import (
    BUILDS,
    SANITIZED,
    SWEEP_BUILDS,
    LibraryObjects,
    assert_c_equals_spec,
    extreme_inputs,
    single_op_graph,
)


class MatvecProbeOp(Op):
    """Test op over matrices ``A<i>``, ``B<i>`` (``[rows_i, cols_i]``, each reading the first
    ``cols_i`` entries of the int16 input): for each ``i`` the int32 output gets ``A x`` stored
    (``KL_OUT_S32``), ``B x`` accumulated onto ``A x`` (``KL_OUT_S32_ACCUMULATE``) and ``A x``
    saturated to int16 (``KL_OUT_S16``, widened)."""

    name = "matvec_probe"
    c_files = MATVEC_FILES

    @staticmethod
    def pairs(node: Node) -> list[tuple[str, str]]:
        return [(f"A{i}", f"B{i}") for i in range(len(node.q) // 2)]

    def infer(self, node, inputs):
        rows = sum(node.q[a].values.shape[0] for a, _ in self.pairs(node))
        return [Value(node.outputs[0], (3 * rows,), "int32")]

    def simulate(self, node, inputs, in_values, out_values):
        x, k, out = np.asarray(inputs[0], dtype=np.int64), node.consts, []
        for a, b in self.pairs(node):
            cols = node.q[a].values.shape[1]
            ax = matvec(x[:, :cols], node.q[a].values, k[a])
            bx = matvec(x[:, :cols], node.q[b].values, k[b])
            out += [ax, saturate(ax + bx, 32), saturate(ax, 16)]
        return [np.concatenate(out, axis=1)]

    def buffers(self, node, inputs, outputs):
        return [Buffer("y16", "int16", max(node.q[a].values.shape[0]
                                           for a, _ in self.pairs(node)))]

    def flash_bytes(self, node):
        return sum(matrix_storage(tensor)["bytes"] for tensor in node.q.values())

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        texts, calls, offset, y16 = [], [], 0, c.buffer("y16")
        for a, b in self.pairs(node):
            for name in (a, b):
                texts.append(emit_matrix(c.symbol(name), node.q[name], node.consts[name]).text)
            rows = node.q[a].values.shape[0]
            a, b = f"&{c.symbol(a)}", f"&{c.symbol(b)}"
            calls.append(f"        kl_matvec_s16_s32({a}, x, 0, y + {offset});\n"
                         f"        kl_matvec_s16_s32({a}, x, 0, y + {offset + rows});\n"
                         f"        kl_matvec_s16_s32({b}, x, 1, y + {offset + rows});\n"
                         f"        kl_matvec_s16_s16({a}, x, {y16});\n"
                         f"        for (i = 0; i < {rows}; i++) {{\n"
                         f"            y[{offset + 2 * rows} + i] = ({y16})[i];\n"
                         f"        }}\n")
            offset += 3 * rows
        return Emitted("".join(texts), "    {\n        uint16_t i;\n" + "".join(calls) + "    }\n")


#: (bits, rows, cols, density, shift of A, shift of B): shifts 1..2 saturate the int32 sums,
#: 16..31 keep them in range, others take the row-by-row kernel.
ENTRIES = [
    # dense int16: odd and even rows and widths (two rows per pass, an odd last row; on M4
    # SMLALD over groups of eight and four columns, a pair, one left over); 5..8 columns take
    # the narrow kernel (x in registers on M4; its last rows take the loop)
    (16, 7, 6, 1, 2, 17), (16, 1, 5, 1, 17, 1), (16, 4, 13, 1, 1, 19), (16, 5, 14, 1, 19, 2),
    (16, 3, 1, 1, 1, 12), (16, 5, 2, 1, 16, 3), (16, 4, 3, 1, 1, 17), (16, 3, 4, 1, 17, 1),
    (16, 2, 5, 1, 18, 31), (16, 3, 7, 1, 2, 18), (16, 6, 8, 1, 18, 2), (16, 2, 17, 1, 20, 1),
    # narrow int8: 1..8 columns, fewer than eight weights in all (plain loop only) and more
    (8, 1, 1, 1, 1, 9), (8, 2, 3, 1, 9, 1), (8, 1, 7, 1, 1, 11), (8, 3, 3, 1, 10, 2),
    (8, 5, 4, 1, 2, 10), (8, 4, 5, 1, 11, 1), (8, 3, 6, 1, 1, 11), (8, 3, 7, 1, 31, 1),
    (8, 2, 8, 1, 1, 12), (8, 9, 6, 1, 11, 2), (8, 7, 2, 1, 9, 1),
    # interleaved int8: groups of four and the columns after them
    (8, 3, 9, 1, 1, 12), (8, 2, 11, 1, 12, 1), (8, 3, 12, 1, 2, 12), (8, 2, 13, 1, 12, 1),
    (8, 2, 16, 1, 1, 13), (8, 2, 17, 1, 13, 2), (8, 2, 100, 1, 14, 1),
    (8, 2, INT8_ROW_LIMIT, 1, 1, 17),
    # on M4 four rows per pass, then the last rows one at a time: 4 + 2 rows and a column after
    # the groups, 8 + 1 rows, and 4 + 1 rows of 511 columns (sums near the int32 limits)
    (8, 6, 13, 1, 1, 12), (8, 9, 16, 1, 12, 1), (8, 5, INT8_ROW_LIMIT, 1, 2, 17),
    # CSR: uint8 indices up to 256 columns, uint16 beyond
    (8, 6, 40, 0.2, 1, 12), (8, 4, 256, 0.1, 12, 1), (8, 4, 300, 0.1, 1, 14),
    (16, 6, 40, 0.2, 1, 18), (16, 4, 300, 0.1, 20, 1),
    # CSR int16 rows of 0..5 nonzeros (on M4: the odd first one, then pairs), uint8 and uint16
    (16, 9, 6, 0.4, 1, 17), (16, 7, 300, 0.01, 18, 1),
    # int8 rows longer than 511: the row-by-row kernel with 1 <= shift <= 31
    (8, 3, INT8_ROW_LIMIT + 9, 1, 1, 18), (8, 3, INT8_ROW_LIMIT + 9, 0.2, 2, 16),
    # shifts outside 1..31: every storage row by row
    (16, 3, 5, 1, 0, -3), (8, 3, 6, 1, -2, 32), (8, 2, 13, 1, 40, 0), (8, 4, 40, 0.2, 0, -1),
    (8, 4, 300, 0.1, 33, -4), (16, 4, 40, 0.2, -5, 45), (16, 4, 300, 0.1, 62, 0),
    (8, 3, INT8_ROW_LIMIT + 9, 1, -1, 35),
]
#: Blocked matrices (the same fields, ``density`` of the blocks of 4 nonzero; the last row
#: empty): int16 and int8 kernels, and shifts outside 1..31 (the kernels' own row-by-row loop,
#: ``kl_kernel_rows`` in reference builds).
BLOCKED_ENTRIES = [
    (16, 6, 16, 0.3, 1, 18), (16, 5, 40, 0.25, 17, 2), (8, 6, 16, 0.3, 1, 12),
    (8, 4, 40, 0.25, 12, 1), (16, 4, 16, 0.3, 0, -3), (8, 4, 16, 0.3, 40, 0),
]
KERNELS = {"kl_kernel_dense_s16", "kl_kernel_dense_s16_narrow", "kl_kernel_dense_s8_narrow",
           "kl_kernel_dense_s8_interleaved",
           "kl_kernel_csr_s8_u8", "kl_kernel_csr_s8_u16", "kl_kernel_csr_s16_u8",
           "kl_kernel_csr_s16_u16", "kl_kernel_rows", "kl_kernel_blocked_s8",
           "kl_kernel_blocked_s16"}
COLS = max(entry[2] for entry in ENTRIES + BLOCKED_ENTRIES)


def random_matrix(rng: np.random.Generator, bits: int, rows: int, cols: int, density: float
                  ) -> np.ndarray:
    """Random values over the whole ``bits``-bit range, ``density`` of them nonzero; row 0 holds
    the minimum and row 1 the maximum at its nonzero positions (sums that saturate)."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = rng.integers(low, high + 1, (rows, cols)) * (rng.random((rows, cols)) < density)
    for row, extreme in ((0, low), (1, high))[:rows]:
        values[row] = np.where(values[row] != 0, extreme, 0)
    return values


def random_blocked(rng: np.random.Generator, bits: int, rows: int, cols: int, density: float
                   ) -> np.ndarray:
    """:func:`random_matrix`'s values on ``density`` of the blocks of 4 columns, the last row
    empty."""
    values = random_matrix(rng, bits, rows, cols, 1)
    blocks = rng.random((rows, cols // 4)) < density
    blocks[-1] = False
    return values * np.repeat(blocks, 4, axis=1)


@pytest.fixture
def probe_graph(monkeypatch):
    monkeypatch.setitem(OPS, MatvecProbeOp.name, MatvecProbeOp())
    rng = np.random.default_rng(0)
    node = Node("probe", MatvecProbeOp.name, ["x"], ["y"])
    for i, (bits, rows, cols, density, shift_a, shift_b) in enumerate(ENTRIES + BLOCKED_ENTRIES):
        make = random_blocked if i >= len(ENTRIES) else random_matrix
        for name, shift in ((f"A{i}", shift_a), (f"B{i}", shift_b)):
            node.q[name] = QTensor(make(rng, bits, rows, cols, density), 0, bits)
            node.consts[name] = shift
    graph = single_op_graph(node, (COLS,))
    graph.values["y"].frac_bits = 0
    return graph


def test_entries_reach_every_kernel_and_shift_class(probe_graph):
    node = probe_graph.nodes[0]
    kernels = {emit_matrix("m", node.q[name], 1).kernel for name in node.q}
    assert kernels == KERNELS
    for i, (bits, rows, cols, density, *_) in enumerate(ENTRIES):
        storage = matrix_storage(node.q[f"A{i}"])["format"]
        assert storage == ("csr" if density < 1 else "scalar" if cols == rows == 1 else "dense")
        index_bits = 8 if cols <= 256 else 16
        assert emit_matrix("m", node.q[f"A{i}"], 1).kernel == kernel_name(storage, bits, cols,
                                                                          index_bits)
    for i in range(len(ENTRIES), len(ENTRIES) + len(BLOCKED_ENTRIES)):
        assert matrix_storage(node.q[f"A{i}"])["format"] == "blocked"
        assert not node.q[f"A{i}"].values[-1].any()
    shifts = [node.consts[name] for name in node.q]
    assert min(shifts) < 0 and 0 in shifts and 31 in shifts and max(shifts) > 32


def test_c_equals_spec_for_every_kernel_and_reaches_every_branch(probe_graph, tmp_path,
                                                                 require_gcc):
    library = LibraryObjects(tmp_path / "library")
    assert_c_equals_spec(probe_graph, extreme_inputs((COLS,), 12, 1), tmp_path,
                         SWEEP_BUILDS + SANITIZED, library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_matvec.c"].untaken(), summary(files, ("kl_matvec.c",))


def test_c_equals_spec_in_every_build(probe_graph, tmp_path, require_gcc, require_cortex_m):
    assert_c_equals_spec(probe_graph, extreme_inputs((COLS,), 4, 2), tmp_path, BUILDS)


def test_inputs_saturate_every_output_mode(probe_graph):
    y = simulate(probe_graph, extreme_inputs((COLS,), 12, 1))
    assert {np.iinfo(np.int32).min, np.iinfo(np.int32).max} <= set(y.reshape(-1).tolist())
    assert {-32768, 32767} <= set(y.reshape(-1).tolist())


def test_spec_is_the_exact_sum_rescaled_and_saturated():
    x = np.array([[32767, -32768, 32767], [-32768, -32768, -32768]])
    w = np.array([[-32768, -32768, -32768], [1, 2, 3]])
    exact = [[sum(int(a) * int(b) for a, b in zip(row, xs, strict=True)) for row in w] for xs in x]
    for shift in (-3, 0, 1, 15, 31, 40):
        assert matvec(x, w, shift).tolist() == saturate(shift_round(np.array(exact), shift),
                                                        32).tolist()
    assert matvec(x, w, 0)[1, 0] == 2**31 - 1


@pytest.mark.parametrize("bits,cols,storage,index_bits,kernel", [
    (8, NARROW_COLS, "dense", 0, "kl_kernel_dense_s8_narrow"),
    (8, NARROW_COLS + 1, "dense", 0, "kl_kernel_dense_s8_interleaved"),
    (8, INT8_ROW_LIMIT, "dense", 0, "kl_kernel_dense_s8_interleaved"),
    (8, INT8_ROW_LIMIT + 1, "dense", 0, "kl_kernel_rows"),
    (8, INT8_ROW_LIMIT + 1, "csr", 16, "kl_kernel_rows"),
    (8, 256, "csr", 8, "kl_kernel_csr_s8_u8"),
    (16, 257, "csr", 16, "kl_kernel_csr_s16_u16"),
    (16, 3, "dense", 0, "kl_kernel_dense_s16"),
    (16, 4, "dense", 0, "kl_kernel_dense_s16"),
    (16, 5, "dense", 0, "kl_kernel_dense_s16_narrow"),
    (16, NARROW_COLS, "dense", 0, "kl_kernel_dense_s16_narrow"),
    (16, NARROW_COLS + 1, "dense", 0, "kl_kernel_dense_s16"),
    (16, 2000, "dense", 0, "kl_kernel_dense_s16"),
])
def test_kernel_choice_at_the_boundaries(bits, cols, storage, index_bits, kernel):
    assert kernel_name(storage, bits, cols, index_bits) == kernel


def test_blocked_arrays_by_hand():
    w = np.array([[0, 0, 0, 0, 1, 2, 3, 4],
                  [0, 0, 0, 0, 0, 0, 0, 0],
                  [5, 0, 0, 6, 0, 0, 7, 0]])
    weights, index, row_ptr = blocked_arrays(w, 16)
    assert weights.tolist() == [[1, 2, 3, 4], [5, 0, 0, 6], [0, 0, 7, 0]]
    assert index.tolist() == [1, 0, 1] and row_ptr.tolist() == [0, 1, 1, 3]
    assert blocked_arrays(w, 8)[0].tolist() == [[1, 3, 2, 4], [5, 0, 0, 6], [0, 7, 0, 0]]
    x = np.array([[1, 10, 100, 1000, -1, -2, -3, -4]])
    assert blocked_matvec(x, weights, index, row_ptr, 16, 0).tolist() == [[-30, 0, 5 + 6000 - 21]]


@pytest.mark.parametrize("bits", [8, 16])
def test_blocked_spec_is_the_dense_product(bits):
    rng = np.random.default_rng(bits)
    w = random_blocked(rng, bits, 9, 24, 0.4)
    x = rng.integers(-32768, 32768, (5, 24))
    for shift in (0, 3, 20):
        assert np.array_equal(blocked_matvec(x, *blocked_arrays(w, bits), bits, shift),
                              matvec(x, w, shift))


def test_rows_read_one_at_a_time_are_never_blocked():
    rng = np.random.default_rng(3)
    block_sparse = QTensor(random_blocked(rng, 8, 4, 16, 0.3), 0, 8)
    assert matrix_storage(block_sparse)["format"] == "blocked"
    assert matrix_storage(block_sparse, blocked=False)["format"] == "csr"
    assert emit_matrix("m", block_sparse, 3, blocked=False).kernel == "kl_kernel_csr_s8_u8"
    node = Node("p", "projection", ["x"], ["y"])
    node.q = {"weight": block_sparse, "bias": QTensor(np.zeros(4, dtype=np.int64), 0, 16)}
    assert get_op("projection").storage(node)["weight"]["format"] == "csr"
    assert get_op("fully_connected").storage(node)["weight"]["format"] == "blocked"
    # int8 rows past 511 entries (read row by row) are not blocked either
    long_rows = QTensor(random_blocked(rng, 8, 3, INT8_ROW_LIMIT + 9, 0.2), 0, 8)
    assert matrix_storage(long_rows)["format"] == "csr"
    assert matrix_storage(QTensor(long_rows.values, 0, 16))["format"] == "blocked"
