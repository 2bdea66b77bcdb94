"""Shared pieces of the convolution op tests: integer parameters drawn over their whole range
(so that every shift class and saturation is reached), extreme inputs, and the float check
against torch."""

import numpy as np
import torch

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor

from .op_harness import quantize_node, single_op_graph


def random_weights(rng: np.random.Generator, shape: tuple[int, ...], bits: int,
                   keep: float = 1.0, frac_bits: int = 6) -> QTensor:
    """Integer weights over the whole ``bits``-bit range, about ``keep`` of them nonzero."""
    limit = 1 << (bits - 1)
    values = rng.integers(-limit, limit, size=shape)
    if keep < 1.0:
        values = values * (rng.random(shape) < keep)
    return QTensor(values.astype(np.int64), frac_bits, bits)


def set_output_stage(node: Node, rng: np.random.Generator, channels: int, bits: int,
                     shift_bias: int, limits: tuple[int, int]) -> None:
    """A random bias, its shift and the clamp limits of the shared output stage."""
    node.q["bias"] = random_weights(rng, (channels,), bits)
    node.consts.update(shift_bias=shift_bias, act_min=limits[0], act_max=limits[1])


def extreme_inputs(steps: int, channels: int, count: int, seed: int) -> np.ndarray:
    """int16 ``[4 + count, steps, channels]``: all -32768, all 32767, zeros, alternating
    extremes, then random values over the whole range."""
    rng = np.random.default_rng(seed)
    shape = (steps, channels)
    fixed = [np.full(shape, -32768), np.full(shape, 32767), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)]
    return np.concatenate([np.stack(fixed), rng.integers(-32768, 32768, size=(count, *shape))
                           ]).astype(np.int16)


def torch_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, pad_left: int,
               pad_right: int, groups: int = 1) -> np.ndarray:
    """``relu(conv1d(x))`` by torch in float64 for time-major ``x`` ``[N, T, C]``."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).transpose(1, 2)
    xt = torch.nn.functional.pad(xt, (pad_left, pad_right))
    y = torch.nn.functional.conv1d(xt, torch.from_numpy(weight), torch.from_numpy(bias),
                                   stride=stride, groups=groups)
    return torch.relu(y).transpose(1, 2).numpy()


def quantized_error(node: Node, X: np.ndarray, input_frac_bits: int, bits: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(float output, simulated output as floats)`` of ``node`` on float ``X`` after the
    op's own quantization rule, calibrated on ``X``."""
    graph = single_op_graph(node, X.shape[1:], input_frac_bits=input_frac_bits, bits=bits)
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)[graph.output]
    quantize_node(graph, ranges, bits)
    x = np.clip(np.round(X * 2.0 ** input_frac_bits), -32768, 32767).astype(np.int16)
    integer = simulate(graph, x) * 2.0 ** -graph.values[graph.output].frac_bits
    return floats, integer
