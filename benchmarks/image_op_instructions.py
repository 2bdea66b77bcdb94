"""Cortex-M instructions per MAC of the int8 image ops, one representative MobileNetV2-style
shape each: every op a one-node graph with random int8 weights and per-channel requantization
constants, generated and built like any export, run on random maps, its outputs checked
against the integer simulator, its ``kiloml_predict`` instructions counted under QEMU.

    python benchmarks/image_op_instructions.py [--target cortex-m4] [--inputs 2] [--quick]

Prints one row per op: shape, instructions (mean over the inputs), MACs (pooling: the values
it reads, window by window), instructions per MAC (per value read). ``--quick``: small shapes,
for the benchmark scripts' test.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import write_sources
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir.graph import Graph
from kiloml.ir.simulate import simulate_values
from kiloml.ops import get_op
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor

# name: op, input shape [C, H, W], input dtype, weight shape, attrs, residual
SHAPES = {
    "conv2d 3x3 stride 2 (stem, int16 input)": (
        "conv2d", (3, 32, 32), "int16", (16, 3, 3, 3),
        {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1, 1, 1]}, False),
    "depthwise 3x3 stride 1": (
        "depthwise_conv2d", (48, 16, 16), "int8", (48, 1, 3, 3),
        {"kernel": [3, 3], "stride": [1, 1], "padding": [1, 1, 1, 1]}, False),
    "depthwise 3x3 stride 2": (
        "depthwise_conv2d", (48, 16, 16), "int8", (48, 1, 3, 3),
        {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1, 1, 1]}, False),
    "pointwise 8 -> 48 (expansion)": (
        "pointwise_conv2d", (8, 16, 16), "int8", (48, 8, 1, 1), {}, False),
    "pointwise 48 -> 8 (projection)": (
        "pointwise_conv2d", (48, 16, 16), "int8", (8, 48, 1, 1), {}, False),
    "pointwise 16 -> 16 + residual": (
        "pointwise_conv2d", (16, 16, 16), "int8", (16, 16, 1, 1), {}, True),
    "avgpool 2x2 stride 2": (
        "avgpool2d", (32, 16, 16), "int8", None,
        {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0, 0, 0]}, False),
    "maxpool 3x3 stride 2": (
        "maxpool2d", (32, 16, 16), "int8", None,
        {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1, 1, 1]}, False),
    "global average pool": ("global_avgpool2d", (64, 8, 8), "int8", None, {}, False),
}


def op_graph(op: str, shape, dtype: str, weight_shape, attrs: dict, residual: bool,
             rng: np.random.Generator) -> Graph:
    """A one-node graph of ``op`` with random integer parameters (ReLU6 in Q4)."""
    weights, attrs = {}, dict(attrs)
    if weight_shape is not None:
        weights = {"weight": np.zeros(weight_shape), "bias": np.zeros(weight_shape[0])}
        attrs["activation"] = "relu6"
    inputs = ["x", "x"] if residual else ["x"]
    node = Node("op", op, inputs, ["y"], attrs, weights, op)
    graph = Graph(meta={"kind": op, "num_classes": 0, "bits": 8, "frame_stack": 1})
    graph.add_input("x", shape, dtype)
    graph.values["x"].frac_bits = 4
    graph.add_node(node)
    graph.set_output("y")
    graph.values["y"].frac_bits = 4
    graph.meta["num_classes"] = graph.values["y"].count
    if weight_shape is not None:
        channels = weight_shape[0]
        squeeze = weight_shape[2:] if op == "depthwise_conv2d" else weight_shape[1:]
        if op == "pointwise_conv2d":
            squeeze = weight_shape[1:2]
        node.q = {"weight": QTensor(rng.integers(-127, 128, (channels, *squeeze)), 0, 8),
                  "bias": QTensor(rng.integers(-1000, 1000, channels), 0, 32),
                  "mult": QTensor(rng.integers(1 << 30, 1 << 31, channels), 0, 32),
                  "shift": QTensor(rng.integers(38, 45, channels), 0, 8)}
        node.consts = {"act_min": 0, "act_max": 96}
        if residual:
            node.consts["shift_residual"] = 1
    elif op == "avgpool2d":
        node.consts = {"inv": round(2**30 / 4)}
    elif op == "global_avgpool2d":
        node.consts = {"inv": round(2**30 / (shape[1] * shape[2])), "shift": 20}
        graph.values["y"].frac_bits = 14
    return graph


def measure(graph: Graph, inputs: np.ndarray, target: str) -> float:
    """Mean instructions of ``kiloml_predict``; exits if C differs from the simulator."""
    expected = simulate_values(graph, inputs)["y"].reshape(len(inputs), -1)
    with tempfile.TemporaryDirectory() as folder:
        source_dir = Path(folder) / "src"
        write_sources(generate_model(graph, "image op"), source_dir)
        files = [p.name for p in source_dir.glob("kl_*.c")]
        sources = [source_dir / "model.c", *(source_dir / f for f in c_sources(files))]
        build = Build(TARGETS[target], sources, [source_dir], Path(folder) / "build").compile()
        _, outputs, run = run_model(build, inputs, expected.shape[1], count_instructions=True)
    if not np.array_equal(outputs, expected):
        raise SystemExit(f"{graph.nodes[0].op}: C differs from the simulator")
    return float(np.mean(run.instructions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="cortex-m4", choices=["cortex-m4", "cortex-m3"])
    parser.add_argument("--inputs", type=int, default=2, help="random maps to run (default 2)")
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke test)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'op':44s} {'input':>12s} {'instructions':>12s} {'MACs':>9s} {'instr./MAC':>10s}")
    for name, (op, shape, dtype, weight_shape, attrs, residual) in SHAPES.items():
        if args.quick:
            shape = (shape[0], 8, 8)
        graph = op_graph(op, shape, dtype, weight_shape, attrs, residual, rng)
        info = np.iinfo(np.int16 if dtype == "int16" else np.int8)
        inputs = rng.integers(info.min, int(info.max) + 1, size=(args.inputs, *shape))
        inputs = inputs.astype(np.int16 if dtype == "int16" else np.int8)
        instructions = measure(graph, inputs, args.target)
        node = graph.nodes[0]
        macs = get_op(op).macs(node, *graph.node_values(node))
        if op == "maxpool2d":
            macs = graph.values["y"].count * int(np.prod(node.attrs["kernel"]))
        print(f"{name:44s} {'x'.join(map(str, shape)):>12s} {instructions:12,.0f} {macs:9,d} "
              f"{instructions / macs:10.2f}")


if __name__ == "__main__":
    main()
