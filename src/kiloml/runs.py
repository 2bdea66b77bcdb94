"""The run directory: the unit of exchange between kiloml's steps.

``RUN/config.json``      format version, model config, data and training settings
``RUN/model.safetensors`` final (best-validation) weights, never pickle
``RUN/metrics.json``     test accuracy, size, MACs, timings (see :mod:`kiloml.train.metrics`)
``RUN/checkpoint.safetensors`` last completed epoch, for ``--resume``
``RUN/history.png``, ``RUN/confusion.png`` plots
``RUN/.kiloml-output.json`` marker: kiloml wrote this directory (see :mod:`kiloml.outputs`)

``config.json["data"]`` records where the data came from (``path``, absolute) and its
``fingerprint`` (size and SHA-256 of the files); :func:`load_run_data` loads the data again and
refuses it if it changed. Later steps read a run directory through :func:`load_run` only.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kiloml import RUN_FORMAT_VERSION, __version__
from kiloml.errors import KilomlError
from kiloml.models import build_model, config_from_dict
from kiloml.outputs import OutputKind, atomic_write_bytes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_PLOT = "history.png"
CONFUSION_PLOT = "confusion.png"
#: The folder ``kiloml demo`` exports the run's C into.
DEMO_EXPORT_DIR = "c"
#: An MI-ShaRNN run's training data: the instances an EMI run relabelled (``train.mi_sharnn``).
INSTANCES_FILE = "instances.npz"
#: A run directory as an output of kiloml (:mod:`kiloml.outputs`).
#: With cross-validation, each fold's checkpoint (``train.cross_validation``).
FOLDS_DIR = "folds"
RUN_OUTPUT = OutputKind("run", CONFIG_FILE, (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE,
                                             CHECKPOINT_FILE, HISTORY_PLOT, CONFUSION_PLOT,
                                             DEMO_EXPORT_DIR, FOLDS_DIR, INSTANCES_FILE),
                        scratch_dirs=(FOLDS_DIR,))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    atomic_write_bytes(path, text.encode())


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


def save_run_config(run_dir: Path, model_config, data: dict, train: dict,
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


def update_run_model_config(run_dir: Path, model_config) -> None:
    """Replace ``config.json``'s model section with ``model_config``: the model as trained,
    when training changed its shape (low-rank STR stores the learned ranks)."""
    config = read_json(run_dir / CONFIG_FILE)
    config["model"] = model_config.to_dict()
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


def load_weights(model: torch.nn.Module, path: Path) -> None:
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


def save_weights(model: torch.nn.Module, path: Path) -> None:
    atomic_save_tensors(path, dict(model.state_dict()))


def load_run(run_dir: Path) -> tuple[dict, torch.nn.Module]:
    """``(config, model)`` of a finished run, the model in eval mode."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    model = build_model(config_from_dict(config["model"]))
    load_weights(model, run_dir / WEIGHTS_FILE)
    return config, model.eval()


def check_finite_weights(model: torch.nn.Module, where: Path) -> None:
    """One-line error if a weight or buffer of ``model`` (loaded from ``where``) is NaN or
    infinite."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            count = int((~torch.isfinite(tensor)).sum())
            raise KilomlError(f"{where}: {name} holds {count} NaN/inf values; the run diverged "
                              "and cannot be used (train it again, e.g. with a smaller --lr)")


def run_data_source(config: dict) -> str:
    """What to pass to ``load_dataset`` for a run's data: the registered name, or the absolute
    path recorded for the user's own data (runs without it: the name as given)."""
    from kiloml.data.registry import DATASETS

    data = config.get("data", {})
    name = data.get("dataset")
    if not name:
        raise KilomlError("config.json names no dataset")
    return name if name in DATASETS else data.get("path") or name


def load_run_data(config: dict, data_dir: Path | None = None, *, check: bool = True,
                  windowing: bool = False, hint: str = ""):
    """The dataset a run was trained on, loaded as it was (``skip_bad_files``; the front
    padding of sequences cut into whole frames; with ``windowing``, the training windows'
    ``train_hop`` and ``train_speeds``); with ``check``, a one-line error (ending with ``hint``)
    if its files differ from the fingerprint the run recorded."""
    from kiloml.data import load_run_dataset
    from kiloml.data.fingerprint import data_sources, describe_change, fingerprint

    recorded = config.get("data", {})
    data = load_run_dataset({**recorded, "dataset": run_data_source(config)}, data_dir,
                            windowing=windowing)
    if check and recorded.get("fingerprint"):
        sources = data_sources(data)
        change = describe_change(recorded["fingerprint"], fingerprint(sources))
        if change is not None:
            where = ", ".join(map(str, sources)) or recorded.get("dataset")
            raise KilomlError(f"{where}: the data changed since the run was trained ({change})"
                              + hint)
    return data
