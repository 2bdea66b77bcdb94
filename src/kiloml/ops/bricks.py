"""A recurrent op run over each brick of ``k`` consecutive steps, from a zero state each time:
ShaRNN's lower RNN (Dennis et al., NeurIPS 2019).

Input ``x`` int16 ``[T, F]`` (``T = n k``); output the bricks' readouts int16 ``[n, H]`` in
Q(state). Integer spec: brick ``b`` (rows ``b k .. b k + k - 1``) goes through the inner op's
spec (``fastrnn``, ``gru`` or ``lstm``: per-step normalisation, the recurrence from ``h0 = 0``,
the readout over the brick's ``k`` steps), integer for integer, and its readout is row ``b``.
The C is the inner kernel called once per brick on ``x + b k F`` and ``y + b H`` with one set
of constants, so a brick costs what a ``k``-step sequence costs and the flash is the inner
op's. The ops are ``bricks_fastrnn``, ``bricks_gru`` and ``bricks_lstm``; the node's attrs and
weights are the inner op's plus ``brick`` (``k``).
"""

from typing import ClassVar

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, get_op, register
from kiloml.ops.fastgrnn import FastRNNOp
from kiloml.ops.gru import GRUOp
from kiloml.ops.lstm import LSTMOp


class BricksOp(Op):
    """The inner op ``inner`` over bricks (see the module docstring)."""

    inner: ClassVar[str] = ""

    def _inner(self) -> Op:
        return get_op(self.inner)

    @staticmethod
    def _brick_values(node: Node, inputs: list[Value], outputs: list[Value] | None = None
                      ) -> tuple[list[Value], list[Value]]:
        """The inner op's view: one brick ``[k, F]`` in, one readout ``[H]`` out."""
        k = node.attrs["brick"]
        x = inputs[0]
        brick_in = [Value(x.name, (k, x.shape[1]), x.dtype, x.frac_bits, x.storage)]
        brick_out = [Value(v.name, v.shape[1:], v.dtype, v.frac_bits, v.storage)
                     for v in outputs or []]
        return brick_in, brick_out

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, _ = inputs[0].shape
        k = node.attrs["brick"]
        if k < 1 or steps % k:
            raise KilomlError(f"{node.path}: brick size {k} must divide the {steps} steps")
        out = self._inner().infer(node, self._brick_values(node, inputs)[0])[0]
        return [Value(out.name, (steps // k, *out.shape), out.dtype)]

    def float_forward(self, node, inputs, record):
        x = np.asarray(inputs[0], dtype=np.float64)
        batch, steps, features = x.shape
        n = steps // node.attrs["brick"]
        out = self._inner().float_forward(node, [x.reshape(batch * n, -1, features)], record)[0]
        return [out.reshape(batch, n, -1)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        brick_in, brick_out = self._brick_values(node, inputs, outputs)
        self._inner().quantize(node, brick_in, brick_out, ranges, bits)
        outputs[0].frac_bits = brick_out[0].frac_bits

    def simulate(self, node, inputs, in_values, out_values):
        x = np.asarray(inputs[0], dtype=np.int64)
        batch, steps, features = x.shape
        n = steps // node.attrs["brick"]
        brick_in, brick_out = self._brick_values(node, in_values, out_values)
        out = self._inner().simulate(node, [x.reshape(batch * n, -1, features)], brick_in,
                                     brick_out)[0]
        return [out.reshape(batch, n, -1)]

    def buffers(self, node, inputs, outputs):
        return self._inner().buffers(node, *self._brick_values(node, inputs, outputs))

    def storage(self, node):
        return self._inner().storage(node)

    def flash_bytes(self, node):
        return self._inner().flash_bytes(node)

    def macs(self, node, inputs, outputs):
        n = outputs[0].shape[0]
        return n * self._inner().macs(node, *self._brick_values(node, inputs, outputs))

    def c_switches(self, node: Node) -> set[str]:
        return self._inner().c_switches(node)

    def emit(self, node: Node, inputs: list[Value], outputs: list[Value],
             c: EmitContext) -> Emitted:
        k, features = node.attrs["brick"], inputs[0].shape[1]
        n, hidden = outputs[0].shape
        strides = {node.inputs[0]: k * features, node.outputs[0]: hidden}

        def pointer(name: str) -> str:
            base = c.pointer(name)
            return f"({base}) + brick * {strides[name]}" if name in strides else base

        inner = EmitContext(node, c.symbol, pointer, c.buffer)
        emitted = self._inner().emit(node, *self._brick_values(node, inputs, outputs), inner)
        body = "".join(f"    {line}" if line else line
                       for line in emitted.call.splitlines(keepends=True))
        call = (f"    {{\n        int brick;\n        for (brick = 0; brick < {n}; ++brick) "
                f"{{\n{body}        }}\n    }}\n")
        return Emitted(emitted.definitions, call)


for _inner in (FastRNNOp, GRUOp, LSTMOp):
    register(type(f"Bricks{_inner.__name__}", (BricksOp,),
                  {"name": f"bricks_{_inner.name}", "inner": _inner.name,
                   "c_files": _inner.c_files, "__doc__": BricksOp.__doc__}))
