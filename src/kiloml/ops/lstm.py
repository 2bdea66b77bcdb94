"""``torch.nn.LSTM`` (one layer, one direction, no projection) over a whole sequence as one
fused op: per-step input normalisation, the gates, the cell and state updates and the readout
in one kernel (``kl_lstm.c``), so the working memory is one frame, not the sequence.

PyTorch's equations, gates in its order i, f, g, o::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)          o = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c = f * c + i * g
    h = o * tanh(c)

Lowered with one bias per gate, ``bias_g = b_ig + b_hg``.

Integer spec (see :mod:`kiloml.ops.recurrent` for normalisation, projections and readout),
per step with ``h`` int16 in Q(state) and ``c`` int16 in Q(cell) (both calibrated, ``h0 = c0
= 0``), products and sums exact in int64:

* ``i, f, o = sigmoid(sat16(pre + b))``, ``g = tanh(sat16(pre + b))``: int32 pre-activations
  in each gate's calibrated Q(pre_<gate>); Q15 outputs.
* ``c = blend(i, g, f, c)`` (:func:`kiloml.ops.recurrent.blend`): ``f c + i g`` in Q(cell).
* ``h = sat16(shift_round(o tanh(c), s_output))`` with ``tanh`` of Q(cell) and
  ``s_output = 30 - state``.
"""

import numpy as np

from kiloml.ops.activation import sigmoid_q15, tanh_q15
from kiloml.ops.base import EmitContext, Emitted, register
from kiloml.ops.fixed import Q15, saturate, shift_round
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

#: Q-formats the quantizer calibrates: the activations' inputs, the cell, the state.
CALIBRATED = ("normalized", "pre_i", "pre_f", "pre_g", "pre_o", "cell", "state")
#: The activation of each gate.
GATE_FUNCTIONS = {"i": sigmoid_q15, "f": sigmoid_q15, "g": tanh_q15, "o": sigmoid_q15}


@register
class LSTMOp(GatedRecurrentOp):
    """``weights``: ``input_mean``/``input_std`` ``[F]``, ``W_i``, ``W_f``, ``W_g``, ``W_o``
    ``[H, F]``, ``U_i``, ``U_f``, ``U_g``, ``U_o`` ``[H, H]``, ``bias_i``, ``bias_f``,
    ``bias_g``, ``bias_o`` ``[H]``; ``attrs``: ``readout``."""

    name = "lstm"
    c_files = ("kl_lstm.h", "kl_lstm.c", *RECURRENT_FILES)
    c_prefix = "kl_lstm"
    gates = ("i", "f", "g", "o")
    biases = gates
    targets = {f"{kind}_{g}": f"pre_{g}" for g in gates for kind in ("W", "U", "bias")}
    state_buffers = ("cell",)

    # -- float graph -------------------------------------------------------------------------
    def float_forward(self, node, inputs, record):
        t = node.weights
        X = np.asarray(inputs[0], dtype=np.float64)
        xn = (X - t["input_mean"]) / t["input_std"]
        record("normalized", xn)
        h = np.zeros((X.shape[0], t["U_i"].shape[0]))
        cell = np.zeros_like(h)
        total = np.zeros_like(h)
        for step in range(X.shape[1]):
            x = xn[:, step]
            pre = {g: x @ t[f"W_{g}"].T + h @ t[f"U_{g}"].T + t[f"bias_{g}"] for g in self.gates}
            for g in self.gates:
                record(f"pre_{g}", pre[g])
            cell = sigmoid(pre["f"]) * cell + sigmoid(pre["i"]) * np.tanh(pre["g"])
            h = sigmoid(pre["o"]) * np.tanh(cell)
            record("cell", cell)
            record("state", h)
            total += h
        return [total / X.shape[1] if node.attrs["readout"] == "mean" else h]

    # -- quantization ------------------------------------------------------------------------
    def quantize(self, node, inputs, outputs, ranges, bits):
        f = self.calibrated_formats(inputs, ranges, CALIBRATED)
        shifts = self.quantize_tensors(node, f, bits)
        shifts["output"] = 2 * Q15 - f["state"]
        update = blend_constants(f["cell"])
        node.consts = {**{f"shift_{k}": v for k, v in shifts.items()},
                       **{f"format_{k}": v for k, v in f.items()},
                       "align_q15": update["align_q15"], "align_state": update["align_state"],
                       "shift_cell_update": update["shift"],
                       "inv_steps": inv_steps(inputs[0].shape[0])}
        outputs[0].frac_bits = f["state"]

    # -- integer spec ------------------------------------------------------------------------
    def simulate(self, node, inputs, in_values, out_values):
        q, k = node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        xn = normalize_spec(x, q["input_mean"].values, q["input_inv_std"].values,
                            k["shift_normalize"])
        b = self.rescaled_biases(node)
        h = np.zeros((x.shape[0], q["U_i"].values.shape[0]), dtype=np.int64)
        cell = np.zeros_like(h)
        total = np.zeros_like(h)
        for step in range(x.shape[1]):
            x_t = xn[:, step]
            act = {g: GATE_FUNCTIONS[g](gate_input(self.gate_projection(node, g, x_t, h), b[g]),
                                        k[f"format_pre_{g}"])
                   for g in self.gates}
            cell = blend(act["i"], act["g"], act["f"], cell, k["align_q15"], k["align_state"],
                         k["shift_cell_update"])
            h = saturate(shift_round(act["o"] * tanh_q15(cell, k["format_cell"]),
                                     k["shift_output"]), 16)
            total = total + h
        return [read_out(h, total, node.attrs["readout"], k["inv_steps"])]

    # -- C -------------------------------------------------------------------------------------
    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        k = node.consts
        parts, fields = self.emit_tensors(node, inputs, c)
        fields.update({
            "pre_frac_bits": "{ " + ", ".join(str(k[f"format_pre_{g}"]) for g in self.gates)
                             + " }",
            "cell_frac_bits": k["format_cell"],
            "cell_update": (f"{{ {k['align_q15']}, {k['align_state']}, "
                            f"{k['shift_cell_update']} }}"),
            "output_shift": k["shift_output"],
            "inv_steps": k["inv_steps"],
        })
        return Emitted(*self.emit_params_and_call(node, inputs, outputs, c, parts, fields))
