"""The streaming form of a quantized ShaRNN graph: the integer spec of a sliding window that
moves by one brick and reuses the summaries of the bricks it already read.

``ShaRNNStream(graph).push(frame)`` takes one int16 frame ``[F]`` in the graph's input
Q-format. Every ``k`` frames the lower recurrent op reads the new brick once (the inner op's
spec on ``[1, k, F]``) and its summary enters a ring of the last ``n = T/k``; once the ring is
full, each new brick runs the rest of the graph (the upper recurrent op, the head) on the ring
and returns the int32 logits, else ``None``. The logits equal :func:`kiloml.ir.simulate` on
the window of the last ``T`` frames, integer for integer: a brick's summary depends on its own
frames only.
"""

from collections import deque

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ops import get_op
from kiloml.ops.base import Value


class ShaRNNStream:
    """See the module docstring."""

    def __init__(self, graph: Graph):
        first = graph.nodes[0] if graph.nodes else None
        if first is None or not first.op.startswith("bricks_"):
            raise KilomlError("a stream needs a ShaRNN graph (its first node runs over bricks)")
        self.graph, self.node = graph, first
        self.brick = first.attrs["brick"]
        x = graph.values[graph.input]
        self.features = x.shape[1]
        self.bricks = x.shape[0] // self.brick
        out = graph.values[first.outputs[0]]
        self._in = [Value(x.name, (self.brick, self.features), x.dtype, x.frac_bits)]
        self._out = [Value(out.name, out.shape[1:], out.dtype, out.frac_bits)]
        self.frames: list[np.ndarray] = []
        self.summaries: deque[np.ndarray] = deque(maxlen=self.bricks)

    def push(self, frame) -> np.ndarray | None:
        """Logits ``[C]`` (int64) when ``frame`` completes a brick of a full window, else
        ``None``; a frame of the wrong size or outside int16 is a one-line error."""
        frame = np.asarray(frame)
        if frame.shape != (self.features,):
            raise KilomlError(f"a frame must hold {self.features} values, got shape "
                              f"{list(frame.shape)}")
        if frame.dtype.kind not in "iu" or frame.min() < -32768 or frame.max() > 32767:
            raise KilomlError("a frame must hold int16 values in the graph's input format")
        self.frames.append(frame.astype(np.int64))
        if len(self.frames) < self.brick:
            return None
        brick = np.stack(self.frames)[None]
        self.frames = []
        inner = get_op(self.node.op.removeprefix("bricks_"))
        self.summaries.append(inner.simulate(self.node, [brick], self._in, self._out)[0][0])
        if len(self.summaries) < self.bricks:
            return None
        values = {self.node.outputs[0]: np.stack(self.summaries)[None]}
        for node in self.graph.nodes[1:]:
            inputs, outputs = self.graph.node_values(node)
            results = get_op(node.op).simulate(node, [values[n] for n in node.inputs], inputs,
                                               outputs)
            values.update(zip(node.outputs, results, strict=True))
        return values[self.graph.output][0]
