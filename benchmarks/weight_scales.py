"""How much a DS-CNN's accuracy depends on how its int8 weights are scaled: the float graph run
with weights rounded as int8 would round them, with one power-of-two scale per tensor, per
depthwise channel (what ``kiloml export`` ships) or per output channel of every convolution.
Only the weights are rounded, so this isolates their scales from the activations' Q-formats.

    python benchmarks/weight_scales.py runs/dscnn-kws-c32 [--split val]

Prints the accuracy (%) of each on the chosen split (validation by default: the test split
is not for choosing).
"""

import argparse
from pathlib import Path

import numpy as np

from kiloml.data import load_dataset
from kiloml.ir import run_float
from kiloml.ir.lower import lower_model
from kiloml.ops.fixed import quantize_weight
from kiloml.runs import load_run

SCHEMES = ("float", "per tensor", "per depthwise channel", "per channel of every convolution")


def rounded(weight: np.ndarray) -> np.ndarray:
    """``weight`` rounded to int8 with one power-of-two scale, back in float."""
    q = quantize_weight(weight, 8)
    return q.values * 2.0 ** -q.frac_bits


def accuracy(model, X: np.ndarray, y: np.ndarray, scheme: str) -> float:
    graph = lower_model(model, X.shape[1])
    for node in graph.nodes:
        if "weight" not in node.weights or scheme == "float":
            continue
        per_row = (scheme == SCHEMES[3] and node.op != "fully_connected") or (
            scheme == SCHEMES[2] and node.op == "depthwise_conv1d")
        weight = node.weights["weight"]
        node.weights["weight"] = (np.stack([rounded(row) for row in weight]) if per_row
                                  else rounded(weight))
        node.weights["bias"] = rounded(node.weights["bias"])
    logits = run_float(graph, X)[graph.output]
    return float(np.mean(logits.argmax(axis=1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a DS-CNN run directory")
    parser.add_argument("--split", choices=["val", "test"], default="val")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    config, model = load_run(args.run)
    data = load_dataset(config["data"]["dataset"], args.data_dir or config["data"]["data_dir"])
    split = getattr(data, args.split)
    X = split.x.astype(np.float64)
    for scheme in SCHEMES:
        print(f"{args.run.name} {args.split} ({len(split)}): {scheme}: "
              f"{100 * accuracy(model, X, split.y, scheme):.2f}%")


if __name__ == "__main__":
    main()
