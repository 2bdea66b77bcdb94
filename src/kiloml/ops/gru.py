"""``torch.nn.GRU`` (one layer, one direction) over a whole sequence as one fused op: per-step
input normalisation, the gates, the state update and the readout in one kernel
(``kl_gru.c``), so the working memory is one frame, not the sequence.

PyTorch's equations, gates in its order r, z, n::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h = (1 - z) * n + z * h

Lowered with ``bias_r = b_ir + b_hr`` and ``bias_z = b_iz + b_hz`` (``b_in``, ``b_hn`` stay
apart because ``r`` multiplies only the second).

Integer spec (see :mod:`kiloml.ops.recurrent` for normalisation, projections and readout),
per step with ``h`` int16 in Q(state), ``h0 = 0``, products and sums exact in int64:

* ``r = sigmoid(sat16(pre_r + b_r))``, ``z = sigmoid(sat16(pre_z + b_z))``: int32
  pre-activations in their calibrated Q(pre_r), Q(pre_z); Q15 outputs.
* ``hn = sat16(sat32(shift_round(U_n h, s_U_n)) + b_hn)`` in the calibrated Q(hidden_n).
* ``n = tanh(sat16(sat32(shift_round(W_n xn, s_W_n)) + b_in + shift_round(r hn, s_reset)))``:
  the input in Q(pre_n), ``s_reset = 15 + hidden_n - pre_n``; Q15 output.
* ``h = blend(2**15 - z, n, z, h)`` (:func:`kiloml.ops.recurrent.blend`):
  ``(1 - z) n + z h`` in Q(state).
"""

import numpy as np

from kiloml.ops.activation import sigmoid_q15, tanh_q15
from kiloml.ops.base import EmitContext, Emitted, register
from kiloml.ops.fixed import Q15, saturate, shift_round
from kiloml.ops.matrix import matvec
from kiloml.ops.normalize import normalize_spec
from kiloml.ops.recurrent import (
    RECURRENT_FILES,
    GatedRecurrentOp,
    blend,
    blend_constants,
    gate_input,
    inv_steps,
    read_out,
    sigmoid,
)

#: Q-formats the quantizer calibrates: the activations' inputs, ``W_hn h + b_hn``, the state.
CALIBRATED = ("normalized", "pre_r", "pre_z", "pre_n", "hidden_n", "state")


@register
class GRUOp(GatedRecurrentOp):
    """``weights``: ``input_mean``/``input_std`` ``[F]``, ``W_r``, ``W_z``, ``W_n`` ``[H, F]``,
    ``U_r``, ``U_z``, ``U_n`` ``[H, H]``, ``bias_r``, ``bias_z``, ``bias_in``, ``bias_hn``
    ``[H]``; ``attrs``: ``readout``."""

    name = "gru"
    c_files = ("kl_gru.h", "kl_gru.c", *RECURRENT_FILES)
    c_prefix = "kl_gru"
    gates = ("r", "z", "n")
    biases = ("r", "z", "in", "hn")
    targets = {"W_r": "pre_r", "U_r": "pre_r", "bias_r": "pre_r",
               "W_z": "pre_z", "U_z": "pre_z", "bias_z": "pre_z",
               "W_n": "pre_n", "bias_in": "pre_n", "U_n": "hidden_n", "bias_hn": "hidden_n"}

    # -- float graph -------------------------------------------------------------------------
    def float_forward(self, node, inputs, record):
        t = node.weights
        X = np.asarray(inputs[0], dtype=np.float64)
        xn = (X - t["input_mean"]) / t["input_std"]
        record("normalized", xn)
        h = np.zeros((X.shape[0], t["U_r"].shape[0]))
        total = np.zeros_like(h)
        for step in range(X.shape[1]):
            x = xn[:, step]
            pre_r = x @ t["W_r"].T + h @ t["U_r"].T + t["bias_r"]
            pre_z = x @ t["W_z"].T + h @ t["U_z"].T + t["bias_z"]
            hidden_n = h @ t["U_n"].T + t["bias_hn"]
            r = sigmoid(pre_r)
            pre_n = x @ t["W_n"].T + t["bias_in"] + r * hidden_n
            z = sigmoid(pre_z)
            h = (1.0 - z) * np.tanh(pre_n) + z * h
            for key, value in (("pre_r", pre_r), ("pre_z", pre_z), ("hidden_n", hidden_n),
                               ("pre_n", pre_n), ("state", h)):
                record(key, value)
            total += h
        return [total / X.shape[1] if node.attrs["readout"] == "mean" else h]

    # -- quantization ------------------------------------------------------------------------
    def quantize(self, node, inputs, outputs, ranges, bits):
        f = self.calibrated_formats(inputs, ranges, CALIBRATED)
        shifts = self.quantize_tensors(node, f, bits)
        shifts["reset"] = Q15 + f["hidden_n"] - f["pre_n"]
        update = blend_constants(f["state"])
        node.consts = {**{f"shift_{k}": v for k, v in shifts.items()},
                       **{f"format_{k}": v for k, v in f.items()},
                       "align_q15": update["align_q15"], "align_state": update["align_state"],
                       "shift_state_update": update["shift"],
                       "inv_steps": inv_steps(inputs[0].shape[0])}
        outputs[0].frac_bits = f["state"]

    # -- integer spec ------------------------------------------------------------------------
    def simulate(self, node, inputs, in_values, out_values):
        q, k = node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        xn = normalize_spec(x, q["input_mean"].values, q["input_inv_std"].values,
                            k["shift_normalize"])
        b = self.rescaled_biases(node)
        h = np.zeros((x.shape[0], q["U_r"].values.shape[0]), dtype=np.int64)
        total = np.zeros_like(h)
        one = np.int64(1 << Q15)
        for step in range(x.shape[1]):
            x_t = xn[:, step]
            r = sigmoid_q15(gate_input(self.gate_projection(node, "r", x_t, h), b["r"]),
                            k["format_pre_r"])
            z = sigmoid_q15(gate_input(self.gate_projection(node, "z", x_t, h), b["z"]),
                            k["format_pre_z"])
            hidden_n = gate_input(matvec(h, q["U_n"].values, k["shift_U_n"]), b["hn"])
            pre_n = (matvec(x_t, q["W_n"].values, k["shift_W_n"]) + b["in"]
                     + shift_round(r * hidden_n, k["shift_reset"]))
            n = tanh_q15(saturate(pre_n, 16), k["format_pre_n"])
            h = blend(one - z, n, z, h, k["align_q15"], k["align_state"],
                      k["shift_state_update"])
            total = total + h
        return [read_out(h, total, node.attrs["readout"], k["inv_steps"])]

    # -- C -------------------------------------------------------------------------------------
    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        k = node.consts
        parts, fields = self.emit_tensors(node, inputs, c)
        fields.update({
            "pre_frac_bits": (f"{{ {k['format_pre_r']}, {k['format_pre_z']}, "
                              f"{k['format_pre_n']} }}"),
            "reset_shift": k["shift_reset"],
            "update": (f"{{ {k['align_q15']}, {k['align_state']}, "
                       f"{k['shift_state_update']} }}"),
            "inv_steps": k["inv_steps"],
        })
        return Emitted(*self.emit_params_and_call(node, inputs, outputs, c, parts, fields))
