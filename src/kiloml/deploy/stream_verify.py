"""Run the streaming C API of a ShaRNN or EMI-FastGRNN export (``harness/stream_main.c``) on
whole streams and give what it decided, in the form :func:`simulate_stream` gives the integer
spec's decisions.

A decision is ``(stream, frame, class, logits)``: the push of ``frame`` (0-based) in
``stream`` returned ``class`` and wrote ``logits``; pushes that returned ``KILOML_STREAM_NONE``
give none.
"""

import numpy as np

from kiloml.deploy.codegen import library_dir
from kiloml.deploy.early_exit import has_early_exit
from kiloml.deploy.targets import Build, RunOutput, run_records
from kiloml.errors import KilomlError
from kiloml.ir.early_exit import EMIStream
from kiloml.ir.graph import Graph
from kiloml.ir.stream import ShaRNNStream

Decision = tuple[int, int, int, tuple[int, ...]]


def stream_spec(graph: Graph) -> ShaRNNStream | EMIStream:
    """The integer streaming spec of ``graph``: a fresh :class:`EMIStream` for an
    EMI-FastGRNN graph, else a :class:`ShaRNNStream`."""
    return EMIStream(graph) if has_early_exit(graph) else ShaRNNStream(graph)


def simulate_stream(graph: Graph, streams: list[np.ndarray]) -> list[Decision]:
    """The decisions of the graph's streaming spec (:func:`stream_spec`) on every stream
    (int16 ``[L, F]`` each, a fresh stream state per stream); a ShaRNN's class is the first
    arg-max, as ``kl_argmax`` picks it, an EMI-FastGRNN's the window's class."""
    decisions = []
    for s, frames in enumerate(streams):
        stream = stream_spec(graph)
        for t, frame in enumerate(frames):
            out = stream.push(frame)
            if out is None:
                continue
            cls, logits = out if isinstance(stream, EMIStream) else (int(np.argmax(out)), out)
            decisions.append((s, t, int(cls), tuple(int(v) for v in logits)))
    return decisions


def run_stream(build: Build, streams: list[np.ndarray], width: int, poison: int | None = None,
               count_instructions: bool = False) -> tuple[list[Decision], RunOutput]:
    """``(decisions, run)`` of the built export on every stream (int16 ``[L, F]`` each);
    ``width`` is the number of logits; with ``count_instructions`` (Cortex-M) ``run``
    holds the instructions of every push, streams one after another."""
    records = [np.ascontiguousarray(frames, dtype="<i2").tobytes() for frames in streams]
    output = run_records(build, library_dir() / "harness" / "stream_main.c", records, poison,
                         "kiloml_stream_push" if count_instructions else None)
    decisions = []
    for line in output.lines:
        if line.startswith("l "):
            values = [int(v) for v in line.split()[1:]]
            if len(values) != width + 3:
                raise KilomlError(f"stream harness printed a line without {width} logits")
            decisions.append((values[0], values[1], values[2], tuple(values[3:])))
    return decisions, output
