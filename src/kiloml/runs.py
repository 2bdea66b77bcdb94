"""The run directory: the unit of exchange between kiloml's steps.

``RUN/config.json``      format version, model config, data and training settings
``RUN/model.safetensors`` final (best-validation) weights, never pickle
``RUN/metrics.json``     test accuracy, size, MACs, timings (see :mod:`kiloml.train.metrics`)
``RUN/checkpoint.safetensors`` last completed epoch, for ``--resume``
``RUN/history.png``, ``RUN/confusion.png`` plots

Later steps read a run directory through :func:`load_run` only.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kiloml import RUN_FORMAT_VERSION, __version__
from kiloml.errors import KilomlError
from kiloml.nn.classifier import ModelConfig, SequenceClassifier, build_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.safetensors"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    """``safetensors`` save through a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KilomlError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise KilomlError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def save_run_config(run_dir: Path, model_config: ModelConfig, data: dict, train: dict,
                    defaults: dict | None = None) -> None:
    """``config.json``; ``defaults`` records how data-dependent defaults were chosen (recipe,
    budget, epoch selection)."""
    config = {
        "format_version": RUN_FORMAT_VERSION,
        "kiloml_version": __version__,
        "model": model_config.to_dict(),
        "data": data,
        "train": train,
    }
    if defaults is not None:
        config["defaults"] = defaults
    write_json(run_dir / CONFIG_FILE, config)


def read_run_config(run_dir: Path) -> dict:
    """``config.json`` of a run, checked for a format this version of kiloml understands."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KilomlError(f"{run_dir}: no such run directory")
    config = read_json(run_dir / CONFIG_FILE)
    version = config.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise KilomlError(f"{run_dir}: run format version {version!r} is not supported by kiloml "
                          f"{__version__} (expects {RUN_FORMAT_VERSION}); retrain the model")
    if "model" not in config:
        raise KilomlError(f"{run_dir / CONFIG_FILE}: missing the 'model' section")
    return config


def load_weights(model: SequenceClassifier, path: Path) -> None:
    """Load ``path`` (safetensors) into ``model``; mismatches are one-line errors."""
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise KilomlError(f"{path}: file not found") from None
    except (SafetensorError, OSError) as e:
        raise KilomlError(f"{path}: not a readable safetensors file ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise KilomlError(f"{path}: weights do not match the config (missing {missing}, "
                          f"unexpected {unexpected})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise KilomlError(f"{path}: {name} has shape {list(tensor.shape)}, the config needs "
                              f"{list(expected[name].shape)}")
    model.load_state_dict(state)


def save_weights(model: SequenceClassifier, path: Path) -> None:
    atomic_save_tensors(path, dict(model.state_dict()))


def load_run(run_dir: Path) -> tuple[dict, SequenceClassifier]:
    """``(config, model)`` of a finished run, the model in eval mode."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    model = build_model(ModelConfig.from_dict(config["model"]))
    load_weights(model, run_dir / WEIGHTS_FILE)
    return config, model.eval()
