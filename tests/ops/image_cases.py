"""Shared pieces of the image (2-D, int8) op tests: nodes with integer parameters drawn over
their whole range (every requantization shift class, biases that saturate the int32 sum,
every activation clamp), extreme int8/int16 maps, and the float check against torch."""

import numpy as np
import torch

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor

from .op_harness import extreme_inputs, quantize_node, single_op_graph

#: Requantization shifts drawn per channel: the exact int64 path (1..32, the smallest, the
#: largest) and the 32-bit one (33..62).
SHIFTS = (1, 7, 20, 31, 32, 33, 38, 45, 62)
#: Clamp limits: none, ReLU, ReLU6 in Q4, an odd window.
LIMITS = {"none": (-128, 127), "relu": (0, 127), "relu6": (0, 96), "window": (-9, 40)}


def conv_node(op: str, weight_shape: tuple[int, ...], kernel=(1, 1), stride=(1, 1),
              padding=(0, 0, 0, 0), activation: str = "relu6", path: str = "layer",
              inputs: tuple[str, ...] = ("x",)) -> Node:
    """A node of ``op`` with zero float weights (the test sets ``node.q``)."""
    attrs = {"activation": activation}
    if op != "pointwise_conv2d":
        attrs.update(kernel=list(kernel), stride=list(stride), padding=list(padding))
    return Node("conv", op, list(inputs), ["y"], attrs,
                {"weight": np.zeros(weight_shape), "bias": np.zeros(weight_shape[0])}, path)


def random_stage(node: Node, rng: np.random.Generator, limits: str, sums_bound: int) -> None:
    """int8 weights over [-127, 127] (channel 0 all at -127), and per channel a bias, a
    multiplier and a shift: biases up to the int32 limits (so that ``sum + bias`` saturates)
    and around ``sums_bound``, shifts from :data:`SHIFTS` (both requantization paths in every
    layer of three or more channels), multipliers in [2**30, 2**31) with one tiny one."""
    shape = node.weights["weight"].shape
    squeeze = shape[1:] if node.op != "depthwise_conv2d" else shape[2:]
    if node.op == "pointwise_conv2d":
        squeeze = shape[1:2]
    channels = shape[0]
    weight = rng.integers(-127, 128, size=(channels, *squeeze))
    weight[0] = -127
    node.q["weight"] = QTensor(weight.astype(np.int64), 0, 8)
    bias = rng.integers(-sums_bound, sums_bound + 1, size=channels)
    bias[0] = -(1 << 31)
    if channels > 1:
        bias[1] = (1 << 31) - 1
    node.q["bias"] = QTensor(bias.astype(np.int64), 0, 32)
    mult = rng.integers(1 << 30, 1 << 31, size=channels)
    mult[-1] = 3
    node.q["mult"] = QTensor(mult.astype(np.int64), 0, 32)
    shifts = np.resize(rng.permutation(SHIFTS), channels)
    shifts[0] = 38  # channel 0's large sums reach both clamps on the 32-bit path
    if channels > 2:
        shifts[1:3] = (20, 36)
    node.q["shift"] = QTensor(shifts.astype(np.int64), 0, 8)
    node.consts.update(act_min=LIMITS[limits][0], act_max=LIMITS[limits][1])


def maps(shape: tuple[int, ...], count: int, seed: int, dtype=np.int8) -> np.ndarray:
    """``[4 + count, *shape]`` extreme then random maps of ``dtype``."""
    return extreme_inputs(shape, count, seed, dtype)


def graph_of(node: Node, shape: tuple[int, ...], dtype: str = "int8"):
    """A one-node graph on an input ``x`` of ``shape`` (Q4), output in Q4."""
    graph = single_op_graph(node, shape, input_frac_bits=4, input_dtype=dtype)
    graph.values["y"].frac_bits = 4
    return graph


def torch_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride, padding,
                 groups: int = 1) -> np.ndarray:
    """``conv2d`` by torch in float64 with ``padding`` ``[top, bottom, left, right]``."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    top, bottom, left, right = padding
    xt = torch.nn.functional.pad(xt, (left, right, top, bottom))
    return torch.nn.functional.conv2d(xt, torch.from_numpy(weight), torch.from_numpy(bias),
                                      stride=tuple(stride), groups=groups).numpy()


def quantized_error(node: Node, X: np.ndarray, input_frac_bits: int, dtype: str = "int8"
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """``(float output, simulated output as floats, the output's step 2**-out)`` of ``node``
    on ``X`` rounded to the input's Q-format (so that only the op's own rounding differs),
    after the op's quantization rule calibrated on it."""
    graph = single_op_graph(node, X.shape[1:], input_frac_bits=input_frac_bits,
                            input_dtype=dtype)
    info = np.iinfo(np.int8 if dtype == "int8" else np.int16)
    x = np.clip(np.round(X * 2.0 ** input_frac_bits), info.min, info.max).astype(np.int64)
    ranges: dict[str, float] = {}
    floats = run_float(graph, x * 2.0 ** -input_frac_bits, ranges)[graph.output]
    quantize_node(graph, ranges, 8)
    step = 2.0 ** -graph.values[graph.output].frac_bits
    return floats, simulate(graph, x) * step, step
