"""Graphs of one ``gru`` or ``lstm`` node lowered from a torch module, with parameters drawn to
reach every branch of their kernels, and the inputs and torch outputs their tests compare."""

import numpy as np
import torch
from torch import nn

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower
from kiloml.ir.simulate import simulate
from kiloml.nn.classifier import ModelConfig, SequenceClassifier, build_model

from .op_harness import quantize_node


def torch_rnn(kind: str, features: int, hidden: int, seed: int, bias: bool = True
              ) -> nn.Module:
    """A float64 ``nn.GRU``/``nn.LSTM`` (batch first) whose gates' weights have very different
    magnitudes (so their power-of-two scales differ)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = {"gru": nn.GRU, "lstm": nn.LSTM}[kind](features, hidden, batch_first=True,
                                                     bias=bias).double()
    gates = 3 if kind == "gru" else 4
    with torch.no_grad():
        for param in module.parameters():
            for gate in range(gates):
                rows = param[gate * hidden:(gate + 1) * hidden]
                rows.mul_(2.0 ** rng.uniform(-2, 2))
    return module


def one_node_graph(module: nn.Module, steps: int, readout: str, seed: int,
                   input_frac_bits: int = 8) -> Graph:
    """The float graph ``x [steps, F] -> module (with a per-feature normalisation) -> h [H]``."""
    rng = np.random.default_rng(seed)
    features = module.input_size
    graph = Graph(meta={"kind": type(module).__name__.lower(), "num_classes": 0,
                        "frame_stack": 1})
    graph.add_input("x", (steps, features))
    graph.values["x"].frac_bits = input_frac_bits
    normalization = (rng.normal(size=features) * 4, rng.uniform(0.25, 8.0, size=features))
    [out] = lower(module, "rnn", graph, ["x"], readout=readout, normalization=normalization)
    graph.set_output(out)
    graph.meta["num_classes"] = graph.values[out].count
    return graph


def quantize_with_ranges(graph: Graph, ranges: dict[str, float], bits: int) -> Graph:
    """Quantize the graph's node by its own rule with chosen calibration ranges."""
    graph.meta["bits"] = bits
    quantize_node(graph, ranges, bits)
    return graph


def quantize_calibrated(graph: Graph, X: np.ndarray, bits: int) -> Graph:
    """Quantize the graph's node with ranges calibrated on float inputs ``X``."""
    ranges: dict[str, float] = {}
    run_float(graph, X, ranges)
    return quantize_with_ranges(graph, {k.split(".")[-1]: v for k, v in ranges.items()}, bits)


def integer_state(graph: Graph, X: np.ndarray) -> np.ndarray:
    """The quantized node's output for float inputs ``X`` (rounded to the input's Q-format),
    as real numbers."""
    x = np.clip(np.round(X * 2.0 ** graph.values["x"].frac_bits), -32768, 32767)
    out = simulate(graph, x.astype(np.int16))
    return out * 2.0 ** -graph.values[graph.output].frac_bits


def random_ranges(keys: tuple[str, ...], seed: int) -> dict[str, float]:
    """Calibration ranges from 2**-8 to 2**14: Q-formats across Q0..Q20."""
    rng = np.random.default_rng(seed)
    return {key: float(2.0 ** rng.uniform(-8, 14)) for key in keys}


def saturate_weights(graph: Graph) -> None:
    """Every stored weight and bias at its largest magnitude with alternating signs, so that
    pre-activations, gate inputs, cell and state saturate."""
    for name, tensor in graph.nodes[0].q.items():
        if name.startswith(("W_", "U_", "bias_")):
            limit = (1 << (tensor.bits - 1)) - 1
            signs = np.where(np.indices(tensor.values.shape).sum(0) % 2 == 0, 1, -1)
            tensor.values = signs * limit


def extreme_inputs(steps: int, features: int, count: int, seed: int) -> np.ndarray:
    """All-minimum, all-maximum, zero and alternating-extreme sequences, then random int16."""
    rng = np.random.default_rng(seed)
    shape = (steps, features)
    fixed = [np.full(shape, -32768), np.full(shape, 32767), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)]
    return np.concatenate([np.stack(fixed), rng.integers(-32768, 32768, size=(count, *shape))
                           ]).astype(np.int16)


def calibration_inputs(graph: Graph, count: int, seed: int) -> np.ndarray:
    """Float inputs ``[count, T, F]`` around the normalisation's mean and spread."""
    rng = np.random.default_rng(seed)
    node = graph.nodes[0]
    steps, features = graph.values["x"].shape
    noise = rng.normal(size=(count, steps, features))
    return node.weights["input_mean"] + noise * node.weights["input_std"]


def torch_readout(module: nn.Module, graph: Graph, X: np.ndarray, readout: str) -> np.ndarray:
    """What the node computes, by torch: the module on normalised ``X``, last or mean state."""
    node = graph.nodes[0]
    xn = (X - node.weights["input_mean"]) / node.weights["input_std"]
    with torch.no_grad():
        out, _ = module(torch.from_numpy(xn))
    return (out.mean(1) if readout == "mean" else out[:, -1]).numpy()


def random_classifier(kind: str, count: int, steps: int, seed: int
                      ) -> tuple[SequenceClassifier, np.ndarray]:
    """A ``SequenceClassifier`` (hidden 32, 7 classes) with random weights and its
    normalisation fitted on ``count`` raw sequences ``[count, steps, 6]`` of very different
    per-feature scales, returned with them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, steps, 6)) * [1.0, 2.0, 3.0, 50.0, 60.0, 70.0] + [0, 1, 9, 0, 0, 5]
    torch.manual_seed(seed)
    model = build_model(ModelConfig(kind=kind, input_size=6, num_classes=7, hidden_size=32))
    flat = torch.from_numpy(X.reshape(-1, 6))
    model.set_normalization(flat.mean(0), flat.std(0))
    return model.eval(), X.astype(np.float32)
