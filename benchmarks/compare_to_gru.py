"""Compressed FastGRNN against a dense nn.GRU of the same hidden size, same Trainer, same data,
over several seeds; prints a markdown table (mean ± std of test accuracy, deployed bytes).

    python benchmarks/compare_to_gru.py --dataset smartwatch --hidden 32 --seeds 0 1 2 [--only TEXT]

The compressed variant uses ``kiloml train``'s defaults unless ``--u-rank``/``--keep-*`` say
otherwise.
"""

import argparse
import json
import statistics
import time

import torch

from kiloml.cli import DEFAULTS
from kiloml.data import load_dataset
from kiloml.nn import ModelConfig
from kiloml.train.budget import MIN_EPOCHS
from kiloml.train.fit import fit
from kiloml.train.recipes import IMU
from kiloml.train.trainer import TrainConfig


def variants(args) -> dict[str, tuple[dict, dict]]:
    """name -> (model config fields, train config fields). Every variant trains with the same
    Trainer and the same ``kiloml train`` defaults (the imu recipe's augmentation, schedule,
    epochs)."""
    augment = dict(augment_scale=IMU.augment_scale, augment_noise=IMU.augment_noise,
                   augment_rotation=IMU.augment_rotation)
    h = args.hidden
    relu = dict(update_nonlinearity="relu")
    compressed = dict(kind="fastgrnn", hidden_size=h, w_rank=args.w_rank or None,
                      u_rank=args.u_rank or None, **relu)
    keep = dict(keep_w=args.keep_w, keep_u=args.keep_u, keep_head=args.keep_head)
    return {
        f"nn.GRU h{h}": (dict(kind="gru", hidden_size=h), augment),
        f"FastGRNN h{h} dense, tanh update, no augmentation": (
            dict(kind="fastgrnn", hidden_size=h), {}),
        f"FastGRNN h{h} dense, relu update": (
            dict(kind="fastgrnn", hidden_size=h, **relu), augment),
        f"FastGRNN h{h} compressed: w rank {args.w_rank or 'full'}, u rank "
        f"{args.u_rank or 'full'}, keep W {args.keep_w:.0%} / "
        f"U {args.keep_u:.0%} / head {args.keep_head:.0%}": (compressed, {**augment, **keep}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="smartwatch")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--w-rank", type=int, default=DEFAULTS["w_rank"], help="0 = full rank")
    parser.add_argument("--u-rank", type=int, default=DEFAULTS["u_rank"], help="0 = full rank")
    parser.add_argument("--keep-w", type=float, default=DEFAULTS["sparsity_w"])
    parser.add_argument("--keep-u", type=float, default=DEFAULTS["sparsity_u"])
    parser.add_argument("--keep-head", type=float, default=DEFAULTS["sparsity_head"])
    parser.add_argument("--epochs", type=int, default=MIN_EPOCHS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", default=None, help="run only variants containing this text")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.dataset, args.data_dir)
    rows, raw = [], {}
    for name, (model_fields, train_fields) in variants(args).items():
        if args.only and args.only not in name:
            continue
        accs, sizes = [], []
        for seed in args.seeds:
            started = time.perf_counter()
            mc = ModelConfig(input_size=data.num_features, num_classes=data.num_classes,
                             **model_fields)
            outcome = fit(data, mc, TrainConfig(epochs=args.epochs, seed=seed, **train_fields))
            m = outcome.metrics
            accs.append(100 * m["test_accuracy"])
            sizes.append((m["model_size_bytes"], m["model_size_bytes_int8"], m["params_nonzero"],
                          m["macs_per_inference"]))
            print(f"{name} seed {seed}: {accs[-1]:.2f}% "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        raw[name] = {"accuracy": accs, "sizes": sizes}
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        f32, i8, nnz, macs = sizes[-1]
        rows.append(f"| {name} | {statistics.mean(accs):.1f} ± {std:.1f} | {f32:,} | {i8:,} | "
                    f"{nnz:,} | {macs:,} |")
    print(f"\n{data.name}, {args.epochs} epochs, seeds {args.seeds}\n")
    print("| model | test accuracy (%) | bytes (float32) | bytes (int8 weights) | nonzero params "
          "| MACs/inference |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=2)


if __name__ == "__main__":
    main()
