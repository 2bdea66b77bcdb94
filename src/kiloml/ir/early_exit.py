"""The streaming form of a quantized EMI-FastGRNN graph with early exit: the integer spec of
``kiloml_stream_push`` for EMI exports (:mod:`kiloml.deploy.early_exit`).

The graph reads one instance of ``W`` frames (FastGRNN, head, arg-max; ``meta["early_exit"]``
holds ``width`` W, ``stride`` s, ``instances`` I per window, exit ``threshold`` p and the
``noise`` class). ``EMIStream(graph).push(frame)`` keeps the last ``W`` int16 frames; once
``W`` frames are in and then every ``s`` frames, it reads the instance of the last ``W``
frames step by step from a zero state (the recurrent op's spec one step at a time, then the
head) and **stops at the first step whose integer logits pass the exit test**:
``top - runner_up >= M`` with ``M = ceil(ln(p / (1 - p)) * 2**f)`` decided at export for
logits in Q(f) (:func:`exit_margin`; the float test ``z_top - z_2 >= ln(p / (1 - p))`` on the
dequantized logits, exactly; see :func:`kiloml.nn.emi.exit_steps` for how it relates to the
top probability). The instance's class is the arg-max at that step (the first on ties); once
``I`` instances are in, each new one gives the window's class, the longest run of the last
``I`` instances' classes (:func:`kiloml.nn.emi.longest_run`), with the exiting instance's
logits. The window decided on is the last ``(I - 1) s + W`` frames.
"""

import math
from collections import deque

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.nn.emi import longest_run
from kiloml.ops import get_op

#: The margin of a threshold of 1 (never exit early): above any difference of int32 logits.
NEVER_EXIT = 1 << 40


def instances(x: np.ndarray, width: int, stride: int) -> np.ndarray:
    """The instances ``[N * I, width, F]`` of windows ``[N, T, F]`` (instance ``i`` of a
    window: steps ``i * stride`` to ``i * stride + width - 1``), windows one after another."""
    x = np.asarray(x)
    if width > x.shape[1]:
        raise KilomlError(f"instance width {width} is longer than the {x.shape[1]}-step windows")
    count = 1 + (x.shape[1] - width) // stride
    index = np.arange(count)[:, None] * stride + np.arange(width)[None, :]
    return x[:, index].reshape(-1, width, *x.shape[2:])


def exit_margin(threshold: float, frac_bits: int) -> int:
    """``M = ceil(ln(p / (1 - p)) * 2**frac_bits)``, :data:`NEVER_EXIT` for ``p = 1``."""
    if threshold >= 1.0:
        return NEVER_EXIT
    return math.ceil(math.log(threshold / (1.0 - threshold)) * 2.0 ** frac_bits)


def early_exit_settings(graph: Graph) -> dict:
    """``meta["early_exit"]`` with ``margin`` (:func:`exit_margin` in the logits' format)."""
    settings = graph.meta.get("early_exit")
    if settings is None:
        raise KilomlError("early exit needs an EMI-FastGRNN graph")
    frac_bits = graph.values[graph.output].frac_bits
    return dict(settings, margin=exit_margin(settings["threshold"], frac_bits))


def step_logits(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Integer logits after every step ``[N, W, C]`` of int16 instances ``x`` ``[N, W, F]``
    (the recurrent op's spec one step at a time from a zero state, then the head)."""
    rnn, head = graph.nodes[0], graph.nodes[1]
    op, head_op = get_op(rnn.op), get_op(head.op)
    head_in, head_out = graph.node_values(head)
    xn = op.normalize(rnn, x)
    h = np.zeros((xn.shape[0], graph.values[rnn.outputs[0]].shape[0]), dtype=np.int64)
    out = []
    for t in range(xn.shape[1]):
        h = op.step(rnn, xn[:, t], h)
        out.append(head_op.simulate(head, [h], head_in, head_out)[0])
    return np.stack(out, axis=1)


def read_instances(graph: Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes [N], steps read [N], logits at the exit step [N, C])`` of int16 instances
    ``x`` ``[N, W, F]`` with the graph's exit test: each instance is read one step at a time
    and no step after its exit step is computed (:func:`kiloml.nn.emi.exit_steps` on
    :func:`step_logits` gives the same)."""
    rnn, head = graph.nodes[0], graph.nodes[1]
    op, head_op = get_op(rnn.op), get_op(head.op)
    head_in, head_out = graph.node_values(head)
    margin = early_exit_settings(graph)["margin"]
    xn = op.normalize(rnn, x)
    count, width = xn.shape[:2]
    h = np.zeros((count, graph.values[rnn.outputs[0]].shape[0]), dtype=np.int64)
    classes = np.zeros(count, dtype=np.int64)
    steps = np.zeros(count, dtype=np.int64)
    logits = np.zeros((count, graph.values[graph.output].count), dtype=np.int64)
    reading = np.arange(count)
    for t in range(width):
        h[reading] = op.step(rnn, xn[reading, t], h[reading])
        z = head_op.simulate(head, [h[reading]], head_in, head_out)[0]
        top2 = np.sort(z, axis=1)[:, -2:]
        stopped = (top2[:, 1] - top2[:, 0] >= margin) | (t == width - 1)
        done = reading[stopped]
        classes[done] = z[stopped].argmax(axis=1)
        steps[done], logits[done] = t + 1, z[stopped]
        reading = reading[~stopped]
        if not len(reading):
            break
    return classes, steps, logits


class EMIStream:
    """See the module docstring; ``steps`` lists the steps read of every instance."""

    def __init__(self, graph: Graph):
        s = early_exit_settings(graph)
        self.graph = graph
        self.width, self.stride, self.noise = s["width"], s["stride"], s["noise"]
        self.features = graph.values[graph.input].shape[1]
        self.frames: deque[np.ndarray] = deque(maxlen=self.width)
        self.classes: deque[int] = deque(maxlen=s["instances"])
        self.pending = self.width
        self.steps: list[int] = []

    def push(self, frame) -> tuple[int, np.ndarray] | None:
        """``(window class, exiting instance's logits [C] int64)`` when ``frame`` completes an
        instance of a full window, else ``None``; a frame of the wrong size or outside int16
        is a one-line error."""
        self.frames.append(check_frame(frame, self.features))
        self.pending -= 1
        if self.pending:
            return None
        self.pending = self.stride
        classes, steps, logits = read_instances(self.graph, np.stack(self.frames)[None])
        self.steps.append(int(steps[0]))
        self.classes.append(int(classes[0]))
        if len(self.classes) < self.classes.maxlen:
            return None
        return longest_run(list(self.classes), self.noise), logits[0]


def check_frame(frame, features: int) -> np.ndarray:
    """``frame`` as int64 ``[features]``; one-line errors for another size or non-int16
    values."""
    frame = np.asarray(frame)
    if frame.shape != (features,):
        raise KilomlError(f"a frame must hold {features} values, got shape {list(frame.shape)}")
    if frame.dtype.kind not in "iu" or frame.min() < -32768 or frame.max() > 32767:
        raise KilomlError("a frame must hold int16 values in the graph's input format")
    return frame.astype(np.int64)
