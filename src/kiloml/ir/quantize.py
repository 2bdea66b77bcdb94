"""The generic quantizer: a float graph and calibration ranges → the integer graph.

The input value's Q-format comes from its calibrated range (int16, Q0..Q20 with headroom);
every node then applies its op's quantization rule in execution order, which fixes the node's
integer tensors and constants and the Q-formats of its outputs. ``bits`` (8 or 16) is the
weight width; activations are int16, outputs such as logits int32.
"""

import copy

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.nn.classifier import stack_frames
from kiloml.ops import get_op
from kiloml.ops.fixed import WEIGHT_BITS, activation_format, saturate


def quantize_graph(graph: Graph, ranges: dict[str, float], bits: int = 16) -> Graph:
    """A quantized copy of ``graph`` (see the module docstring)."""
    if bits not in WEIGHT_BITS:
        raise KilomlError(f"weight bits must be 8 or 16, got {bits}")
    q = copy.deepcopy(graph)
    q.meta["bits"] = bits
    q.values[q.input].frac_bits = activation_format(ranges.get(q.input, 0.0))
    for node in q.nodes:
        def lookup(key: str, node=node) -> float:
            return ranges.get(f"{node.name}.{key}", ranges.get(key, 0.0))

        inputs, outputs = q.node_values(node)
        node.q, node.consts = {}, {}
        get_op(node.op).quantize(node, inputs, outputs, lookup, bits)
    unset = [v.name for v in q.values.values() if v.frac_bits is None]
    if unset:
        raise KilomlError(f"quantization left values without a Q-format: {unset}")
    return q


def image_input(graph: Graph, X: np.ndarray) -> np.ndarray:
    """The float input of an image family's graph: kiloml's image rows ``[N, H, W·C]`` (or
    ``[N, C, H, W]``) as ``[N, C, H, W]`` minus the per-channel mean
    ``graph.meta["input_offset"]``; other graphs' inputs as they are."""
    X = np.asarray(X, dtype=np.float64)
    if not graph.meta.get("image_rows"):
        return X
    channels, height, width = graph.values[graph.input].shape
    if X.ndim == 3 and X.shape[1:] == (height, width * channels):
        X = X.reshape(len(X), height, width, channels).transpose(0, 3, 1, 2)
    if X.shape[1:] != (channels, height, width):
        raise KilomlError(f"the model takes images [N, {channels}, {height}, {width}] (or rows "
                          f"[N, {height}, {width * channels}]), got {list(X.shape)}")
    offset = np.asarray(graph.meta.get("input_offset", np.zeros(channels)), dtype=np.float64)
    return X - offset[None, :, None, None]


def quantize_input(graph: Graph, X: np.ndarray) -> np.ndarray:
    """Raw features ``X`` ``[..., T, F]`` → the graph's int16 input ``[..., T/k, k*F]`` in
    its Q-format (frames stacked by the graph's ``frame_stack`` k): what the C takes. An image
    family's rows become ``[N, C, H, W]`` minus the channel means first (:func:`image_input`)."""
    X = stack_frames(image_input(graph, X), graph.meta.get("frame_stack", 1))
    scaled = np.round(X * 2.0 ** graph.values[graph.input].frac_bits)
    return saturate(scaled.astype(np.int64), 16).astype(np.int16)


def dequantize_output(graph: Graph, y: np.ndarray) -> np.ndarray:
    """Integer outputs (e.g. int32 logits) → float."""
    return np.asarray(y, dtype=np.float64) * 2.0 ** -graph.values[graph.output].frac_bits
