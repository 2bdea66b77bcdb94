"""Peak RAM, MACs and flash of a small MobileNetV2-like network under three schedules, each
generated as C and checked against the integer simulator on the host, Cortex-M4 and Cortex-M3:

* ``layers``: the CNN layer by layer (whole maps);
* ``patches``: the same CNN (same integers) with its first stages run on tiles of
  ``--patches`` output pixels, MCUNetV2-style (recomputed MACs counted): the stem and the
  three blocks that bring the map to 1/8 of the input side (9 nodes), or these and the first
  residual block at that side (12 nodes; its residual cropped to each tile);
* ``rnnpool``: the same later blocks after an RNNPoolLayer over the input (patch 8, stride 8,
  h1 8, h2 4: the same 1/8 side) and a 1x1 convolution to the blocks' 16 channels.

Weights are random (torch's initialisation, seed 0; BatchNorm at its initial statistics) and
calibrated on random images: RAM, MACs and flash do not depend on training, accuracy is not
measured here. RAM: the planner's arena (``model.h``'s statement adds the logits and the
Cortex-M4 stack from the call graph); measured on Cortex-M4: the arena plus the logits plus the
painted stack of ``kiloml_predict``. Flash: the stored constants (weights, bias, requantization
and RNN tensors), and the Cortex-M4 image's text + data (code, params structs, tile tables).

    python benchmarks/image_schedules.py --size 96 --inputs 2
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import cortex_m4_stack, write_sources
from kiloml.deploy.targets import TARGETS, Build, flash_bytes
from kiloml.deploy.verify import run_model
from kiloml.ir.calibrate import calibrate
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower, lower_conv2d, lower_image_model, lowering
from kiloml.ir.plan import arena_blocks
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.schedule import apply_schedule, schedule_figures
from kiloml.ir.simulate import simulate_values
from kiloml.nn.rnnpool import RNNPoolLayer

CLASSES = 2


def conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True
            ) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU6()] if act else []))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (×``t``, skipped for ``t`` = 1) + ReLU6, 3x3
    depthwise (stride ``s``) + ReLU6, linear 1x1 projection; the input added when the shapes
    match."""

    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        self.expand = conv_bn(cin, hidden, 1, 1) if t > 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


@lowering(InvertedResidual)
def lower_inverted_residual(block: InvertedResidual, path: str, graph: Graph,
                            inputs: list[str]) -> list[str]:
    y = lower(block.expand, f"{path}.expand", graph, inputs)
    y = lower(block.depthwise, f"{path}.depthwise", graph, y)
    conv, batchnorm = block.project
    return lower_conv2d(conv, f"{path}.project.0", graph, y, batchnorm,
                        residual=inputs[0] if block.residual else None)


def tail() -> list[nn.Module]:
    """The blocks after 1/8 of the input side (16 channels), the pooling and the head."""
    return [InvertedResidual(16, 16, 1, 3), InvertedResidual(16, 24, 2, 3),
            InvertedResidual(24, 24, 1, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(24, CLASSES)]


def mobilenet() -> tuple[nn.Sequential, int]:
    """The CNN and the number of nodes of its first stages (stem, blocks 1-3)."""
    head = [conv_bn(3, 8, 3, 2), InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 16, 2, 3),
            InvertedResidual(16, 16, 2, 3)]
    # nodes: stem 1, block 1 (dw, project) 2, blocks 2-3 3 each; block 1 has no residual,
    # as MobileNetV2's first block
    head[1].residual = False
    return nn.Sequential(*head, *tail()), 9


def rnnpool_net() -> nn.Sequential:
    return nn.Sequential(RNNPoolLayer(3, 8, 8, 8, 4), conv_bn(16, 16, 1, 1), *tail())


def stage_bytes(graph: Graph, count: int) -> int:
    """The most bytes of values and buffers alive together during the first ``count`` nodes
    (the first stages' RAM, whatever the greedy placement adds)."""
    blocks = arena_blocks(graph)
    return max(sum(b.nbytes for b in blocks if b.first <= i <= b.last) for i in range(count))


def measure(graph, inputs: np.ndarray, description: str, targets: list[str], folder: Path,
            stage: int) -> dict:
    """The planner's figures, and per target: exact match and (emulated) measured RAM,
    instructions and flash."""
    figures = schedule_figures(graph)
    figures["first_stages_bytes"] = stage_bytes(graph, stage)
    figures["largest_live_bytes"] = stage_bytes(graph, len(graph.nodes))
    values = simulate_values(graph, inputs)
    stack = cortex_m4_stack(generate_model(graph, description), folder / "stack")
    generated = generate_model(graph, description, stack)
    figures.update(stack_bytes_stated=stack, ram_bytes_stated=generated.ram_bytes, targets={})
    source = folder / "src"
    files = write_sources(generated, source)
    for target in targets:
        if TARGETS[target].missing():
            figures["targets"][target] = "skipped: toolchain missing"
            continue
        build = Build(TARGETS[target], [source / "model.c", *(source / f for f in
                                                              c_sources(files))],
                      [source], folder / target, "fast").compile()
        returned, outputs, run = run_model(build, inputs, graph.values[graph.output].count,
                                           poison=0xA5,
                                           count_instructions=TARGETS[target].emulated)
        entry = {"exact_match": float(np.mean(
            np.all(outputs == values[graph.output].reshape(len(inputs), -1), axis=1)
            & (returned == values["class"])))}
        if TARGETS[target].emulated:
            entry["flash_bytes"] = flash_bytes(build)
            entry["stack_bytes_measured"] = run.stack_bytes_measured
            if run.instructions:
                entry["instructions_per_inference"] = float(np.mean(run.instructions))
            entry["ram_bytes_measured"] = (generated.scratch_bytes
                                           + graph.values[graph.output].nbytes
                                           + run.stack_bytes_measured)
        figures["targets"][target] = entry
    return figures


def table(report: dict) -> str:
    """The Markdown table of docs/deployment.md."""
    lines = ["| schedule | first stages' RAM | largest live set | arena (planner) | "
             "RAM stated (M4) | RAM measured (M4) | MACs | M4 instructions | constants | "
             "M4 image (text + data) | C == simulator |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, s in report["schedules"].items():
        m4 = s["targets"].get("cortex-m4", {})
        m4 = m4 if isinstance(m4, dict) else {}
        exact = ", ".join(t for t, e in s["targets"].items()
                          if isinstance(e, dict) and e["exact_match"] == 1.0)
        lines.append(f"| {name} | {s['first_stages_bytes']:,} | {s['largest_live_bytes']:,} | "
                     f"{s['arena_bytes']:,} | {s['ram_bytes_stated']:,} | "
                     f"{m4.get('ram_bytes_measured', 0):,} | {s['macs']:,} | "
                     f"{m4.get('instructions_per_inference', 0):,.0f} | "
                     f"{s['weight_flash_bytes']:,} | {m4.get('flash_bytes', 0):,} | {exact} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=96, help="input side (a multiple of 8)")
    parser.add_argument("--patches", type=int, nargs="+", default=[2, 3, 6],
                        help="square tiles of the patch schedule (one row each), sides in "
                             "pixels of the 1/8-side map")
    parser.add_argument("--inputs", type=int, default=2, help="random test images per target")
    parser.add_argument("--stages", type=int, nargs="+", default=[9, 12],
                        help="nodes in the tiled stage: 9 (stem to block 3, the 1/8-side map) "
                             "and/or 12 (also block 4, the first residual block)")
    parser.add_argument("--targets", nargs="+", default=["host", "cortex-m4", "cortex-m3"])
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    shape = (3, args.size, args.size)
    calib = rng.normal(size=(32, *shape))
    test = rng.normal(size=(args.inputs, *shape))
    cnn, stage = mobilenet()
    graphs = {}
    for name, model in (("cnn", cnn), ("rnnpool", rnnpool_net())):
        graph = lower_image_model(model.eval(), shape, CLASSES)
        graphs[name] = quantize_graph(graph, calibrate(graph, calib), bits=8)
    scheduled = {"layers": graphs["cnn"]}
    for nodes in args.stages:
        for side in args.patches:
            scheduled[f"patches {side}x{side}, {nodes} nodes"] = apply_schedule(
                graphs["cnn"], "patches", nodes, (side, side))
    scheduled["rnnpool"] = apply_schedule(graphs["rnnpool"], "rnnpool")
    x = {name: quantize_input(graphs[name], test) for name in graphs}
    out = graphs["cnn"].output
    expected = simulate_values(graphs["cnn"], x["cnn"])[out]
    same = all(np.array_equal(simulate_values(graph, x["cnn"])[out], expected)
               for name, graph in scheduled.items() if name.startswith("patches"))
    report = {"size": args.size, "patches": args.patches, "stages": args.stages,
              "inputs": args.inputs,
              "patches_equal_layers": bool(same), "schedules": {}}
    with tempfile.TemporaryDirectory(prefix="kiloml-schedules-") as folder:
        for i, (name, graph) in enumerate(scheduled.items()):
            data = x["rnnpool" if name == "rnnpool" else "cnn"]
            count = {"layers": stage, "rnnpool": 2}.get(name, 1)
            report["schedules"][name] = measure(graph, data, f"{name} {args.size}x{args.size}",
                                                args.targets, Path(folder) / str(i), count)
    print(json.dumps(report, indent=2))
    print(table(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    exact = same and all(isinstance(t, dict) and t["exact_match"] == 1.0
                         for s in report["schedules"].values() for t in s["targets"].values())
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
