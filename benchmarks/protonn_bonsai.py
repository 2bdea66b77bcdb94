"""ProtoNN and Bonsai on MNIST, MNIST-2 and Fashion-MNIST (784-pixel feature vectors): test
accuracy of the float model and of the int8 integer graph (the simulator, which the C equals
bit for bit) against the deployed bytes, over seeds, next to the papers' figures.

    KILOML_DATA=../shared/data python benchmarks/protonn_bonsai.py          # 3 seeds
    KILOML_DATA=../shared/data python benchmarks/protonn_bonsai.py --quick  # smoke run

The configurations are fixed beforehand (not chosen on the test split); the epoch kept is the
best on the validation split (the last 5,000 training images). Results go to
``OUT/protonn_bonsai.json`` and ``OUT/protonn_bonsai.md`` (default ``docs/benchmarks``); a
rerun skips the runs already there.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from kiloml.data import load_dataset
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.models import get_family
from kiloml.train.fit import fit
from kiloml.train.trainer import TrainConfig

#: row name -> (dataset, model, model settings, kept fractions of the W, U and head groups:
#: ProtoNN's W, B, Z; Bonsai's Z, theta, W and V)
CONFIGS = {
    "ProtoNN mnist-2, d=8 m=10, W 5%": ("mnist-2", "protonn",
                                        dict(projection_dim=8, prototypes=10), (0.05, 1.0, 1.0)),
    "ProtoNN mnist-2, d=10 m=20, W 20%": ("mnist-2", "protonn",
                                          dict(projection_dim=10, prototypes=20),
                                          (0.2, 1.0, 1.0)),
    "ProtoNN mnist, d=15 m=50, W 20%": ("mnist", "protonn",
                                        dict(projection_dim=15, prototypes=50), (0.2, 1.0, 1.0)),
    "ProtoNN fashion-mnist, d=15 m=50, W 20%": ("fashion-mnist", "protonn",
                                                dict(projection_dim=15, prototypes=50),
                                                (0.2, 1.0, 1.0)),
    "Bonsai mnist-2, d=10 depth 2, Z 5%": ("mnist-2", "bonsai",
                                           dict(projection_dim=10, depth=2), (0.05, 1.0, 1.0)),
    "Bonsai mnist, d=20 depth 3, Z 20%": ("mnist", "bonsai", dict(projection_dim=20, depth=3),
                                          (0.2, 1.0, 1.0)),
    "Bonsai fashion-mnist, d=20 depth 3, Z 20%": ("fashion-mnist", "bonsai",
                                                  dict(projection_dim=20, depth=3),
                                                  (0.2, 1.0, 1.0)),
}
#: The papers' figures where the data match: ProtoNN (Gupta et al. 2017, Table 2) and Bonsai
#: (Kumar et al. 2017, Table 3 and Figure 2).
PAPER = {("protonn", "mnist-2"): "96.5 % at 16 KB", ("protonn", "mnist"): "95.88 % at 64 KB",
         ("bonsai", "mnist-2"): "94.38 % at 2 KB, 96.47 % at 16 KB",
         ("bonsai", "mnist"): "97.01 % at 84 KB"}
EPOCHS = 10


def run(name: str, seed: int, quick: bool) -> dict:
    dataset, kind, settings, (keep_w, keep_u, keep_head) = CONFIGS[name]
    data = load_dataset(dataset)
    if quick:
        for split in (data.train, data.val, data.test):
            split.x, split.y = split.x[:600], split.y[:600]
    config = get_family(kind).config(kind=kind, input_size=data.num_features,
                                     num_classes=data.num_classes, **settings).validate()
    train = TrainConfig(epochs=3 if quick else EPOCHS, batch_size=64, keep_w=keep_w,
                        keep_u=keep_u, keep_head=keep_head, seed=seed).validate()
    started = time.process_time()
    outcome = fit(data, config, train)
    graph = quantize_model(outcome.model, data.train.x[:2000], 8)
    integer = simulate(graph, quantize_input(graph, data.test.x)).argmax(1)
    return {"float_accuracy": outcome.metrics["test_accuracy"],
            "int8_accuracy": float(np.mean(integer == data.test.y)),
            "int8_flash_bytes": graph.flash_bytes(), "macs": graph.macs(),
            "cpu_seconds": round(time.process_time() - started, 1)}


def stat(per_seed: dict, key: str) -> str:
    """``mean ± sample std`` in percent over the seeds."""
    values = np.array([r[key] for r in per_seed.values()]) * 100.0
    return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}"


def table(results: dict, seeds: int) -> str:
    rows = ["| configuration | float acc. | int8 acc. (C = simulator) | int8 flash B | MACs "
            "| paper | seeds |", "|---|---|---|---|---|---|---|"]
    for name, per_seed in results.items():
        if not per_seed:
            continue
        flash = int(np.mean([r["int8_flash_bytes"] for r in per_seed.values()]))
        macs = int(np.mean([r["macs"] for r in per_seed.values()]))
        rows.append(f"| {name} | {stat(per_seed, 'float_accuracy')} % | "
                    f"{stat(per_seed, 'int8_accuracy')} % | {flash:,} | {macs:,} | "
                    f"{PAPER.get(CONFIGS[name][1::-1], '-')} | {len(per_seed)} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report", action="store_true",
                        help="only write the table of the runs already saved")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as kiloml train does: threads of a shared machine only wait
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / ("protonn_bonsai_quick.json" if args.quick else "protonn_bonsai.json")
    results = json.loads(saved.read_text()) if saved.exists() else {}
    for name in () if args.report else CONFIGS:
        if args.only and name not in args.only:
            continue
        for seed in range(1 if args.quick else args.seeds):
            if str(seed) in results.get(name, {}):
                continue
            results.setdefault(name, {})[str(seed)] = run(name, seed, args.quick)
            print(name, seed, results[name][str(seed)], flush=True)
            saved.write_text(json.dumps(results, indent=1))
    report = table(results, args.seeds)
    (saved.with_suffix(".md")).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
