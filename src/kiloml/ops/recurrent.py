"""What the gated recurrent ops (``gru``, ``lstm``) share: one fused op over the whole sequence
whose per-gate matrices, biases, per-step normalisation and readout are stored and emitted the
same way (their C kernels share ``kl_recurrent.[ch]``).

Input ``x`` int16 ``[T, F]`` in Q(in); output int16 ``[H]`` in Q(state): the last hidden state
or the mean over time. Per step the frame is normalised as ``normalize`` does
(``xn = sat16(shift_round((x - mean) * inv_std, s_normalize))``, Q normalized), and every gate
``g`` has an input matrix ``W_g`` ``[H, F]`` and a recurrent one ``U_g`` ``[H, H]`` (int8/int16,
one power-of-two scale each) whose products are rescaled into the gate's int32 pre-activation:
``pre_g = sat32(sat32(shift_round(W_g xn, s_W_g)) + sat32(shift_round(U_g h, s_U_g)))``
(:func:`project`), the ``kl_matvec_s16_s32`` store-then-accumulate. A bias ``b`` (int8/int16 in
its own Q) is read as ``shift_round(b, s_b)`` in its target's Q-format.

Two Q15 gate products are combined by :func:`blend` (the GRU's state update, the LSTM's cell
update). Readout as ``fastrnn``: ``h_T``, or ``sat16(shift_round(sum_t h_t * inv_steps, 30))``
with the sum in int32 (exact: ``T <= 65535``) and ``inv_steps = round(2**30 / T)``.

Q-formats: weights int8/int16 with one power-of-two scale per tensor; every intermediate the
quantizer calibrates (the normalised frame, each activation's input, the GRU's
``W_hn h + b_hn``, the LSTM's cell, the hidden state) int16 in the Q-format its largest
calibrated magnitude allows with 1.25 headroom (Q0..Q20, :func:`activation_format`); a gate's
pre-activation accumulates in int32 in its activation input's format; gate outputs Q15.

Working memory (the arena, during the op only): ``xn`` int16 ``[F]``, ``preact`` int32
``[4H]``, the LSTM's ``cell`` int16 ``[H]`` and, for the mean readout, ``sum`` int32 ``[H]``;
the hidden state lives in the op's output value.
"""

from typing import ClassVar

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import Buffer, EmitContext, Node, Op, Value
from kiloml.ops.constants import INV_STEPS_FRAC_BITS, MAX_STEPS
from kiloml.ops.fixed import (
    Q15,
    activation_format,
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
from kiloml.ops.normalize import NORMALIZE_FILES, quantize_normalization

#: Elementwise multiplies per hidden unit and step (GRU: r*hn, (1-z)*n, z*h; LSTM: f*c, i*g,
#: o*tanh(c)), as :func:`kiloml.compress.size.macs_per_inference` counts them.
ELEMENTWISE_MACS = 3
#: C files both kernels need besides their own.
RECURRENT_FILES = ("kl_recurrent.h", "kl_recurrent.c", "kl_activation.h", "kl_activation.c",
                   *MATVEC_FILES, *NORMALIZE_FILES)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def project(x: np.ndarray, h: np.ndarray, w: np.ndarray, u: np.ndarray, shift_w: int,
            shift_u: int) -> np.ndarray:
    """``sat32(matvec(x, W) + matvec(h, U))``: int32 pre-activations ``[N, H]``."""
    return saturate(matvec(x, w, shift_w) + matvec(h, u, shift_u), 32)


def gate_input(pre: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``sat16(pre + bias)``: an activation's int16 input (``bias`` already rescaled)."""
    return saturate(pre + bias, 16)


def blend_constants(state_frac_bits: int) -> dict[str, int]:
    """Constants of :func:`blend` for a result in Q(state): both products are aligned to
    ``Q(top)``, ``top = max(30, 15 + state)``, then shifted to Q(state)."""
    top = max(2 * Q15, Q15 + state_frac_bits)
    return {"align_q15": top - 2 * Q15, "align_state": top - Q15 - state_frac_bits,
            "shift": top - state_frac_bits}


def blend(p: np.ndarray, a: np.ndarray, q: np.ndarray, b: np.ndarray, align_q15: int,
          align_state: int, shift: int) -> np.ndarray:
    """``p a + q b`` in Q(state) for Q15 ``p``, ``a``, ``q`` and ``b`` in Q(state):
    ``sat16(shift_round(p a 2**align_q15 + q b 2**align_state, shift))``, exact in int64
    (``|p a|, |q b| <= 2**30``, alignments at most 15)."""
    total = (p * a * np.int64(1 << align_q15)) + (q * b * np.int64(1 << align_state))
    return saturate(shift_round(total, shift), 16)


def read_out(h: np.ndarray, total: np.ndarray, readout: str, inv_steps: int) -> np.ndarray:
    """The op's output: the last state ``h`` or the mean ``total / T`` (``total`` int32)."""
    if readout == "mean":
        return saturate(shift_round(saturate(total, 32) * np.int64(inv_steps),
                                    INV_STEPS_FRAC_BITS), 16)
    return h


class GatedRecurrentOp(Op):
    """Base of ``gru`` and ``lstm``. ``attrs``: ``readout`` (last/mean); ``weights``:
    ``input_mean``/``input_std`` ``[F]``, ``W_<g>`` ``[H, F]`` and ``U_<g>`` ``[H, H]`` per gate,
    biases ``bias_<b>`` ``[H]``. Subclasses name their gates and biases and the Q-format each
    matrix and bias is rescaled into."""

    #: Gates in torch's order; each has ``W_<g>`` and ``U_<g>``.
    gates: ClassVar[tuple[str, ...]] = ()
    #: Bias vectors ``bias_<b>``, in the order of the kernel's ``bias`` array.
    biases: ClassVar[tuple[str, ...]] = ()
    #: Tensor name → the calibrated format key its product or value is rescaled into.
    targets: ClassVar[dict[str, str]] = {}
    #: Extra int16 ``[H]`` buffers of the kernel (the LSTM's cell state).
    state_buffers: ClassVar[tuple[str, ...]] = ()
    #: C prefix: the kernel is ``<prefix>_s16``, its structs ``<prefix>_params_t`` and
    #: ``<prefix>_buffers_t``.
    c_prefix: ClassVar[str] = ""

    @property
    def matrices(self) -> tuple[str, ...]:
        return (*(f"W_{g}" for g in self.gates), *(f"U_{g}" for g in self.gates))

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, features = inputs[0].shape
        hidden = node.weights[f"U_{self.gates[0]}"].shape[0]
        if not 1 <= steps <= MAX_STEPS:
            raise KilomlError(f"sequence length must be between 1 and {MAX_STEPS} for "
                              f"deployment, got {steps}")
        if node.weights["input_mean"].shape != (features,):
            raise KilomlError(f"{node.path}: normalisation has "
                              f"{node.weights['input_mean'].shape[0]} features, input {features}")
        for g in self.gates:
            if (node.weights[f"W_{g}"].shape != (hidden, features)
                    or node.weights[f"U_{g}"].shape != (hidden, hidden)):
                raise ValueError(f"{node.path}: gate {g} matrices do not match "
                                 f"{hidden} hidden units and {features} features")
        return [Value(node.outputs[0], (hidden,), "int16")]

    # -- quantization ------------------------------------------------------------------------
    def quantize_tensors(self, node: Node, formats: dict[str, int], bits: int) -> dict[str, int]:
        """Quantize normalisation, matrices and biases into ``node.q``; the shifts that rescale
        each into its target format (``formats`` has ``input``, ``normalized``, ``state`` and
        every target)."""
        t, q = node.weights, node.q
        q["input_mean"], q["input_inv_std"] = quantize_normalization(
            t["input_mean"], t["input_std"], formats["input"])
        shifts = {"normalize": formats["input"] + q["input_inv_std"].frac_bits
                  - formats["normalized"]}
        for name in (*self.matrices, *(f"bias_{b}" for b in self.biases)):
            q[name] = quantize_weight(t[name], bits)
            source = {"W": formats["normalized"], "U": formats["state"]}.get(name[0], 0)
            shifts[name] = q[name].frac_bits + source - formats[self.targets[name]]
        return shifts

    def calibrated_formats(self, inputs: list[Value], ranges, keys: tuple[str, ...]
                           ) -> dict[str, int]:
        """Q-formats of the input and of every calibrated intermediate in ``keys``."""
        return {"input": inputs[0].frac_bits,
                **{key: activation_format(ranges(key)) for key in keys}}

    # -- integer spec helpers ----------------------------------------------------------------
    def rescaled_biases(self, node: Node) -> dict[str, np.ndarray]:
        """Every bias read in its target format: ``shift_round(b, s_b)``."""
        return {b: shift_round(node.q[f"bias_{b}"].values, node.consts[f"shift_bias_{b}"])
                for b in self.biases}

    def gate_projection(self, node: Node, gate: str, xn: np.ndarray, h: np.ndarray
                        ) -> np.ndarray:
        q, k = node.q, node.consts
        return project(xn, h, q[f"W_{gate}"].values, q[f"U_{gate}"].values,
                       k[f"shift_W_{gate}"], k[f"shift_U_{gate}"])

    # -- accounting --------------------------------------------------------------------------
    def buffers(self, node, inputs, outputs):
        hidden = outputs[0].shape[0]
        out = [Buffer("xn", "int16", inputs[0].shape[1]), Buffer("preact", "int32", 4 * hidden)]
        out += [Buffer(name, "int16", hidden) for name in self.state_buffers]
        if node.attrs["readout"] == "mean":
            out.append(Buffer("sum", "int32", hidden))
        return out

    def storage(self, node):
        q = node.q
        out = {"input_mean": {"format": "dense", "bytes": q["input_mean"].nbytes, "bits": 16},
               "input_inv_std": {"format": "dense", "bytes": vector_bytes(q["input_inv_std"]),
                                 "bits": 16}}
        for name in self.matrices:
            out[name] = matrix_storage(q[name])
        for b in self.biases:
            out[f"bias_{b}"] = {"format": "dense", "bytes": vector_bytes(q[f"bias_{b}"]),
                                "bits": q[f"bias_{b}"].bits}
        return out

    def macs(self, node, inputs, outputs):
        steps, features = inputs[0].shape
        hidden = outputs[0].shape[0]
        per_step = features + sum(int(np.count_nonzero(node.q[n].values)) for n in self.matrices)
        per_step += ELEMENTWISE_MACS * hidden
        per_step += hidden if node.attrs["readout"] == "mean" else 0
        return steps * per_step

    # -- C -------------------------------------------------------------------------------------
    def emit_tensors(self, node: Node, inputs: list[Value], c: EmitContext
                     ) -> tuple[list[str], dict[str, str]]:
        """Constant arrays of the op and the initializers of its params struct's common
        fields (readout, sizes, normalisation, ``w``/``u`` matrix pointers, ``bias`` vectors)."""
        q, k = node.q, node.consts
        steps, features = inputs[0].shape
        parts = [c_array("int16_t", c.symbol("input_mean"), q["input_mean"].values),
                 c_array("int16_t", c.symbol("input_inv_std"), q["input_inv_std"].values)]
        for name in self.matrices:
            parts.append(emit_matrix(c.symbol(name), q[name], k[f"shift_{name}"]).text)
        vectors = []
        for b in self.biases:
            text, initializer = emit_vector(c.symbol(f"bias_{b}"), q[f"bias_{b}"],
                                            k[f"shift_bias_{b}"])
            parts.append(text)
            vectors.append(initializer)
        fields = {
            "readout": f"KL_READOUT_{node.attrs['readout'].upper()}",
            "hidden_size": q[f"U_{self.gates[0]}"].values.shape[0],
            "steps": steps,
            "norm": (f"{{ {c.symbol('input_mean')}, {c.symbol('input_inv_std')}, {features}, "
                     f"{k['shift_normalize']} }}"),
            "w": "{ " + ", ".join(f"&{c.symbol(f'W_{g}')}" for g in self.gates) + " }",
            "u": "{ " + ", ".join(f"&{c.symbol(f'U_{g}')}" for g in self.gates) + " }",
            "bias": "{ " + ", ".join(vectors) + " }",
        }
        return parts, fields

    def emit_params_and_call(self, node: Node, inputs: list[Value], outputs: list[Value],
                             c: EmitContext, parts: list[str], fields: dict[str, object]
                             ) -> tuple[str, str]:
        """The params struct (``<prefix>_params_t``) and the kernel call with its buffers."""
        prefix = self.c_prefix
        members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
        parts.append(f"static const {prefix}_params_t {c.symbol('params')} = {{\n"
                     f"{members},\n}};\n")
        names = [b.name for b in self.buffers(node, inputs, outputs)]
        lines = [f"        buffers.{name} = {c.buffer(name) if name in names else '0'};\n"
                 for name in ("xn", "preact", *self.state_buffers, "sum")]
        call = (f"    {{\n        {prefix}_buffers_t buffers;\n" + "".join(lines)
                + f"        {prefix}_s16(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"&buffers, {c.pointer(node.outputs[0])});\n    }}\n")
        return "\n".join(parts), call


def inv_steps(steps: int) -> int:
    """``round(2**30 / steps)``, the mean readout's reciprocal."""
    return round((1 << INV_STEPS_FRAC_BITS) / steps)
