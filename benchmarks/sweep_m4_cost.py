"""What ``m4_instructions`` as a sweep objective costs a trial: one small trial trained as
``kiloml sweep`` trains it (the synthetic ``.npz`` of ``sweep_scaling.py``, a FastGRNN of
hidden size 16 with half of ``W`` kept), then its deployed size measured and its Cortex-M4
instructions counted (export into ``RUN/c`` and QEMU, :mod:`kiloml.sweep.instructions`), each
timed side by side in this process. Reported as ratios to the training time (absolute times
on a shared machine are noise), with the machine's load.

    cd benchmarks && python sweep_m4_cost.py [--epochs 100] [--out runs/sweep-m4-cost]
"""

import argparse
import json
import os
import time
from pathlib import Path

from kiloml.cli import train_for_sweep
from kiloml.sweep.instructions import count_m4_instructions, toolchain_missing
from kiloml.sweep.trial import TuneReporter, deployed_size
from machine_info import describe
from sweep_scaling import write_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--bits", type=int, choices=(8, 16), default=16)
    parser.add_argument("--out", type=Path, default=Path("runs/sweep-m4-cost"))
    args = parser.parse_args()
    if toolchain_missing():
        raise SystemExit(toolchain_missing())
    args.out.mkdir(parents=True, exist_ok=True)
    data, run = args.out / "data.npz", args.out / "run"
    write_data(data)
    argv = ["--dataset", str(data), "--epochs", str(args.epochs), "--batch-size", "32",
            "--folds", "0", "--hidden-size", "16", "--sparsity-w", "0.5", "--threads", "1"]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    train_for_sweep(argv, run, TuneReporter(run, args.bits, lambda result: None), resume=False)
    trained = time.perf_counter()
    size = deployed_size(run, args.bits)
    sized = time.perf_counter()
    instructions = count_m4_instructions(run, args.bits)
    counted = time.perf_counter()
    train_s, size_s, count_s = trained - started, sized - trained, counted - sized
    figures = {"epochs": args.epochs, "bits": args.bits, "bytes": size["bytes"],
               "m4_instructions": instructions, "train_seconds": round(train_s, 2),
               "size_seconds": round(size_s, 2), "count_seconds": round(count_s, 2),
               "count_over_train": round(count_s / train_s, 3),
               "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
               "machine": describe()}
    print(json.dumps(figures, indent=2))
    print(f"counting the instructions ({instructions:,.0f} per inference) took "
          f"{count_s / train_s:.2f}x the trial's training time ({args.epochs} epochs); "
          f"measuring its size {size_s / train_s:.3f}x")


if __name__ == "__main__":
    main()
