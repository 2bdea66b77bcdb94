"""Gaussian RBF similarities to prototypes, ``s_j = exp(-gamma^2 ||p - b_j||^2)``, in
integers (``kl_rbf.c``): ProtoNN's kernel layer.

Input ``p`` int16 ``[d]`` in Q(p); prototypes ``B`` int8/int16 ``[m, d]`` (dense, one row per
prototype) in Q(b); ``gamma^2`` one int16 in Q(g); output ``s`` int16 ``[m]`` in Q14.

1. Both operands are brought to the coarser format ``a = min(p, b)``:
   ``e_i = shift_round(p_i, p - a) - shift_round(b_ji, b - a)`` (``|e_i| < 2^16``).
2. ``D = sum_i e_i^2`` exactly (``< 2^40`` for ``d <= 255``; uint32 squares, an int64 sum).
3. ``u = shift_round(D * g, s_u)`` in Q8 with ``s_u = 2a + g - 8``; for ``s_u <= 0``,
   ``u = min(D * g, 3072) * 2^-s_u``.
4. ``u >= 3072`` (``u >= 12``, ``exp(-12) < 2^-16``) gives 0; else with ``u = 256 i + 16 h +
   l``: ``s = rnd16(rnd15(E_INT[i] E_HI[h]) E_LO[l])`` where ``E_INT[i] = exp(-i)``,
   ``E_HI[h] = exp(-h/16)``, ``E_LO[l] = exp(-l/256)`` are uint16 tables in Q15 (44 entries,
   88 bytes of flash in ``kl_rbf.c``) and ``rndk(v) = (v + 2^(k-1)) >> k``.

Error bound (of steps 3-4, for the exact exponent ``x = D * g * 2^-(2a + g)`` of the integer
operands): rounding it to Q8 changes it by at most ``2^-9`` (a relative error of at most
``e^(2^-9) - 1 < 0.002``), the tables and the two roundings add under 2 units of 2^-15, so
``|s / 2^14 - exp(-x)| <= 0.002 exp(-x) + 2^-13``; ``tests/ops/test_rbf.py`` checks it over
every exponent in Q12 up to 24 (the largest error found is above 0.001).
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.fixed import QTensor, frac_bits_for, quantize_weight, shift_round, to_fixed
from kiloml.ops.matrix import C_WEIGHT_TYPES, c_array, vector_bytes

#: Fractional bits of the exponent ``u`` and of the output.
U_FRAC_BITS = 8
OUTPUT_FRAC_BITS = 14
#: ``u`` at or beyond this (12 in Q8) gives 0.
U_LIMIT = 12 << U_FRAC_BITS
#: Longest prototype (the int64 distance is exact for it).
MAX_DIMS = 255
RBF_FILES = ("kl_rbf.h", "kl_rbf.c")


def _table(values: np.ndarray) -> np.ndarray:
    return np.round(np.exp(-values) * 2.0**15).astype(np.int64)


#: exp(-i), exp(-h/16), exp(-l/256) in Q15 (uint16; exp(0) = 32768).
E_INT = _table(np.arange(12, dtype=np.float64))
E_HI = _table(np.arange(16) / 16.0)
E_LO = _table(np.arange(16) / 256.0)


def exp_neg_q8(u: np.ndarray) -> np.ndarray:
    """``exp(-u / 256)`` in Q14 for int64 ``u >= 0`` (0 from :data:`U_LIMIT` on)."""
    u = np.asarray(u, dtype=np.int64)
    inside = u < U_LIMIT
    v = np.where(inside, u, 0)
    first = (E_INT[v >> 8] * E_HI[(v >> 4) & 15] + (1 << 14)) >> 15
    return np.where(inside, (first * E_LO[v & 15] + (1 << 15)) >> 16, 0)


def rbf_spec(p: np.ndarray, prototypes: np.ndarray, gamma2: int, shift_p: int, shift_b: int,
             shift_u: int) -> np.ndarray:
    """Steps 1-4 of the module docstring: int64 ``p`` ``[N, d]``, ``prototypes`` ``[m, d]``
    → Q14 ``[N, m]``."""
    p = shift_round(np.asarray(p, dtype=np.int64), shift_p)
    b = shift_round(np.asarray(prototypes, dtype=np.int64), shift_b)
    dist = ((p[:, None, :] - b[None]) ** 2).sum(-1)
    t = dist * np.int64(gamma2)
    if shift_u > 0:
        u = shift_round(t, shift_u)
    else:
        u = np.minimum(t, U_LIMIT) * np.int64(1 << -shift_u)
    return exp_neg_q8(u)


@register
class RBFOp(Op):
    """``weights``: ``prototypes`` ``[m, d]``, ``gamma2`` ``[1]`` (``gamma^2``)."""

    name = "rbf"
    c_files = RBF_FILES

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        count, dims = node.weights["prototypes"].shape
        if inputs[0].shape != (dims,):
            raise ValueError(f"{node.path}: expects {dims} inputs, got {inputs[0].shape}")
        if dims > MAX_DIMS:
            raise KilomlError(f"{node.path}: prototypes of {dims} dimensions; the integer RBF "
                              f"takes at most {MAX_DIMS}")
        return [Value(node.outputs[0], (count,), "int16")]

    def float_forward(self, node, inputs, record):
        p = np.asarray(inputs[0], dtype=np.float64)
        dist = ((p[:, None, :] - node.weights["prototypes"][None]) ** 2).sum(-1)
        return [np.exp(-float(node.weights["gamma2"][0]) * dist)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        prototypes = quantize_weight(node.weights["prototypes"], bits)
        gamma2 = float(node.weights["gamma2"][0])
        common = min(inputs[0].frac_bits, prototypes.frac_bits)
        g_frac = frac_bits_for(gamma2, 16, -8, 30)
        node.q = {"prototypes": prototypes,
                  "gamma2": QTensor(to_fixed(np.array([gamma2]), g_frac, 16), g_frac, 16)}
        node.consts = {"shift_p": inputs[0].frac_bits - common,
                       "shift_b": prototypes.frac_bits - common,
                       "shift_u": 2 * common + g_frac - U_FRAC_BITS}
        outputs[0].frac_bits = OUTPUT_FRAC_BITS

    def simulate(self, node, inputs, in_values, out_values):
        k = node.consts
        return [rbf_spec(inputs[0], node.q["prototypes"].values,
                         int(node.q["gamma2"].values[0]), k["shift_p"], k["shift_b"],
                         k["shift_u"])]

    def storage(self, node):
        prototypes = node.q["prototypes"]
        return {"prototypes": {"format": "dense", "bytes": vector_bytes(prototypes),
                               "bits": prototypes.bits},
                "gamma2": {"format": "scalar", "bytes": 2, "bits": 16}}

    def macs(self, node, inputs, outputs):
        count, dims = node.q["prototypes"].values.shape
        return count * (dims + 1)

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        prototypes, k = node.q["prototypes"], node.consts
        count, dims = prototypes.values.shape
        definitions = (c_array(C_WEIGHT_TYPES[prototypes.bits], c.symbol("prototypes"),
                               prototypes.values)
                       + f"static const kl_rbf_params_t {c.symbol('params')} KL_CONST = {{ "
                       f"{c.symbol('prototypes')}, {count}, {dims}, {prototypes.bits}, "
                       f"{k['shift_p']}, {k['shift_b']}, {k['shift_u']}, "
                       f"{int(node.q['gamma2'].values[0])} }};\n")
        call = (f"    kl_rbf_s16(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
