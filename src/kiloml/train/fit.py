"""One call from data and configs to a trained model and its metrics (used by the CLI and the
benchmarks)."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kiloml.compress.rank_threshold import factor_learned_ranks
from kiloml.compress.size import count_parameters, macs_per_inference, model_size_bytes
from kiloml.data.splits import DatasetSplits
from kiloml.errors import KilomlError
from kiloml.models import build_model, get_family
from kiloml.nn.classifier import ModelConfig, SequenceClassifier
from kiloml.train.chance import chance_warning
from kiloml.train.cross_validation import (
    CrossValidation,
    all_sequences,
    cross_validate,
    pooled,
)
from kiloml.train.trainer import Reporter, TrainConfig, Trainer, TrainResult, evaluate


def fit_normalization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std ``[F]`` over all sequences and steps of ``x`` ``[N, T, F]``;
    constant features get std 1. Features too large for float32 statistics are an error."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = x.mean(axis=(0, 1))
        std = x.std(axis=(0, 1))
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        f = int(np.argmax(bad))
        raise KilomlError(f"feature {f} of the training split is too large for float32 "
                          f"statistics (values up to {np.abs(x[:, :, f]).max():.3g}); scale "
                          "the data down")
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def check_frame_stack(model_config: ModelConfig, data: DatasetSplits) -> None:
    """One-line error unless the sequences split into whole stacks of ``frame_stack`` frames."""
    frame_stack = getattr(model_config, "frame_stack", 1)
    if data.steps % frame_stack:
        raise KilomlError(f"--frame-stack {frame_stack} needs a sequence length "
                          f"divisible by it; {data.name} has {data.steps} steps")
    if hasattr(model_config, "check_steps"):  # ShaRNN: whole bricks
        model_config.check_steps(data.steps)


def fit_image_normalization(x, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std ``[C]`` over every pixel of image rows ``x`` ``[N, H, W·C]``
    (an array or a lazy array, read 1,000 images at a time); constant channels get std 1."""
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(x), 1000):
        pixels = np.asarray(x[start:start + 1000], dtype=np.float64).reshape(-1, channels)
        total += pixels.sum(axis=0)
        squares += (pixels ** 2).sum(axis=0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def _image_shape(data: DatasetSplits) -> list[int] | None:
    shape = data.info.get("image_shape")
    return [int(v) for v in shape] if shape else None


def check_input_kind(kind: str, data: DatasetSplits) -> None:
    """One-line error unless family ``kind`` takes what ``data`` holds: sequences
    ``[N, T, F]`` for the sequence families, feature vectors ``[N, F]`` (one step) for
    ProtoNN and Bonsai, images (``info["image_shape"]``) for the vision families; datasets of
    images only (``info["input"] == "image"``) are refused by the others."""
    vectors = data.info.get("input") == "vector"
    input_kind = get_family(kind).input_kind
    shape = _image_shape(data)
    if input_kind == "image":
        if shape is None:
            held = (f"feature vectors [N, {data.num_features}]" if vectors else
                    f"sequences [N, {data.steps}, {data.num_features}]")
            raise KilomlError(f"{kind} takes images [N, C, H, W]; {data.name} holds {held}: "
                              "use an image dataset (cifar10, cifar10-animals-vs-vehicles-96)")
        c, h, w = shape
        if (data.steps, data.num_features) != (h, w * c):
            raise KilomlError(f"{data.name}: images declared {c}x{h}x{w} but held as rows "
                              f"[N, {data.steps}, {data.num_features}], expected "
                              f"[N, {h}, {w * c}]")
        return
    if data.info.get("input") == "image":
        raise KilomlError(f"{kind} takes sequences [N, T, F]; {data.name} holds images "
                          f"[N, {', '.join(map(str, shape))}] for the vision models: use --model "
                          "mobilenetv2 or rnnpool-mobilenetv2 (or dataset cifar10, whose rows a "
                          "sequence model reads as steps)")
    if input_kind == "vector":
        if data.steps != 1:
            raise KilomlError(f"{kind} takes feature vectors [N, F]; {data.name} holds sequences "
                              f"[N, {data.steps}, {data.num_features}]: flatten each into one "
                              f"vector of {data.steps * data.num_features} features (e.g. "
                              "dataset mnist instead of mnist-rows, or a .npz with 2-D X)")
    elif vectors:
        raise KilomlError(f"{kind} takes sequences [N, T, F]; {data.name} holds feature vectors "
                          f"[N, {data.num_features}]: use --model protonn or bonsai, or give "
                          "sequences (e.g. dataset mnist-rows, or a .npz with 3-D X)")


def check_image_shape(model_config, data: DatasetSplits) -> None:
    """One-line error unless ``data`` holds images of the size and channels a vision model was
    built for."""
    expected = list(model_config.image_shape)
    shape = _image_shape(data)
    if shape != expected:
        held = "no images" if shape is None else "images [N, " + ", ".join(map(str, shape)) + "]"
        raise KilomlError(f"{data.name} holds {held}, but the {model_config.kind} model takes "
                          f"[N, {', '.join(map(str, expected))}] ({expected[0]} channels, "
                          f"{expected[1]}x{expected[2]} pixels)")


def new_model(model_config: ModelConfig, data: DatasetSplits, seed: int) -> SequenceClassifier:
    """A model initialised from ``seed`` with normalisation fitted on the training split (and,
    for a family with ``init_from_data`` such as ProtoNN, initialised from it)."""
    check_input_kind(model_config.kind, data)
    check_frame_stack(model_config, data)
    image_shape = getattr(model_config, "image_shape", None)
    if image_shape is not None:
        check_image_shape(model_config, data)
    torch.manual_seed(seed)
    model = build_model(model_config)
    normalization = (fit_image_normalization(data.train.x, image_shape[0]) if image_shape
                     else fit_normalization(data.train.x))
    model.set_normalization(*map(torch.from_numpy, normalization))
    if hasattr(model, "init_from_data"):
        model.init_from_data(data.train.x, data.train.y, seed)
    return model


@dataclass
class FitOutcome:
    model: SequenceClassifier
    result: TrainResult
    metrics: dict
    test_predictions: np.ndarray | None
    cross_validation: CrossValidation | None = None


def model_metrics(model: SequenceClassifier, data: DatasetSplits, test_split: bool = True
                  ) -> tuple[dict, np.ndarray | None]:
    """Test accuracy, deployed size and compute of a trained model (see ``metrics.json``) and
    the test predictions ``[N]``; without ``test_split`` the test split is not looked at (a
    sweep's trials: no accuracy and no predictions)."""
    total, nonzero = count_parameters(model)
    test = {}
    pred = None
    if test_split:
        test_loss, test_acc, pred = evaluate(model, data.test)
        test = {"test_accuracy": test_acc, "test_loss": test_loss}
    return {
        "dataset": data.name,
        "model": model.config.kind,
        **test,
        "model_size_bytes": model_size_bytes(model),
        "model_size_bytes_int16": model_size_bytes(model, value_bytes=2),
        "model_size_bytes_int8": model_size_bytes(model, value_bytes=1),
        "params_total": total,
        "params_nonzero": nonzero,
        "macs_per_inference": macs_per_inference(model, data.steps),
    }, pred


def fit(data: DatasetSplits, model_config: ModelConfig, train_config: TrainConfig,
        checkpoint_path: Path | None = None, resume: bool = False,
        reporter: Reporter | None = None, model: SequenceClassifier | None = None,
        folds: int = 0, on_fold: Callable[[int, int, TrainResult], None] | None = None,
        fold_reporter: Reporter | None = None, test_split: bool = True) -> FitOutcome:
    """Build (unless given), train and measure a model.

    With ``folds`` > 1, the epoch is chosen by ``folds``-fold cross-validation on the training and
    validation sequences pooled (``train.cross_validation``; ``on_fold`` is called after each
    fold, ``fold_reporter`` gets the folds' progress), and the model trains on all of them;
    ``model`` must then be ``None``. Without ``test_split`` the test split is never evaluated
    (the metrics have no ``test_accuracy``; a sweep's trials).
    """
    started = time.perf_counter()
    cv, keep_epoch, held_out_labels = None, None, data.val.y
    if folds > 1:
        if model is not None:
            raise ValueError("cross-validation builds its own models")
        cv = cross_validate(data, model_config, train_config, new_model, checkpoint_path,
                            resume, fold_reporter, folds=folds, on_fold=on_fold)
        keep_epoch, held_out_labels = cv.chosen_epoch, pooled(data).y
        data_for_training = all_sequences(data, pooled(data))
    else:
        data_for_training = data
    model = model or new_model(model_config, data_for_training, train_config.seed)
    torch.manual_seed(train_config.seed)
    trainer = Trainer(model, data_for_training, train_config, checkpoint_path=checkpoint_path,
                      reporter=reporter, keep_epoch=keep_epoch)
    result = trainer.fit(resume=resume and (cv is None or _exists(checkpoint_path)))
    if result.compression.get("ranks"):  # low-rank STR: store the learned factors
        model = factor_learned_ranks(model, result.compression["ranks"])
    elapsed = time.perf_counter() - started
    if cv is not None:
        result.best_val_accuracy = cv.accuracy
        result.train_seconds += cv.seconds
    metrics, pred = model_metrics(model, data, test_split)
    selection = ({"method": "cross-validation", **cv.summary()} if cv is not None else
                 {"method": "validation split", "sequences": len(data.val)})
    metrics.update({
        "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(elapsed, 2),
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.best_val_accuracy,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "keep_w": train_config.keep_w,
        "keep_u": train_config.keep_u,
        "keep_head": train_config.keep_head,
        "sparsity_block": train_config.sparsity_block,
        "compress": train_config.compress,
        "learn_rank": train_config.learn_rank,
        "selection": selection,
    })
    if result.compression:  # STR: target, sparsity reached, learned budget of every matrix
        metrics["str"] = result.compression
    metrics.update(chance_warning(result.best_val_accuracy, held_out_labels, data.num_classes,
                                  images=get_family(model_config.kind).input_kind == "image"))
    return FitOutcome(model, result, metrics, pred, cv)


def _exists(path: Path | None) -> bool:
    return path is not None and path.is_file()
