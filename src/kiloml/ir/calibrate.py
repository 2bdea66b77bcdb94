"""Calibration: run the float graph (every op's float64 ``float_forward``) on calibration data
and record the largest magnitude of every value and of every op's intermediates.

Keys are value names (``x``, ``logits``, ...) and ``<node>.<intermediate>`` for what an op
records inside itself (``rnn.preactivation``, ...). The float graph is also what the common
checks compare with the torch model.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ops import get_op


def run_float(graph: Graph, x: np.ndarray, ranges: dict[str, float] | None = None
              ) -> dict[str, np.ndarray]:
    """Every value of the float graph for inputs ``x`` ``[N, *input shape]`` (float64); with
    ``ranges``, the largest magnitudes are recorded into it (kept across calls)."""
    record_into = ranges if ranges is not None else {}

    def note(key: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.size:
            record_into[key] = max(record_into.get(key, 0.0), float(np.abs(value).max()))

    values = {graph.input: np.asarray(x, dtype=np.float64)}
    note(graph.input, values[graph.input])
    for node in graph.nodes:
        op = get_op(node.op)
        outputs = op.float_forward(node, [values[n] for n in node.inputs],
                                   lambda key, value, node=node: note(f"{node.name}.{key}", value))
        for name, value in zip(node.outputs, outputs, strict=True):
            values[name] = value
            if graph.values[name].storage != "return":
                note(name, value)
    return values


def calibrate(graph: Graph, x: np.ndarray) -> dict[str, float]:
    """Ranges of every value and intermediate over calibration inputs ``x``
    ``[N, *input shape]`` (raw features, frames already stacked as the graph's input)."""
    x = np.asarray(x, dtype=np.float64)
    shape = graph.values[graph.input].shape
    if x.shape[1:] != shape or not len(x):
        raise KilomlError(f"calibration data must be [N, {', '.join(map(str, shape))}], "
                          f"got {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise KilomlError("calibration data contains NaN or infinite values")
    ranges: dict[str, float] = {}
    run_float(graph, x, ranges)
    return ranges
