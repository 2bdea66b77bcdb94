"""Instructions per op of an export on an emulated Cortex-M: each node of the integer graph
built and run alone (a one-node graph through the same codegen and target runner), on the
first test inputs of the export, its outputs checked against the simulator.

    python benchmarks/op_instructions.py runs/dscnn-kws-c32/c8 [--target cortex-m4] [--inputs 3]

Prints one row per node: op, instructions (mean over the inputs), MACs, instructions per MAC.
The rows add up to about the whole model's count from ``kiloml verify`` (each node alone also
pays its call from ``kiloml_predict``).
"""

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import QUANTIZED_FILE, TEST_INPUTS_FILE, write_sources
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir.graph import Graph
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate_values
from kiloml.ops import get_op


def node_graph(graph: Graph, index: int) -> Graph:
    """Node ``index`` of ``graph`` alone: its input is the graph's input, its output the
    graph's output, with the Q-formats they have in ``graph``."""
    node = copy.deepcopy(graph.nodes[index])
    source = graph.values[node.inputs[0]]
    alone = Graph(meta=dict(graph.meta))
    alone.add_input("x", source.shape, source.dtype)
    alone.values["x"].frac_bits = source.frac_bits
    node.inputs = ["x"]
    for name in node.outputs:
        alone.values[name] = copy.deepcopy(graph.values[name])
    alone.nodes.append(node)
    alone.set_output(node.outputs[0])
    return alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="directory written by kiloml export")
    parser.add_argument("--target", default="cortex-m4", choices=["cortex-m4", "cortex-m3"])
    parser.add_argument("--inputs", type=int, default=3, help="test inputs to run (default 3)")
    args = parser.parse_args()
    graph = load_graph(args.export / QUANTIZED_FILE)
    with np.load(args.export / TEST_INPUTS_FILE) as data:
        inputs = data["inputs"][:args.inputs]
    values = simulate_values(graph, inputs)
    total = 0.0
    print(f"{'node':24s} {'op':18s} {'instructions':>12s} {'MACs':>9s} {'instr./MAC':>10s}")
    for index, node in enumerate(graph.nodes):
        if node.op == "argmax":
            continue
        alone = node_graph(graph, index)
        with tempfile.TemporaryDirectory() as folder:
            source_dir = Path(folder) / "src"
            write_sources(generate_model(alone, f"{node.name} alone"), source_dir)
            files = [p.name for p in source_dir.glob("kl_*.c")]
            sources = [source_dir / "model.c", *(source_dir / f for f in c_sources(files))]
            build = Build(TARGETS[args.target], sources, [source_dir],
                          Path(folder) / "build").compile()
            x = values[node.inputs[0]]
            x = x.astype({"int8": np.int8, "int16": np.int16}.get(alone.values["x"].dtype,
                                                                   np.int32))
            _, outputs, run = run_model(build, x, alone.values[alone.output].count,
                                        count_instructions=True)
        if not np.array_equal(outputs, values[node.outputs[0]].reshape(len(inputs), -1)):
            raise SystemExit(f"{node.name}: C differs from the simulator")
        instructions = float(np.mean(run.instructions))
        macs = get_op(node.op).macs(node, *graph.node_values(node))
        total += instructions
        print(f"{node.name:24s} {node.op:18s} {instructions:12,.0f} {macs:9,d} "
              f"{instructions / max(macs, 1):10.2f}")
    print(f"{'total':43s} {total:12,.0f}")


if __name__ == "__main__":
    main()
