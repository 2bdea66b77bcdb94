"""Integer reference of the deployed C code: the spec, integer for integer.

For every input sequence (vectorised over a batch), with all products and sums in int64:

1. ``xn = sat16(shift_round((x - mean) * inv_std, s_normalize))`` per feature (Q normalized).
2. Per step ``t``, with ``h`` int16 in Q state (``h0 = 0``):
   ``aw = sat32(shift_round(W xn, s_W))`` (low rank: ``lw = sat16(shift_round(W1 xn, s_W1))``,
   ``aw = sat32(shift_round(W2 lw, s_W2))``), ``au`` likewise from ``U``/``h``,
   ``a = sat32(aw + au)`` (Q preactivation, int32).
   ``c = update(sat16(a + shift_round(b_update, s_bias_update)))`` (Q update_out).
   FastGRNN: ``z = gate(sat16(a + shift_round(b_gate, s_bias_gate)))`` (Q gate_out, ``Fz``),
   ``coef = shift_round(σζ (2**Fz - z) + σν 2**Fz, 15)`` (Q gate_out),
   ``h = sat16(shift_round(z h 2**-s_state_align + coef c 2**-s_update_align, s_state_update))``.
   FastRNN: ``h = sat16(shift_round(σβ h 2**-s_state_align + σα c 2**-s_update_align,
   s_state_update))``.
3. Readout ``r = h_T`` or ``r = sat16(shift_round(sum_t h_t * inv_steps, 30))`` (sum in int32).
4. ``logits = sat32(sat32(shift_round(W_head r, s_head_weight)) +
   shift_round(b_head, s_head_bias))`` (int32, Q logits).

``shift_round``/``sat`` are :mod:`kiloml.quantize.formats`; ``2**-s`` with ``s <= 0`` is exact.
"""

import numpy as np

from kiloml.quantize.activations import apply_integer
from kiloml.quantize.formats import saturate, shift_round
from kiloml.quantize.quantizer import INV_STEPS_FRAC_BITS, QuantizedModel


def _matvec(q: QuantizedModel, name: str, x: np.ndarray, shift: int) -> np.ndarray:
    """``sat32(shift_round(x @ M.T, shift))`` for int64 ``x`` ``[N, cols]`` → ``[N, rows]``."""
    return saturate(shift_round(x @ q.tensors[name].values.T, shift), 32)


def _input_path(q: QuantizedModel, x: np.ndarray, s: dict[str, int]) -> np.ndarray:
    if q.w_rank is None:
        return _matvec(q, "W", x, s["W"])
    low = saturate(_matvec(q, "W1", x, s["W1"]), 16)
    return _matvec(q, "W2", low, s["W2"])


def _recurrent_path(q: QuantizedModel, h: np.ndarray, s: dict[str, int]) -> np.ndarray:
    if q.u_rank is None:
        return _matvec(q, "U", h, s["U"])
    low = saturate(_matvec(q, "U1", h, s["U1"]), 16)
    return _matvec(q, "U2", low, s["U2"])


def simulate_batch(q: QuantizedModel, x: np.ndarray) -> np.ndarray:
    """int32 logits ``[N, C]`` (Q ``formats["logits"]``) for int16 inputs ``x`` ``[N, T, F]``
    in Q ``formats["input"]``; ``T`` must equal ``q.steps``."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (q.steps, q.input_size):
        raise ValueError(f"expected int16 input [N, {q.steps}, {q.input_size}], "
                         f"got {list(x.shape)}")
    s, f, t = q.shifts(), q.formats, q.tensors
    x = x.astype(np.int64)
    xn = saturate(shift_round((x - t["input_mean"].values) * t["input_inv_std"].values,
                              s["normalize"]), 16)
    h = np.zeros((x.shape[0], q.hidden_size), dtype=np.int64)
    total = np.zeros_like(h)
    bias_update = shift_round(t["bias_update"].values, s["bias_update"])
    if q.kind == "fastgrnn":
        bias_gate = shift_round(t["bias_gate"].values, s["bias_gate"])
        zeta, nu = t["sigmoid_zeta"].values[0], t["sigmoid_nu"].values[0]
        one = np.int64(1 << f["gate_out"])
    else:
        alpha, beta = t["sigmoid_alpha"].values[0], t["sigmoid_beta"].values[0]
    h_scale = np.int64(1 << -s["state_align"])
    c_scale = np.int64(1 << -s["update_align"])
    for step in range(q.steps):
        a = saturate(_input_path(q, xn[:, step], s) + _recurrent_path(q, h, s), 32)
        c = apply_integer(q.update, saturate(a + bias_update, 16), f["preactivation"])
        if q.kind == "fastgrnn":
            z = apply_integer(q.gate, saturate(a + bias_gate, 16), f["preactivation"])
            coef = shift_round(zeta * (one - z) + nu * one, 15)
            acc = z * h * h_scale + coef * c * c_scale
        else:
            acc = beta * h * h_scale + alpha * c * c_scale
        h = saturate(shift_round(acc, s["state_update"]), 16)
        total = total + h
    if q.readout == "mean":
        readout = saturate(shift_round(saturate(total, 32) * np.int64(q.inv_steps()),
                                       INV_STEPS_FRAC_BITS), 16)
    else:
        readout = h
    head = _matvec(q, "head_weight", readout, s["head_weight"])
    bias = shift_round(t["head_bias"].values, s["head_bias"])
    return saturate(head + bias, 32)


def simulate(q: QuantizedModel, x: np.ndarray) -> np.ndarray:
    """int32 logits ``[C]`` for one int16 input ``x`` ``[T, F]`` (see :func:`simulate_batch`)."""
    return simulate_batch(q, np.asarray(x)[None])[0].astype(np.int32)
