"""The integer simulator: runs a quantized graph with every op's integer spec. It is the
specification of the generated C, integer for integer."""

import numpy as np

from kiloml.ir.graph import Graph
from kiloml.ops import get_op


def simulate_values(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every value (int64, batch-first) for integer inputs ``x`` ``[N, *input shape]``."""
    x = np.asarray(x)
    shape = graph.values[graph.input].shape
    if x.shape[1:] != shape:
        raise ValueError(f"expected integer input [N, {', '.join(map(str, shape))}], "
                         f"got {list(x.shape)}")
    values = {graph.input: x.astype(np.int64)}
    for node in graph.nodes:
        inputs, outputs = graph.node_values(node)
        results = get_op(node.op).simulate(node, [values[n] for n in node.inputs], inputs,
                                           outputs)
        for name, value in zip(node.outputs, results, strict=True):
            values[name] = value
    return values


def simulate(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The output value (e.g. int32 logits ``[N, C]``) for integer inputs ``x``."""
    return simulate_values(graph, x)[graph.output]
