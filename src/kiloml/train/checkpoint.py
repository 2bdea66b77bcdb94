"""Training checkpoints: one safetensors file holding model, optimiser, masks and the best state,
with the loop's counters as JSON metadata; written atomically."""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open

from kiloml.errors import KilomlError
from kiloml.runs import atomic_save_tensors


def save_checkpoint(path: Path, model_state: dict, optimizer_state: dict,
                    masks: dict[str, torch.Tensor], best_state: dict | None,
                    thresholds: dict[str, torch.Tensor], loop: dict) -> None:
    """Write everything needed to continue training exactly where it stopped
    (``optimizer_state``: the optimiser's ``state_dict()``; ``thresholds``: STR's ``s`` per
    matrix and, as ``scale.NAME``, its threshold scale; empty without STR)."""
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    opt = optimizer_state
    for index, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).clone()
    tensors.update({f"mask.{k}": v.to(torch.uint8) for k, v in masks.items()})
    tensors.update({f"threshold.{k}": v.detach().reshape(1) for k, v in thresholds.items()})
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    meta = {"loop": json.dumps(loop), "param_groups": json.dumps(opt["param_groups"])}
    atomic_save_tensors(path, tensors, metadata=meta)


def load_checkpoint(path: Path, optimizer: torch.optim.Optimizer) -> tuple[dict, dict, dict | None,
                                                                             dict, dict]:
    """Read a checkpoint; restores the optimiser in place and returns
    ``(model_state, masks, best_state, loop, thresholds)``."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        loop = json.loads(meta["loop"])
        param_groups = json.loads(meta["param_groups"])
    except FileNotFoundError:
        raise KilomlError(f"{path}: no checkpoint to resume from") from None
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as e:
        raise KilomlError(f"{path}: unreadable checkpoint ({e})") from None

    def section(prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    optim_state: dict[int, dict] = {}
    for key, value in section("optim.").items():
        index, name = key.split(".", 1)
        optim_state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": optim_state, "param_groups": param_groups})
    except (ValueError, KeyError) as e:
        raise KilomlError(f"{path}: checkpoint does not match this model ({e})") from None
    best = section("best.") or None
    masks = {k: v.bool() for k, v in section("mask.").items()}
    thresholds = {k: v.reshape(()) for k, v in section("threshold.").items()}
    return section("model."), masks, best, loop, thresholds


def check_checkpoint_matches(path: Path, model: torch.nn.Module) -> None:
    """One-line error unless ``path`` is a readable checkpoint whose model tensors have the
    names and shapes of ``model``'s (a checkpoint of another run would not load)."""
    if not Path(path).is_file():
        raise KilomlError(f"{path}: no checkpoint to resume from (the run finished no epoch)")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k[len("model."):]: list(f.get_slice(k).get_shape())
                      for k in f.keys() if k.startswith("model.")}
    except (SafetensorError, OSError) as e:
        raise KilomlError(f"{path}: unreadable checkpoint ({e})") from None
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    if set(shapes) != set(expected):
        differ = sorted(set(shapes) ^ set(expected))
        raise KilomlError(f"{path}: a checkpoint of another model (tensors {differ[:4]} differ "
                          "from this run's config.json)")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise KilomlError(f"{path}: a checkpoint of another model ({name} is {shape} in "
                              f"this run's config.json, {shapes[name]} in the checkpoint)")
