"""Run one op's C kernel against its numpy spec: a graph of that single node, generated and
built like any export, run on integer inputs on any target and build variant.

    graph = single_op_graph(node, input_shape, input_frac_bits=10)
    assert_c_equals_spec(graph, inputs, tmp_path, targets=("host", "cortex-m4"))

The node must be quantized already (``node.q``, ``node.consts`` and the Q-format of its output
set by the caller, e.g. by the op's own ``quantize`` with chosen ranges, or drawn at random to
reach every shift class), so the test controls every parameter the kernel sees.
"""

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

#: Every build of a kernel: the fast one, the plain reference loops, and the sanitized host.
BUILDS = (("host", "fast"), ("host", "reference"), ("host", "sanitize"),
          ("cortex-m4", "fast"), ("cortex-m3", "fast"), ("cortex-m4", "reference"))


def single_op_graph(node: Node, input_shape: tuple[int, ...], input_frac_bits: int = 0,
                    input_dtype: str = "int16", bits: int = 16) -> Graph:
    """A graph whose input feeds ``node`` and whose output is the node's first output."""
    graph = Graph(meta={"kind": node.op, "num_classes": 0, "bits": bits, "frame_stack": 1})
    graph.add_input("x", input_shape, input_dtype)
    graph.values["x"].frac_bits = input_frac_bits
    node.inputs = ["x"]
    graph.add_node(node)
    graph.set_output(node.outputs[0])
    graph.meta["num_classes"] = graph.values[graph.output].count
    return graph


def quantize_node(graph: Graph, ranges: dict[str, float], bits: int) -> None:
    """Apply the node's own quantization rule with ``ranges`` (keys as the op records them, and
    value names)."""
    node = graph.nodes[0]
    inputs, outputs = graph.node_values(node)
    get_op(node.op).quantize(node, inputs, outputs, lambda key: ranges.get(key, 0.0), bits)


def run_c(graph: Graph, inputs: np.ndarray, folder: Path, target: str = "host",
          variant: str = "fast", poison: int | None = None) -> np.ndarray:
    """The C outputs ``[N, count]`` of ``graph`` on integer ``inputs`` ``[N, *shape]``."""
    source_dir = folder / "src"
    if not (source_dir / "model.c").exists():
        write_sources(generate_model(graph, f"{graph.nodes[0].op} test"), source_dir)
    files = [p.name for p in source_dir.glob("kl_*.c")]
    sources = [source_dir / "model.c", *(source_dir / f for f in c_sources(files))]
    build = Build(TARGETS[target], sources, [source_dir], folder / f"{target}-{variant}",
                  variant).compile()
    _, outputs, _ = run_model(build, np.asarray(inputs), graph.values[graph.output].count,
                              poison=poison)
    return outputs


def assert_c_equals_spec(graph: Graph, inputs: np.ndarray, folder: Path,
                         builds: tuple[tuple[str, str], ...] = BUILDS,
                         poison: int | None = 0xA5) -> None:
    """Every build's outputs equal the simulator's, integer for integer (a poisoned arena
    shows that no stale memory is read). Targets whose toolchain is absent are skipped here;
    the tests that call this require them."""
    expected = simulate_values(graph, inputs)[graph.output].reshape(len(inputs), -1)
    for target, variant in builds:
        if TARGETS[target].missing():
            continue
        got = run_c(graph, inputs, folder, target, variant, poison)
        mismatch = np.argwhere(got != expected)
        assert not len(mismatch), (f"{target} {variant}: first mismatch at input "
                                   f"{mismatch[0][0]}, output {mismatch[0][1]}: "
                                   f"C {got[tuple(mismatch[0])]}, spec "
                                   f"{expected[tuple(mismatch[0])]}")
