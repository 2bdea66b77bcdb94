"""RNNPool's pooling experiment (Saha et al., NeurIPS 2020, App. C.2): every CIFAR-10 image is
pooled from 32×32 to 1×1 by one operator, then a linear layer classifies it; RNNPool against a
strided convolution and max / average pooling in the same place.

    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/rnnpool_pooling.py
    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/rnnpool_pooling.py \
        --epochs 10 --augment                                              # longer recipe
    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/rnnpool_pooling.py \
        --init edgeml                                       # RNNPool initialised as EdgeML's
    OMP_NUM_THREADS=1 KILOML_DATA=../shared/data python benchmarks/rnnpool_pooling.py \
        --lr 0.01 --batch 32 --only "RNNPool h1=h2=32"            # another learning rate, batch
    KILOML_DATA=../shared/data python benchmarks/rnnpool_pooling.py --quick  # smoke run

Rows (fixed beforehand; nothing is chosen on the test split): RNNPool with patch = stride = 32,
h1 = h2 = 32 (4·h2 = 128 features); a strided convolution with a 32×32 kernel and stride 32
followed by ReLU, once with RNNPool's 128 output features and once with the most channels that
keep its parameters at or below RNNPool's (1); 32×32 max and average pooling (3 features).
Every row: per-channel standardisation (training-set mean and std), the same Trainer (Adam,
``LR`` cosine-decayed, batch ``BATCH``, gradient clipping 1.0), ``--epochs`` epochs (default
``EPOCHS``), no augmentation unless ``--augment`` (random crop after ``CROP_PAD`` black pixels of
padding, random horizontal flip), the epoch kept being the best on the validation split (the
last tenth of every class's training images) among the last 40 % of epochs. RNNPool's cells
start from kiloml's initialisation, or with ``--init edgeml`` from EdgeML's
(:func:`kiloml.nn.rnnpool.init_as_edgeml`; only the RNNPool row runs then). ``--lr`` and
``--batch`` replace ``LR`` and ``BATCH``. Results go to ``OUT/rnnpool_pooling.json`` and ``.md``
(default ``docs/benchmarks``) for the default recipe,
``OUT/rnnpool_pooling[_<epochs>ep[_aug]][_edgeml][_lr<lr>][_b<batch>].json`` / ``.md`` for any
other; every run records its epochs' training and validation accuracy; a rerun skips the runs
already there.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kiloml.data import load_dataset
from kiloml.data.cifar10 import as_images
from kiloml.nn import RNNPoolLayer
from kiloml.nn.rnnpool import init_as_edgeml
from kiloml.train.trainer import TrainConfig, Trainer, evaluate
from machine_info import describe

EPOCHS, BATCH, LR = 4, 64, 3e-3
CROP_PAD = 4
QUICK_IMAGES = 300
INITS = ("kiloml", "edgeml")
ROWS = ("RNNPool h1=h2=32", "strided conv, 128 channels", "strided conv, 1 channel",
        "max pooling", "average pooling")
#: the paper's test accuracy for the same rows (App. C.2); the strided convolution's width is
#: not restated here, so both of ours sit next to its one figure
PAPER = {"RNNPool h1=h2=32": "70.63", "strided conv, 128 channels": "53.13",
         "strided conv, 1 channel": "53.13", "max pooling": "20.04",
         "average pooling": "26.53"}


class PooledLinear(nn.Module):
    """``[B, 32, 96]`` CIFAR rows → ``[B, 3, 32, 32]`` standardised → one pooling operator to
    ``[B, F, 1, 1]`` → linear → ``[B, 10]`` logits."""

    def __init__(self, row: str, mean: np.ndarray, std: np.ndarray, init: str = "kiloml"):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1))
        if row.startswith("RNNPool"):
            self.pool, features = RNNPoolLayer(3, 32, 32, h1=32, h2=32), 128
            if init == "edgeml":
                init_as_edgeml(self.pool)
        elif row.startswith("strided conv"):
            features = int(row.split(", ")[1].split()[0])
            self.pool = nn.Sequential(nn.Conv2d(3, features, 32, stride=32), nn.ReLU())
        else:
            self.pool, features = (nn.MaxPool2d(32) if row == "max pooling"
                                   else nn.AvgPool2d(32)), 3
        self.head = nn.Linear(features, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        images = x.reshape(n, 32, 32, 3).permute(0, 3, 1, 2)
        return self.head(self.pool((images - self.mean) / self.std).reshape(n, -1))


def run(data, row: str, seed: int, epochs: int, augment: bool, init: str = "kiloml",
        lr: float = LR, batch: int = BATCH) -> dict:
    images = as_images(data.train.x)
    torch.manual_seed(seed)
    model = PooledLinear(row, images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3)), init)
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, seed=seed,
                         augment_crop=CROP_PAD if augment else 0, augment_flip=augment)
    started, wall = time.process_time(), time.perf_counter()
    result = Trainer(model, data, config).fit()
    seconds, wall = time.process_time() - started, time.perf_counter() - wall
    _, test_accuracy, _ = evaluate(model, data.test)
    return {"test_accuracy": test_accuracy, "val_accuracy": result.best_val_accuracy,
            "best_epoch": result.best_epoch, "epochs": epochs, "augment": augment,
            "init": init if row.startswith("RNNPool") else "torch", "lr": lr, "batch": batch,
            "history": [{"epoch": r.epoch, "train_accuracy": round(r.train_accuracy, 4),
                         "val_accuracy": round(r.val_accuracy, 4)} for r in result.history],
            "parameters": sum(p.numel() for p in model.parameters()),
            "cpu_seconds": round(seconds, 1), "wall_seconds": round(wall, 1),
            "machine": describe()}


def table(results: dict, epochs: int, augment: bool, init: str = "kiloml", lr: float = LR,
          batch: int = BATCH) -> str:
    lines = ["| pooling 32×32 → 1×1, then linear | parameters | val acc. | test acc. | "
             "paper (App. C.2) | seeds |", "|---|---|---|---|---|---|"]
    for row in ROWS:
        per_seed = results.get(row, {})
        if not per_seed:
            continue
        test = np.array([r["test_accuracy"] for r in per_seed.values()]) * 100
        val = np.array([r["val_accuracy"] for r in per_seed.values()]) * 100
        spread = f" ± {test.std(ddof=1):.2f}" if len(test) > 1 else ""
        runs = "one run" if len(test) == 1 else f"{len(test)} seeds"
        params = next(iter(per_seed.values()))["parameters"]
        lines.append(f"| {row} | {params:,} | {val.mean():.2f} % | {test.mean():.2f}{spread} % | "
                     f"{PAPER[row]} % | {runs} |")
    recipe = (f"random crop (padding {CROP_PAD}) and horizontal flip" if augment
              else "no augmentation")
    return "\n".join(lines) + (f"\n\n{epochs} epochs each, batch {batch}, Adam lr {lr:g} "
                              f"(cosine), {recipe}; RNNPool initialised as {init}'s.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--only", nargs="*", default=None, choices=ROWS)
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help=f"training epochs of every row (default {EPOCHS})")
    parser.add_argument("--augment", action="store_true",
                        help=f"random crop after {CROP_PAD} pixels of padding and horizontal flip")
    parser.add_argument("--init", choices=INITS, default="kiloml",
                        help="RNNPool's initialisation (edgeml: only the RNNPool row runs)")
    parser.add_argument("--lr", type=float, default=LR,
                        help=f"Adam's starting learning rate, cosine-decayed (default {LR:g})")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"images per batch (default {BATCH})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_IMAGES} images per split, 1 epoch (a smoke run)")
    parser.add_argument("--report", action="store_true",
                        help="only write the table of the runs already saved")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as kiloml train does: threads of a shared machine only wait
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not 0 < args.lr < 1:
        parser.error(f"--lr must be between 0 and 1, got {args.lr:g}")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    epochs = 1 if args.quick else args.epochs
    if args.init != "kiloml" and any(not row.startswith("RNNPool") for row in args.only or ()):
        parser.error(f"--init {args.init} sets RNNPool's initialisation; the other rows have none")
    rows = [] if args.report else [row for row in ROWS if not args.only or row in args.only]
    if args.init != "kiloml":
        rows = [row for row in rows if row.startswith("RNNPool")]
    data = load_dataset("cifar10") if rows else None
    if args.quick and data is not None:
        for split in (data.train, data.val, data.test):  # every class: sorted by class
            step = max(1, len(split) // QUICK_IMAGES)
            split.x, split.y = split.x[::step], split.y[::step]
    args.out.mkdir(parents=True, exist_ok=True)
    name = ("rnnpool_pooling" if args.epochs == EPOCHS and not args.augment
            else f"rnnpool_pooling_{args.epochs}ep" + ("_aug" if args.augment else ""))
    name += "" if args.init == "kiloml" else f"_{args.init}"
    name += "" if args.lr == LR else f"_lr{args.lr:g}"
    name += "" if args.batch == BATCH else f"_b{args.batch}"
    saved = args.out / (name + "_quick.json" if args.quick else name + ".json")
    results = json.loads(saved.read_text()) if saved.exists() else {}
    for row in rows:
        for seed in range(args.seeds):
            if str(seed) in results.get(row, {}):
                continue
            results.setdefault(row, {})[str(seed)] = run(data, row, seed, epochs, args.augment,
                                                         args.init, args.lr, args.batch)
            print(row, seed, results[row][str(seed)], flush=True)
            saved.write_text(json.dumps(results, indent=1))
    report = table(results, epochs, args.augment, args.init, args.lr, args.batch)
    saved.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
