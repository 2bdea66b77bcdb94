"""Cost of the exported C on emulated Cortex-M4: instructions per inference and per MAC, flash
and RAM, for fixed, seeded synthetic models shaped like ``kiloml train``'s default.

    python benchmarks/cortex_m_cost.py [--target cortex-m4] [--inputs 4] [--only TEXT] [--json F]

Each variant is a random FastGRNN (hidden 32, 6 features, 128 steps, 7 classes; the default
sigmoid gate and relu update) whose matrices keep a seeded random fraction of their weights,
with the normalisation fitted on synthetic data. It is exported with ``kiloml.deploy`` and run
by ``kiloml.deploy.verify`` (arm-none-eabi-gcc -O2, QEMU with the instruction-counting plugin);
every logit is checked against the integer simulator. Needs ``arm-none-eabi-gcc`` and
``qemu-system-arm``.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from kiloml import runs
from kiloml.deploy.export import export_run
from kiloml.deploy.verify import verify_export
from kiloml.nn.classifier import ModelConfig, build_model

STEPS = 128
FEATURES = 6
CLASSES = 7
HIDDEN = 32
FEATURE_SCALE = np.array([1.0, 2.0, 3.0, 50.0, 60.0, 70.0])
FEATURE_OFFSET = np.array([0.0, 1.0, 9.0, 0.0, 0.0, 5.0])

#: name -> (model config fields, weight bits, kept fraction of the W and U matrices)
VARIANTS = {
    "default int16 (U rank 8, keep 0.5)": (dict(u_rank=8), 16, 0.5),
    "default int8 (U rank 8, keep 0.5)": (dict(u_rank=8), 8, 0.5),
    "dense full-rank int16": (dict(), 16, 1.0),
    "tanh update int16 (U rank 8, keep 0.5)": (dict(u_rank=8, update_nonlinearity="tanh"), 16,
                                               0.5),
    "8 frames per step int8 (hidden 120, W rank 8, U rank 6)": (
        dict(frame_stack=8, hidden_size=120, w_rank=8, u_rank=6), 8, 1.0),
}


def synthetic_data(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw features ``[count, STEPS, FEATURES]`` with very different scales, random labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, STEPS, FEATURES)) * FEATURE_SCALE + FEATURE_OFFSET
    return X.astype(np.float32), rng.integers(0, CLASSES, size=count)


def make_run(run_dir: Path, config: dict, keep: float, seed: int = 0) -> Path:
    """A run directory with seeded random weights; ``keep`` of every W/U entry survives."""
    torch.manual_seed(seed)
    settings = dict(kind="fastgrnn", input_size=FEATURES, num_classes=CLASSES,
                    hidden_size=HIDDEN, gate_nonlinearity="sigmoid", update_nonlinearity="relu")
    settings.update(config)
    model_config = ModelConfig(**settings)
    model = build_model(model_config)
    X, _ = synthetic_data(64, seed=100)
    flat = torch.from_numpy(X.reshape(-1, FEATURES))
    model.set_normalization(flat.mean(0), flat.std(0))
    with torch.no_grad():
        for param in model.rnn.parameters():
            if param.dim() == 2 and min(param.shape) > 1:
                param.mul_((torch.rand_like(param) < keep).float())
            elif param.dim() == 2 and param.shape[1] > 1:
                param.normal_(0.0, 0.5)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.save_run_config(run_dir, model_config, {"dataset": "synthetic"}, {})
    runs.save_weights(model, run_dir / runs.WEIGHTS_FILE)
    return run_dir


def measure(root: Path, config: dict, bits: int, keep: float, target: str, inputs: int) -> dict:
    run_dir = make_run(root / "run", config, keep)
    X_calib, _ = synthetic_data(48, seed=1)
    X_test, y_test = synthetic_data(inputs, seed=2)
    export_run(run_dir, root / "export", bits=bits, X_calib=X_calib, X_test=X_test,
               y_test=y_test)
    report = verify_export(root / "export", targets=(target,))
    entry = report["targets"][target]
    if entry.get("status") != "ok":
        raise SystemExit(f"{target}: {entry.get('reason', entry)}")
    if entry["exact_match"] != 1.0:
        raise SystemExit(f"{target}: the C output differs from the simulator")
    info = json.loads((root / "export" / "export.json").read_text())
    return {"instructions_per_inference": entry["instructions_per_inference"],
            "macs_per_inference": entry["macs_per_inference"],
            "instructions_per_mac": entry["instructions_per_mac"],
            "flash_bytes": entry["flash_bytes"], "weight_flash_bytes": info["weight_flash_bytes"],
            "ram_bytes": entry["ram_bytes"], "stack_bytes": entry["stack_bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cortex-m4", choices=["cortex-m4", "cortex-m3"])
    parser.add_argument("--inputs", type=int, default=4, help="test sequences per variant")
    parser.add_argument("--only", default=None, help="run only variants containing this text")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (config, bits, keep)) in enumerate(VARIANTS.items()):
            if args.only and args.only not in name:
                continue
            results[name] = measure(Path(tmp) / str(i), config, bits, keep, args.target,
                                    args.inputs)
    print(f"{args.target}, arm-none-eabi-gcc -O2, {STEPS} steps, hidden {HIDDEN}, "
          f"{FEATURES} features, {CLASSES} classes\n")
    print("| variant | instructions / inference | MACs | instructions / MAC | flash bytes "
          "(weights) | RAM bytes (stack) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['instructions_per_inference']:,.0f} | {r['macs_per_inference']:,} "
              f"| {r['instructions_per_mac']:.2f} | {r['flash_bytes']:,} "
              f"({r['weight_flash_bytes']:,}) | {r['ram_bytes']:,} ({r['stack_bytes']}) |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
