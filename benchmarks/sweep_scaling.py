"""How ``kiloml sweep`` scales with workers: the same 8-trial sweep run with 1 and then 2
workers, in one run, reported as a wall-time ratio (absolute times on a shared machine are
noise; other people's load distorts the ratio too, so the machine's load is printed with it).

Both sweeps are identical: the same synthetic ``.npz`` (written here), the same seeded Optuna
sampler (its first trials are random draws from the seed, so both sweeps train the same 8
configurations), ASHA off so every trial trains to the end. Each trial trains a small FastGRNN
for 100 epochs (about 15-20 s on an idle core: with a few seconds per trial, Ray's start-up and
each worker's PyTorch import dominate and the ratio says nothing about the trials); the Ray
start-up is inside the measured time, as a user sees it.

    python benchmarks/sweep_scaling.py [--trials 8] [--epochs 100] [--out runs/sweep-scaling]
                                       [--no-plain] [--repeat N]
"""

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from machine_info import describe

SPACE = """
[train]
dataset = "{data}"
epochs = {epochs}
batch-size = 32
folds = 0

[space]
hidden-size = [8, 16, 24]
sparsity-w = {{ range = [0.3, 1.0] }}
lr = {{ log-range = [0.003, 0.03] }}

[search]
trials = {trials}
seed = 0

[asha]
enabled = false
"""


def write_data(path: Path, n: int = 600, steps: int = 48, features: int = 6) -> None:
    """Noisy sinusoids whose frequency is the class (4 classes)."""
    rng = np.random.default_rng(0)

    def make(count):
        y = rng.integers(0, 4, size=count)
        t = np.arange(steps)[None, :, None]
        x = np.sin((y[:, None, None] + 1) * 0.3 * t + rng.uniform(0, 6.3, (count, 1, features)))
        return (x + 0.5 * rng.normal(size=(count, steps, features))).astype(np.float32), y

    x_train, y_train = make(n)
    x_test, y_test = make(n // 4)
    np.savez(path, X_train=x_train, y_train=y_train, X_test=x_test, y_test=y_test)


def kiloml_command() -> str:
    """The ``kiloml`` entry point next to this Python."""
    return str(Path(sys.executable).parent / "kiloml")


def sweep(space: Path, out: Path, workers: int) -> tuple[float, float, list, dict]:
    """Wall seconds of the whole command and of its trials (Ray included), the trials'
    sampled configurations, and where the command's time went (:func:`phases`)."""
    kiloml = kiloml_command()
    started, started_epoch = time.perf_counter(), time.time()
    done = subprocess.run([kiloml, "sweep", str(space), "--out", str(out), "--workers",
                           str(workers), "--overwrite"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"sweep with {workers} worker(s) failed: {done.stderr.strip()}")
    trials = float(re.search(r"trials in (\d+) s", done.stdout).group(1))
    rows = json.loads((out / "results.json").read_text())["trials"]
    configs = sorted((r["hidden_size"], round(r["sparsity_w"], 6), round(r["lr"], 8))
                     for r in rows)
    return wall, trials, configs, phases(out, rows, started_epoch, started_epoch + wall)


def phases(out: Path, rows: list[dict], started: float, ended: float) -> dict:
    """Where a sweep's wall time went, from its files' times (seconds): ``startup`` (the
    command's imports, Ray's start and the first worker's imports, until the first trial
    wrote its ``config.json``), ``trials`` (from then until the last trial's last output
    line), ``finish`` (the front's test evaluation, the plot, Ray's shutdown) and ``busy``
    (the trials' own spans, ``config.json`` to last log line, summed)."""
    spans = [((out / "runs" / r["trial"] / "config.json").stat().st_mtime,
              (out / "logs" / f"{r['trial']}.log").stat().st_mtime) for r in rows]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return {"startup": first - started, "trials": last - first, "finish": ended - last,
            "busy": sum(e - s for s, e in spans)}


def trial_order(out: Path) -> list[dict]:
    """The sweep's trials in the order Ray Tune started them (its trial directories are named
    ``run_trial_ID_N_...``, N counting from 1), as rows of ``results.json``."""
    rows = {r["trial"]: r for r in json.loads((out / "results.json").read_text())["trials"]}
    started = {}
    for path in (out / "ray" / "tune").glob("run_trial_*"):
        match = re.match(r"run_trial_([0-9a-f]+)_(\d+)_", path.name)
        if match and match.group(1) in rows:
            started[match.group(1)] = int(match.group(2))
    return [rows[t] for t in sorted(rows, key=lambda t: started.get(t, len(rows)))]


def _quiet() -> None:
    """Pool initializer: a trial's output goes nowhere."""
    sys.stdout = sys.stderr = open(os.devnull, "w")


def _train(argv: list[str]) -> int:
    from kiloml.cli import main
    return main(argv)


def plain(rows: list[dict], data: Path, epochs: int, out: Path, workers: int) -> float:
    """Wall seconds of the trials ``rows`` trained by plain ``kiloml train --threads 1`` (no
    Ray) in ``workers`` processes, each importing kiloml once as a sweep's worker does; the
    trials are taken in this order, the next one by whichever process is free first."""
    commands = [["train", "--dataset", str(data), "--epochs", str(epochs),
                 "--batch-size", "32", "--folds", "0", "--threads", "1",
                 "--hidden-size", str(r["hidden_size"]), "--sparsity-w", repr(r["sparsity_w"]),
                 "--lr", repr(r["lr"]), "--out", str(out / r["trial"]), "--overwrite"]
                for r in rows]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_quiet) as pool:
        statuses = list(pool.imap(_train, commands, chunksize=1))
    wall = time.perf_counter() - started
    if any(statuses):
        sys.exit(f"plain kiloml train with {workers} process(es) failed: {statuses}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/sweep-scaling"))
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the plain kiloml train processes (the machine's own ratio)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the pair of sweeps (1 worker, then 2) this many times, "
                             "each pair's ratio printed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = (args.out / "data.npz").resolve()
    write_data(data)
    space = args.out / "space.toml"
    space.write_text(SPACE.format(data=data, epochs=args.epochs, trials=args.trials))
    print(describe())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    tags = [f"-{repeat + 1}" for repeat in range(args.repeat)] if args.repeat > 1 else [""]
    # 1 worker, 2 workers, 1, 2, ...: the load drifts alike for both
    pairs = [(sweep(space, args.out / f"workers-1{tag}", 1),
              sweep(space, args.out / f"workers-2{tag}", 2)) for tag in tags]
    if not args.no_plain:
        rows = trial_order(args.out / f"workers-1{tags[0]}")
        serial = plain(rows, data, args.epochs, args.out / "plain-1", 1)
        parallel = plain(rows, data, args.epochs, args.out / "plain-2", 2)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    same = all(one[2] == two[2] == pairs[0][0][2] for one, two in pairs)
    if not same:
        print("warning: the sweeps trained different configurations")
    print(f"{args.trials} trials of {args.epochs} epochs, same configurations: {same}")
    print("| pair | workers | command wall s | trials wall s (Ray start included) | start-up s | "
          "first trial start to last trial end s | finish s | trials' own spans, summed s |")
    print("|---|---|---|---|---|---|---|---|")
    for number, pair in enumerate(pairs, 1):
        for workers, (wall, trials, _, spent) in zip((1, 2), pair, strict=True):
            print(f"| {number} | {workers} | {wall:.1f} | {trials:.0f} | {spent['startup']:.1f} | "
                  f"{spent['trials']:.1f} | {spent['finish']:.1f} | {spent['busy']:.1f} |")
    for number, (one, two) in enumerate(pairs, 1):
        print(f"pair {number}: speed-up with 2 workers {one[0] / two[0]:.2f}x (command), "
              f"{one[1] / two[1]:.2f}x (trials)")
    if not args.no_plain:
        print(f"plain kiloml train (no Ray), the same {len(rows)} trials in the same order: "
              f"1 process {serial:.1f} s, 2 processes {parallel:.1f} s: "
              f"{serial / parallel:.2f}x (what the machine gives)")

if __name__ == "__main__":
    main()
