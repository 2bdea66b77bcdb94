"""Bonsai's tree: the scores of the nodes on one input's path (``kl_tree_path.c``).

Input ``p`` int16 ``[d]`` in Q(p) (the projection); output ``y`` int32 ``[C]`` in Q(out).
Per node ``k``: ``W_k``, ``V_k`` int8/int16 ``[C, d]`` (``V_k`` with ``sigma`` folded in), each
its own matrix in any :mod:`kiloml.ops.matrix` storage with its own scale; ``theta`` int8/int16
``[internal, d]``. Starting at the root with ``y = 0``, for each of the ``depth + 1`` nodes on
the path:

* ``w = sat32(shift_round(W_k p, s_w,k))`` int32 in Q(w) (one Q(w) for all nodes);
* ``v = sat16(sat32(shift_round(V_k p, s_v,k)))`` int16 in Q(v), ``t = tanh(v)`` in Q15
  (:func:`kiloml.ops.activation.tanh_q15`, ``kl_tanh_s16_q15``);
* ``y = sat32(y + shift_round(w * t, s_y))`` with ``s_y = w + 15 - out`` (exact in int64);
* an internal node then goes left (``2k + 1``) when ``theta_k . p > 0`` (exact int64), else
  right (``2k + 2``).

Only the sign of ``theta_k . p`` matters, so every row of ``theta`` is stored scaled to the
full integer range on its own (:func:`branch_weights`; no shift in C). One scale for the whole
matrix rounded a node whose row was far smaller than the others' to zeros (ten-class MNIST,
a root row 250 times smaller): the deployed tree then sent every input right.

Q(w), Q(v) and Q(out) come from the calibrated ranges of every node's ``W_k p`` and
``V_k p`` and of the scores. Scratch: ``w`` (int32 ``[C]``) and ``v`` (int16 ``[C]``).
"""

import numpy as np

from kiloml.ops.activation import tanh_q15
from kiloml.ops.base import Buffer, EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.fixed import QTensor, activation_format, quantize_weight, saturate, shift_round
from kiloml.ops.matrix import MATVEC_FILES, emit_matrix, matrix_storage, matvec

TREE_FILES = ("kl_tree_path.h", "kl_tree_path.c", "kl_activation.h", "kl_activation.c",
              *MATVEC_FILES)


def branch_weights(theta: np.ndarray, bits: int) -> QTensor:
    """``theta`` ``[internal, d]`` as ``bits``-bit integers, each row divided by its largest
    magnitude and rounded to ``(2^(bits-1) - 1)`` times that (a zero row stays zero): the same
    signs of ``theta_k . p`` up to rounding, with every row's full precision. ``frac_bits`` 0:
    the rows have no common scale."""
    theta = np.asarray(theta, dtype=np.float64)
    peak = np.abs(theta).max(axis=1, keepdims=True)
    scaled = np.divide(theta, peak, out=np.zeros_like(theta), where=peak > 0)
    return QTensor(np.rint(scaled * ((1 << (bits - 1)) - 1)).astype(np.int64), 0, bits)


def hard_path(theta: np.ndarray, p: np.ndarray, depth: int) -> np.ndarray:
    """Node indices ``[N, depth + 1]`` of the paths of projected inputs ``p`` ``[N, d]``
    (float, or int64 for exact integer sums): left (``2k+1``) when ``theta_k . p > 0``, else
    right (``2k+2``)."""
    node = np.zeros(len(p), dtype=np.int64)
    path = [node]
    for _ in range(depth):
        z = np.einsum("nd,nd->n", theta[node], p)
        node = np.where(z > 0, 2 * node + 1, 2 * node + 2)
        path.append(node)
    return np.stack(path, axis=1)


def tree_path_spec(p: np.ndarray, w: list[np.ndarray], v: list[np.ndarray], theta: np.ndarray,
                   shifts_w: list[int], shifts_v: list[int], v_frac: int, shift_y: int,
                   depth: int) -> np.ndarray:
    """The module docstring's steps for int64 ``p`` ``[N, d]``: int32 scores ``[N, C]``."""
    p = np.asarray(p, dtype=np.int64)
    path = hard_path(np.asarray(theta, dtype=np.int64), p, depth)
    y = np.zeros((len(p), w[0].shape[0]), dtype=np.int64)
    for level in range(depth + 1):
        for k in np.unique(path[:, level]):
            rows = path[:, level] == k
            wk = matvec(p[rows], w[k], shifts_w[k])
            vk = saturate(matvec(p[rows], v[k], shifts_v[k]), 16)
            y[rows] = saturate(y[rows] + shift_round(wk * tanh_q15(vk, v_frac), shift_y), 32)
    return y


@register
class TreePathOp(Op):
    """``weights``: ``W``, ``V`` ``[nodes, C, d]``, ``theta`` ``[internal, d]``; ``attrs``:
    ``depth``."""

    name = "tree_path"
    c_files = TREE_FILES

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        nodes, classes, dims = node.weights["W"].shape
        if inputs[0].shape != (dims,):
            raise ValueError(f"{node.path}: expects {dims} inputs, got {inputs[0].shape}")
        if nodes != 2 ** (node.attrs["depth"] + 1) - 1:
            raise ValueError(f"{node.path}: {nodes} nodes for depth {node.attrs['depth']}")
        return [Value(node.outputs[0], (classes,), "int32")]

    def float_forward(self, node, inputs, record):
        p = np.asarray(inputs[0], dtype=np.float64)
        W, V, theta = node.weights["W"], node.weights["V"], node.weights["theta"]
        depth = node.attrs["depth"]
        w_all = np.einsum("kcd,nd->nkc", W, p)
        v_all = np.einsum("kcd,nd->nkc", V, p)
        record("w", w_all)
        record("v", v_all)
        path = hard_path(theta, p, depth)
        rows = np.arange(len(p))[:, None]
        return [(w_all[rows, path] * np.tanh(v_all[rows, path])).sum(1)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        nodes = self._nodes(node)
        pf = inputs[0].frac_bits
        w_frac = activation_format(ranges("w"), 32)
        v_frac = activation_format(ranges("v"))
        out_frac = activation_format(ranges(node.outputs[0]), 32)
        node.q = {}
        node.consts = {"w_frac": w_frac, "v_frac": v_frac, "shift_y": w_frac + 15 - out_frac}
        for k in range(nodes):
            for name, frac in (("W", w_frac), ("V", v_frac)):
                q = quantize_weight(node.weights[name][k], bits)
                node.q[f"{name}.{k}"] = q
                node.consts[f"shift_{name}.{k}"] = q.frac_bits + pf - frac
        if node.attrs["depth"]:
            node.q["theta"] = branch_weights(node.weights["theta"], bits)
        outputs[0].frac_bits = out_frac

    def _nodes(self, node) -> int:
        """Nodes of the tree (from ``depth``: a serialized graph keeps no float weights)."""
        return 2 ** (node.attrs["depth"] + 1) - 1

    def simulate(self, node, inputs, in_values, out_values):
        n, k, depth = self._nodes(node), node.consts, node.attrs["depth"]
        theta = node.q["theta"].values if depth else np.zeros((1, in_values[0].shape[0]))
        return [tree_path_spec(inputs[0], [node.q[f"W.{i}"].values for i in range(n)],
                               [node.q[f"V.{i}"].values for i in range(n)], theta,
                               [k[f"shift_W.{i}"] for i in range(n)],
                               [k[f"shift_V.{i}"] for i in range(n)], k["v_frac"],
                               k["shift_y"], depth)]

    def buffers(self, node, inputs, outputs):
        classes = outputs[0].shape[0]
        return [Buffer("w", "int32", classes), Buffer("v", "int16", classes)]

    def storage(self, node):
        # theta is read one row at a time (kl_matrix_row_dot): no matrix of the op is blocked
        return {name: matrix_storage(q, blocked=False) for name, q in node.q.items()}

    def macs(self, node, inputs, outputs):
        n, depth = self._nodes(node), node.attrs["depth"]
        classes = outputs[0].shape[0]
        per_node = max(int(np.count_nonzero(node.q[f"W.{i}"].values))
                       + int(np.count_nonzero(node.q[f"V.{i}"].values)) for i in range(n))
        theta = (max(int(np.count_nonzero(r)) for r in node.q["theta"].values) if depth
                 else 0)
        return (depth + 1) * (per_node + classes) + depth * theta

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        n, k, depth = self._nodes(node), node.consts, node.attrs["depth"]
        text = ""
        for name in ("W", "V"):
            for i in range(n):
                text += emit_matrix(c.symbol(f"{name}{i}"), node.q[f"{name}.{i}"],
                                    k[f"shift_{name}.{i}"], blocked=False).text
            members = ", ".join(f"&{c.symbol(f'{name}{i}')}" for i in range(n))
            text += (f"static const kl_matrix_t *const {c.symbol(name + '_nodes')}[{n}] KL_CONST = "
                     f"{{ {members} }};\n")
        theta = "0"
        if depth:
            text += emit_matrix(c.symbol("theta"), node.q["theta"], 0, blocked=False).text
            theta = f"&{c.symbol('theta')}"
        text += (f"static const kl_tree_path_params_t {c.symbol('params')} KL_CONST = {{ "
                 f"{c.symbol('W_nodes')}, {c.symbol('V_nodes')}, {theta}, "
                 f"{outputs[0].shape[0]}, {depth}, {k['v_frac']}, {k['shift_y']} }};\n")
        call = (f"    kl_tree_path_s16_s32(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])}, {c.buffer('w')}, {c.buffer('v')});\n")
        return Emitted(text, call)
