"""Run directories with synthetic models of every deployable family, and their exports."""

from pathlib import Path

import numpy as np
import torch

from kiloml import runs
from kiloml.deploy.export import export_run
from kiloml.nn.classifier import ModelConfig, build_model

STEPS = 24
FEATURE_SCALE = np.array([1.0, 2.0, 3.0, 50.0, 60.0, 70.0])


def synthetic_data(count: int, seed: int, steps: int = STEPS, features: int = 6,
                   classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Raw features ``[count, steps, features]`` with very different per-feature scales."""
    rng = np.random.default_rng(seed)
    scale = np.resize(FEATURE_SCALE, features)
    X = rng.normal(size=(count, steps, features)) * scale + np.resize([0, 1, 9, 0, 0, 5], features)
    return X.astype(np.float32), rng.integers(0, classes, size=count)


def make_run(run_dir: Path, seed: int = 0, steps: int = STEPS, keep: float = 0.5,
             **config) -> Path:
    """Save a run with random weights (a ``keep`` fraction of every matrix nonzero) and
    normalisation fitted on synthetic data."""
    torch.manual_seed(seed)
    settings = dict(kind="fastgrnn", input_size=6, num_classes=5, hidden_size=16)
    settings.update(config)
    model_config = ModelConfig(**settings)
    model = build_model(model_config)
    X, _ = synthetic_data(64, seed=100, steps=steps, features=model_config.input_size)
    flat = torch.from_numpy(X.reshape(-1, model_config.input_size))
    model.set_normalization(flat.mean(0), flat.std(0))
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2 and min(param.shape) > 1:
                param.mul_((torch.rand_like(param) < keep).float())
            elif param.dim() == 2 and param.shape[1] > 1:
                param.normal_(0.0, 0.5)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.save_run_config(run_dir, model_config, {"dataset": "synthetic"}, {})
    runs.save_weights(model, run_dir / runs.WEIGHTS_FILE)
    return run_dir


def make_export(root: Path, bits: int = 16, target: str = "c", steps: int = STEPS,
                keep: float = 0.5, **config) -> Path:
    """Export a :func:`make_run` model, calibrated on 48 and tested on 40 synthetic inputs."""
    run_dir = make_run(root / "run", steps=steps, keep=keep, **config)
    shape = dict(steps=steps, features=config.get("input_size", 6),
                 classes=config.get("num_classes", 5))
    X_calib, _ = synthetic_data(48, seed=1, **shape)
    X_test, y_test = synthetic_data(40, seed=2, **shape)
    export_run(run_dir, root / "export", bits=bits, target=target, X_calib=X_calib,
               X_test=X_test, y_test=y_test)
    return root / "export"


#: Model variants every C target is checked on.
VARIANTS = {
    "fastgrnn-int16": dict(bits=16),
    "fastgrnn-lowrank-mean-int8": dict(bits=8, w_rank=3, u_rank=6, readout="mean"),
    "fastrnn-int16": dict(bits=16, kind="fastrnn"),
    "fastgrnn-quant-int8": dict(bits=8, gate_nonlinearity="quantSigm",
                                update_nonlinearity="quantTanh"),
    "fastgrnn-relu-lowrank-int16": dict(bits=16, update_nonlinearity="relu", u_rank=4,
                                        readout="mean"),
    "fastgrnn-relu-gate-int16": dict(bits=16, gate_nonlinearity="relu", w_rank=2),
    "fastgrnn-stack4-int8": dict(bits=8, frame_stack=4, w_rank=3, u_rank=6),
    "gru-int16": dict(bits=16, kind="gru"),
    "lstm-mean-int8": dict(bits=8, kind="lstm", readout="mean"),
}
