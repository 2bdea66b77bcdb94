"""RNNPool pooling a whole CIFAR-10 image, then a linear layer, as integer C: trained briefly,
lowered (``rnnpool`` → ``fully_connected`` → ``argmax``), quantized, generated and checked
against the integer simulator integer for integer on the host, Cortex-M4 and Cortex-M3, as
``kiloml verify`` checks an export. Reports accuracy (float, integer), flash, the arena, the
measured stack and RAM, and the Cortex-M4 instructions per inference.

The per-channel standardisation is folded into RNN1's input normalisation, so the C input is
the raw ``[3][32][32]`` pixels. Training is a fixed short budget (a deployment check, not the
accuracy experiment of ``rnnpool_pooling.py``): ``--train-images`` images strided over the
training split, ``--epochs`` epochs of Adam 3e-3, batch 64; calibration on 500 validation
images; the test images are the first ``--test-images`` of a stride over the test split.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kiloml.data import load_dataset
from kiloml.data.cifar10 import as_images
from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import cortex_m4_stack, write_sources
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir.calibrate import calibrate
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.simulate import simulate_values
from kiloml.nn import RNNPool
from kiloml.ops.base import Node


class PoolLinear(nn.Module):
    """``[B, 3, 32, 32]`` pixels → standardised → RNNPool of the whole image → linear."""

    def __init__(self, hidden: int, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.pool = RNNPool(3, hidden, hidden)
        self.head = nn.Linear(4 * hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool((x - self.mean) / self.std))


def lower_pool_linear(model: PoolLinear) -> Graph:
    """The float graph: ``rnnpool`` (standardisation folded into RNN1's normalisation), the
    head (logits, the graph's output) and the arg-max."""
    graph = Graph(meta={"kind": "rnnpool-linear", "num_classes": 10, "frame_stack": 1})
    graph.add_input("x", (3, 32, 32))
    pooled = lower(model.pool, "pool", graph, ["x"])
    node = graph.nodes[-1]
    node.weights["rnn1.input_mean"] = model.mean.reshape(-1).double().numpy().copy()
    node.weights["rnn1.input_std"] = model.std.reshape(-1).double().numpy().copy()
    lower(model.head, "head", graph, pooled, output="logits")
    graph.set_output("logits")
    graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))
    return graph


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 64):
            batch = order[start:start + 64]
            loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=32, help="h1 = h2")
    parser.add_argument("--bits", type=int, default=16, choices=(8, 16))
    parser.add_argument("--train-images", type=int, default=45000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--test-images", type=int, default=200)
    parser.add_argument("--targets", nargs="*", default=["host", "cortex-m4", "cortex-m3"])
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("cifar10")

    def images(split, count):
        step = max(1, len(split.x) // count)  # every class: splits are sorted by class
        x = as_images(split.x[::step][:count]).astype(np.float32)
        return x, split.y[::step][:count]

    x_train, y_train = images(data.train, args.train_images)
    x_val, _ = images(data.val, 500)
    x_test, y_test = images(data.test, args.test_images)
    torch.manual_seed(0)
    model = PoolLinear(args.hidden, x_train.mean(axis=(0, 2, 3)), x_train.std(axis=(0, 2, 3)))
    started = time.process_time()
    train(model, x_train, y_train, args.epochs, seed=1)
    model.eval()
    graph = lower_pool_linear(model)
    quantized = quantize_graph(graph, calibrate(graph, x_val.astype(np.float64)), args.bits)
    inputs = quantize_input(quantized, x_test.astype(np.float64)).astype(np.int16)
    values = simulate_values(quantized, inputs)
    with torch.no_grad():
        float_logits = model(torch.from_numpy(x_test)).numpy()
    description = "RNNPool 32x32 -> linear"
    with tempfile.TemporaryDirectory(prefix="kiloml-rnnpool-stack-") as work:
        stack = cortex_m4_stack(generate_model(quantized, description), Path(work))
    generated = generate_model(quantized, description, stack)
    report = {"hidden": args.hidden, "bits": args.bits, "train_images": args.train_images,
              "epochs": args.epochs, "test_images": len(inputs),
              "train_cpu_seconds": round(time.process_time() - started, 1),
              "float_accuracy": float(np.mean(float_logits.argmax(1) == y_test)),
              "integer_accuracy": float(np.mean(values["class"] == y_test)),
              "weight_flash_bytes": generated.weight_flash_bytes, "macs": generated.macs,
              "arena_bytes": generated.scratch_bytes,
              "ram_bytes_stated_cortex_m4": generated.ram_bytes if stack is not None else None,
              "targets": {}}
    with tempfile.TemporaryDirectory(prefix="kiloml-rnnpool-") as folder:
        source = Path(folder) / "src"
        files = write_sources(generated, source)
        for target in args.targets:
            if TARGETS[target].missing():
                report["targets"][target] = "skipped: toolchain missing"
                continue
            build = Build(TARGETS[target],
                          [source / "model.c", *(source / f for f in c_sources(files))],
                          [source], Path(folder) / target, "fast").compile()
            returned, outputs, run = run_model(build, inputs, quantized.values["logits"].count,
                                               poison=0xA5,
                                               count_instructions=TARGETS[target].emulated)
            entry = {"exact_match": float(np.mean(
                np.all(outputs == values["logits"].reshape(len(inputs), -1), axis=1)
                & (returned == values["class"])))}
            if TARGETS[target].emulated:
                entry["stack_bytes_measured"] = run.stack_bytes_measured
                entry["ram_bytes_measured"] = (generated.scratch_bytes
                                               + quantized.values["logits"].nbytes
                                               + run.stack_bytes_measured)
                if run.instructions:
                    entry["instructions_per_inference"] = float(np.mean(run.instructions))
            report["targets"][target] = entry
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    exact = all(isinstance(t, dict) and t["exact_match"] == 1.0
                for t in report["targets"].values())
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
