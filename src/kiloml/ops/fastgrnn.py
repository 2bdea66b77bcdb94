"""FastGRNN / FastRNN over a whole sequence as one fused op (Kusupati et al., NeurIPS 2018):
per-step input normalisation, the low-rank projections, the state update and the readout stay
inside one kernel (``kl_fastgrnn.c``), so the working memory is one frame, not the sequence.

Input ``x`` int16 ``[T, F]`` in Q(in); output the readout ``r`` int16 ``[H]`` in Q(state).
Integer spec, vectorised over a batch, products and sums exact in int64:

1. ``xn = sat16(shift_round((x - mean) * inv_std, s_normalize))`` per feature (Q normalized).
2. Per step ``t``, ``h`` int16 in Q state (``h0 = 0``):
   ``aw = sat32(shift_round(W xn, s_W))`` (low rank: ``lw = sat16(shift_round(W1 xn, s_W1))``,
   ``aw = sat32(shift_round(W2 lw, s_W2))``), ``au`` likewise from ``U``/``h``,
   ``a = sat32(aw + au)`` (Q preactivation, int32).
   ``c = update(sat16(a + shift_round(b_update, s_bias_update)))`` (Q update_out).
   FastGRNN: ``z = gate(sat16(a + shift_round(b_gate, s_bias_gate)))`` (Q gate_out, ``Fz``),
   ``coef = shift_round(σζ (2**Fz - z) + σν 2**Fz, 15)`` (Q gate_out),
   ``h = sat16(shift_round(z h 2**-s_state_align + coef c 2**-s_update_align, s_state_update))``.
   FastRNN: ``h = sat16(shift_round(σβ h 2**-s_state_align + σα c 2**-s_update_align,
   s_state_update))``.
3. Readout ``r = h_T`` or ``r = sat16(shift_round(sum_t h_t * inv_steps, 30))`` (sum in int32,
   ``inv_steps = round(2**30 / T)``).

``σζ, σν`` (FastGRNN) and ``σα, σβ`` (FastRNN) are Q15 int16 constants; weights are int8/int16
with one power-of-two scale per tensor; activations are int16 with calibrated Q-formats.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.activation import FLOAT_FUNCTIONS, activation_id, apply_integer, output_frac_bits
from kiloml.ops.base import Buffer, EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import INV_STEPS_FRAC_BITS, MAX_STEPS
from kiloml.ops.fixed import (
    Q15,
    QTensor,
    activation_format,
    quantize_q15,
    quantize_weight,
    saturate,
    shift_round,
)
from kiloml.ops.matrix import (
    MATVEC_FILES,
    c_array,
    emit_matrix,
    emit_vector,
    matrix_storage,
    matvec,
    vector_bytes,
)
from kiloml.ops.normalize import NORMALIZE_FILES, normalize_spec, quantize_normalization

MATRICES = ("W", "W1", "W2", "U", "U1", "U2")
#: Updates the Cortex-M4 loop of a quantSigm gate takes (``kl_update_quant_gate_dsp``).
QUANT_GATE_UPDATES = ("quantTanh", "relu")
#: Per-step elementwise multiplies of the state update.
ELEMENTWISE_MACS = {"fastgrnn": 3, "fastrnn": 2}


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _rank(node: Node, matrix: str) -> int | None:
    first = node.weights.get(f"{matrix}1", node.q.get(f"{matrix}1"))
    if first is None:
        return None
    return (first.values if isinstance(first, QTensor) else first).shape[0]


@register
class FastRNNOp(Op):
    """``attrs``: ``cell`` (fastgrnn/fastrnn), ``gate`` (FastGRNN), ``update``, ``readout``
    (last/mean); ``weights``: ``input_mean``/``input_std`` ``[F]``, ``W`` or ``W1``/``W2``,
    ``U`` or ``U1``/``U2``, ``bias_update`` (and ``bias_gate``) ``[H]``, scalars ``zeta``,
    ``nu`` (FastGRNN) or ``alpha``, ``beta`` (FastRNN)."""

    name = "fastrnn"
    c_files = ("kl_fastgrnn.h", "kl_fastgrnn.c", "kl_activation.h", "kl_activation.c",
               *MATVEC_FILES, *NORMALIZE_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, features = inputs[0].shape
        hidden = node.weights["bias_update"].shape[0]
        if not 1 <= steps <= MAX_STEPS:
            raise KilomlError(f"sequence length must be between 1 and {MAX_STEPS} for "
                              f"deployment, got {steps}")
        if node.weights["input_mean"].shape != (features,):
            raise KilomlError(f"{node.path}: normalisation has "
                              f"{node.weights['input_mean'].shape[0]} features, input {features}")
        return [Value(node.outputs[0], (hidden,), "int16")]

    # -- float graph -------------------------------------------------------------------------
    def float_forward(self, node, inputs, record):
        a, t = node.attrs, node.weights
        X = np.asarray(inputs[0], dtype=np.float64)
        xn = (X - t["input_mean"]) / t["input_std"]
        record("normalized", xn)
        hidden = t["bias_update"].shape[0]
        h = np.zeros((X.shape[0], hidden))
        total = np.zeros_like(h)
        update = FLOAT_FUNCTIONS[a["update"]]
        for step in range(X.shape[1]):
            x = xn[:, step]
            if "W" in t:
                wx = x @ t["W"].T
            else:
                low = x @ t["W1"].T
                record("w_low_rank", low)
                wx = low @ t["W2"].T
            if "U" in t:
                uh = h @ t["U"].T
            else:
                low = h @ t["U1"].T
                record("u_low_rank", low)
                uh = low @ t["U2"].T
            pre = wx + uh
            record("preactivation", pre)
            pre_update = pre + t["bias_update"]
            record("preactivation", pre_update)
            c = update(pre_update)
            record("update_out", c)
            if a["cell"] == "fastgrnn":
                pre_gate = pre + t["bias_gate"]
                record("preactivation", pre_gate)
                z = FLOAT_FUNCTIONS[a["gate"]](pre_gate)
                coef = _sigmoid(t["zeta"][0]) * (1.0 - z) + _sigmoid(t["nu"][0])
                h = z * h + coef * c
            else:
                h = _sigmoid(t["beta"][0]) * h + _sigmoid(t["alpha"][0]) * c
            record("state", h)
            total += h
        return [total / X.shape[1] if a["readout"] == "mean" else h]

    # -- quantization ------------------------------------------------------------------------
    def quantize(self, node, inputs, outputs, ranges, bits):
        a, t = node.attrs, node.weights
        w_rank, u_rank = _rank(node, "W"), _rank(node, "U")
        f = {"input": inputs[0].frac_bits}
        for key in ("normalized", "preactivation", "state"):
            f[key] = activation_format(ranges(key))
        f["w_low_rank"] = activation_format(ranges("w_low_rank")) if w_rank else f["normalized"]
        f["u_low_rank"] = activation_format(ranges("u_low_rank")) if u_rank else f["state"]
        fastgrnn = a["cell"] == "fastgrnn"
        f["gate_out"] = output_frac_bits(a["gate"], f["preactivation"]) if fastgrnn else Q15
        f["update_out"] = output_frac_bits(a["update"], f["preactivation"])
        q = node.q
        q["input_mean"], q["input_inv_std"] = quantize_normalization(
            t["input_mean"], t["input_std"], f["input"])
        for name in (*MATRICES, "bias_gate", "bias_update"):
            if name in t:
                q[name] = quantize_weight(t[name], bits)
        if fastgrnn:
            q["coef_a"] = quantize_q15(_sigmoid(t["zeta"][0]))
            q["coef_b"] = quantize_q15(_sigmoid(t["nu"][0]))
        else:
            q["coef_a"] = quantize_q15(_sigmoid(t["alpha"][0]))
            q["coef_b"] = quantize_q15(_sigmoid(t["beta"][0]))
        s = {"normalize": f["input"] + q["input_inv_std"].frac_bits - f["normalized"]}
        if w_rank is None:
            s["W"] = q["W"].frac_bits + f["normalized"] - f["preactivation"]
        else:
            s["W1"] = q["W1"].frac_bits + f["normalized"] - f["w_low_rank"]
            s["W2"] = q["W2"].frac_bits + f["w_low_rank"] - f["preactivation"]
        if u_rank is None:
            s["U"] = q["U"].frac_bits + f["state"] - f["preactivation"]
        else:
            s["U1"] = q["U1"].frac_bits + f["state"] - f["u_low_rank"]
            s["U2"] = q["U2"].frac_bits + f["u_low_rank"] - f["preactivation"]
        s["bias_update"] = q["bias_update"].frac_bits - f["preactivation"]
        if fastgrnn:
            s["bias_gate"] = q["bias_gate"].frac_bits - f["preactivation"]
        gate_or_one = f["gate_out"] if fastgrnn else Q15
        aligned = max(f["state"], f["update_out"])
        s["state_align"] = f["state"] - aligned  # multiply h by 2**(aligned - state)
        s["update_align"] = f["update_out"] - aligned
        s["state_update"] = gate_or_one + aligned - f["state"]
        node.consts = {**{f"shift_{k}": v for k, v in s.items()},
                       **{f"format_{k}": v for k, v in f.items()},
                       "inv_steps": round((1 << INV_STEPS_FRAC_BITS) / inputs[0].shape[0])}
        outputs[0].frac_bits = f["state"]

    # -- integer spec ------------------------------------------------------------------------
    def simulate(self, node, inputs, in_values, out_values):
        a, q, k = node.attrs, node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        xn = normalize_spec(x, q["input_mean"].values, q["input_inv_std"].values,
                            k["shift_normalize"])
        h = np.zeros((x.shape[0], q["bias_update"].values.shape[0]), dtype=np.int64)
        total = np.zeros_like(h)
        for step in range(x.shape[1]):
            h = self.step(node, xn[:, step], h)
            total = total + h
        if a["readout"] == "mean":
            return [saturate(shift_round(saturate(total, 32) * np.int64(k["inv_steps"]),
                                         INV_STEPS_FRAC_BITS), 16)]
        return [h]

    def step(self, node, xn, h):
        """Item 2 of the spec once: the state ``[N, H]`` after the normalised frames ``xn``
        ``[N, F]`` from the state ``h`` ``[N, H]`` (int64); what ``kl_fastgrnn_step_s16``
        computes after normalising its frame."""
        a, q, k = node.attrs, node.q, node.consts

        def project(first: str, vector: np.ndarray) -> np.ndarray:
            if first in q:
                return matvec(vector, q[first].values, k[f"shift_{first}"])
            low = saturate(matvec(vector, q[f"{first}1"].values, k[f"shift_{first}1"]), 16)
            return matvec(low, q[f"{first}2"].values, k[f"shift_{first}2"])

        preact_format = k["format_preactivation"]
        coef_a, coef_b = q["coef_a"].values[0], q["coef_b"].values[0]
        h_scale = np.int64(1 << -k["shift_state_align"])
        c_scale = np.int64(1 << -k["shift_update_align"])
        pre = saturate(project("W", xn) + project("U", h), 32)
        bias_update = shift_round(q["bias_update"].values, k["shift_bias_update"])
        c = apply_integer(a["update"], saturate(pre + bias_update, 16), preact_format)
        if a["cell"] == "fastgrnn":
            bias_gate = shift_round(q["bias_gate"].values, k["shift_bias_gate"])
            one = np.int64(1 << k["format_gate_out"])
            z = apply_integer(a["gate"], saturate(pre + bias_gate, 16), preact_format)
            coef = shift_round(coef_a * (one - z) + coef_b * one, 15)
            acc = z * h * h_scale + coef * c * c_scale
        else:
            acc = coef_b * h * h_scale + coef_a * c * c_scale
        return saturate(shift_round(acc, k["shift_state_update"]), 16)

    def normalize(self, node, x):
        """Item 1 of the spec: int16 frames ``x`` ``[..., F]`` normalised (int64)."""
        q = node.q
        return normalize_spec(np.asarray(x, dtype=np.int64), q["input_mean"].values,
                              q["input_inv_std"].values, node.consts["shift_normalize"])

    # -- accounting --------------------------------------------------------------------------
    def buffers(self, node, inputs, outputs):
        hidden = outputs[0].shape[0]
        ranks = [r for r in (_rank(node, "W"), _rank(node, "U")) if r]
        out = [Buffer("xn", "int16", inputs[0].shape[1])]
        if ranks:
            out.append(Buffer("low_rank", "int16", max(ranks)))
        out.append(Buffer("preact", "int32", hidden))
        if node.attrs["readout"] == "mean":
            out.append(Buffer("sum", "int32", hidden))
        return out

    def storage(self, node):
        q = node.q
        out = {"input_mean": {"format": "dense", "bytes": q["input_mean"].nbytes, "bits": 16},
               "input_inv_std": {"format": "dense", "bytes": vector_bytes(q["input_inv_std"]),
                                 "bits": 16}}
        for name in MATRICES:
            if name in q:
                out[name] = matrix_storage(q[name])
        for name in ("bias_gate", "bias_update"):
            if name in q:
                out[name] = {"format": "dense", "bytes": vector_bytes(q[name]),
                             "bits": q[name].bits}
        out["coefficients"] = {"format": "scalar", "bytes": 4, "bits": 16}
        return out

    def macs(self, node, inputs, outputs):
        steps, features = inputs[0].shape
        hidden = outputs[0].shape[0]
        per_step = features + sum(int(np.count_nonzero(node.q[n].values))
                                  for n in MATRICES if n in node.q)
        per_step += ELEMENTWISE_MACS[node.attrs["cell"]] * hidden
        per_step += hidden if node.attrs["readout"] == "mean" else 0
        return steps * per_step

    # -- C -------------------------------------------------------------------------------------
    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        steps, features = inputs[0].shape
        parts, references = emit_cell_arrays(node, c)
        parts.append(cell_params(node, c.symbol("params"), steps, features,
                                 outputs[0].shape[0], references, node.consts["inv_steps"]))
        call = self.call(node, inputs, outputs, c, "kl_fastgrnn_s16",
                         c.pointer(node.inputs[0]))
        return Emitted("\n".join(parts), call)

    def c_switches(self, node: Node) -> set[str]:
        """``USES_QUANT_GATE`` for a FastGRNN with a quantSigm gate and a quantTanh or relu
        update: the Cortex-M4 state update of that pair (``kl_update_quant_gate_dsp``) is
        compiled in; whether it runs is decided from the constants at run time."""
        a = node.attrs
        quant = (a["cell"] == "fastgrnn" and a.get("gate") == "quantSigm"
                 and a["update"] in QUANT_GATE_UPDATES)
        return {"USES_QUANT_GATE"} if quant else set()

    def call(self, node, inputs, outputs, c: EmitContext, function: str, x: str) -> str:
        """The C call of ``function`` (``kl_fastgrnn_s16``, or ``kl_fastgrnn_step_s16``: one
        step from the state in the node's output) with the arguments ``x`` between the params
        and the buffers (the frames; for a step, the plan and the frame), its buffers in the
        arena."""
        buffers = {b.name: c.buffer(b.name) for b in self.buffers(node, inputs, outputs)}
        return (f"    {{\n        kl_fastgrnn_buffers_t buffers;\n"
                f"        buffers.xn = {buffers['xn']};\n"
                f"        buffers.low_rank = {buffers.get('low_rank', '0')};\n"
                f"        buffers.preact = {buffers['preact']};\n"
                f"        buffers.sum = {buffers.get('sum', '0')};\n"
                f"        {function}(&{c.symbol('params')}, {x}, &buffers, "
                f"{c.pointer(node.outputs[0])});\n    }}\n")


def emit_cell_arrays(node: Node, c: EmitContext) -> tuple[list[str], dict[str, str]]:
    """The C arrays of a quantized cell (normalisation, matrices, biases) and the C expressions
    its params struct refers to them by (``symbol`` names them)."""
    q, k = node.q, node.consts
    parts = [c_array("int16_t", c.symbol("input_mean"), q["input_mean"].values),
             c_array("int16_t", c.symbol("input_inv_std"), q["input_inv_std"].values)]
    references = {"input_mean": c.symbol("input_mean"),
                  "input_inv_std": c.symbol("input_inv_std")}
    for name in MATRICES:
        if name in q:
            stored = emit_matrix(c.symbol(name), q[name], k[f"shift_{name}"])
            parts.append(stored.text)
            references[name] = f"&{c.symbol(name)}"
    for name in ("bias_gate", "bias_update"):
        if name in q:
            text, initializer = emit_vector(c.symbol(name), q[name], k[f"shift_{name}"],
                                            fold_shift=True)
            parts.append(text)
            references[name] = initializer
    return parts, references


def cell_params(node: Node, symbol: str, steps: int, features: int, hidden: int,
                references: dict[str, str], inv_steps: int) -> str:
    """The ``kl_fastgrnn_params_t`` called ``symbol`` of a quantized cell run over ``steps``
    frames of ``features`` (arrays from :func:`emit_cell_arrays`; ``inv_steps`` for the mean
    readout)."""
    a, q, k = node.attrs, node.q, node.consts
    low_w, low_u = "W1" in references, "U1" in references
    fastgrnn = a["cell"] == "fastgrnn"
    fields = {
        "cell": f"KL_{a['cell'].upper()}",
        "gate": activation_id(a["gate"]) if fastgrnn else 0,
        "update": activation_id(a["update"]),
        "readout": f"KL_READOUT_{a['readout'].upper()}",
        "hidden_size": hidden,
        "steps": steps,
        "norm": (f"{{ {references['input_mean']}, {references['input_inv_std']}, {features}, "
                 f"{k['shift_normalize']} }}"),
        "w_first": references["W1"] if low_w else references["W"],
        "w_second": references["W2"] if low_w else "0",
        "u_first": references["U1"] if low_u else references["U"],
        "u_second": references["U2"] if low_u else "0",
        "bias_gate": references.get("bias_gate", "{ 0, 16, 0 }"),
        "bias_update": references["bias_update"],
        "coef_a": int(q["coef_a"].values[0]),
        "coef_b": int(q["coef_b"].values[0]),
        "preact_frac_bits": k["format_preactivation"],
        "gate_frac_bits": k["format_gate_out"],
        "state_align": -k["shift_state_align"],
        "update_align": -k["shift_update_align"],
        "state_shift": k["shift_state_update"],
        "inv_steps": inv_steps,
    }
    members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
    return f"static const kl_fastgrnn_params_t {symbol} KL_CONST = {{\n{members},\n}};\n"
