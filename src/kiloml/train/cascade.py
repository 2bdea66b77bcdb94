"""Training a cascade (:class:`kiloml.nn.cascade.Cascade`) as MSC-RNN trains one: each tier
on its own labels with the same Trainer and budget, then the threshold on the validation split.

1. The lower tier learns "nothing" (the noise class) against "something" (every other class)
   on all training sequences.
2. The upper tier learns the event classes on the training sequences that are not noise.
3. Unless the config fixes it, the threshold on the lower tier's probability of "something"
   is the one of ``THRESHOLDS`` (0.05, 0.10, ..., 0.95) with the best validation accuracy of
   the whole cascade; on ties the highest (the fewest upper-tier calls).

Each tier picks its best epoch on its own validation labels. The test split is evaluated
once, at the end (never with ``test_split=False``).
"""

import numpy as np
import torch

from kiloml.compress.size import macs_per_inference
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError
from kiloml.nn.cascade import Cascade, CascadeConfig
from kiloml.train.fit import FitOutcome, fit, model_metrics, new_model
from kiloml.train.trainer import TrainConfig

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def tier_splits(data: DatasetSplits, config: CascadeConfig) -> tuple[DatasetSplits,
                                                                     DatasetSplits]:
    """``(lower, upper)``: every training/validation sequence labelled 0 (noise) or 1 (an
    event), and the event sequences alone with their class's index among the event classes.
    Their test split is the validation one (never evaluated while training)."""
    noise, events = config.noise_class, np.array(config.event_classes)
    remap = np.full(config.num_classes, -1, dtype=np.int64)
    remap[events] = np.arange(len(events))

    def binary(split: Split) -> Split:
        return Split(split.x, (split.y != noise).astype(np.int64))

    def event(split: Split, name: str) -> Split:
        keep = split.y != noise
        if not keep.any():
            raise KilomlError(f"{data.name}: the {name} split holds no event (only the noise "
                              "class); the upper tier has nothing to learn")
        return Split(split.x[keep], remap[split.y[keep]])

    for name, split in (("training", data.train), ("validation", data.val)):
        if not (split.y == noise).any():
            raise KilomlError(f"{data.name}: the {name} split holds no sequence of the noise "
                              f"class {data.class_names[noise]!r}; the lower tier cannot learn "
                              "nothing from something")
    names = [str(data.class_names[c]) for c in events]
    lower_val = binary(data.val)
    lower = DatasetSplits(f"{data.name} nothing/something", binary(data.train), lower_val,
                          lower_val, ["nothing", "something"], data.description, data.info)
    upper_val = event(data.val, "validation")
    upper = DatasetSplits(f"{data.name} events", event(data.train, "training"), upper_val,
                          upper_val, names, data.description, data.info)
    return lower, upper


def tier_outputs(model: Cascade, x: np.ndarray, batch: int = 512
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(p [N], upper class [N])``: the lower tier's probability of "something" and the
    upper tier's choice (as a data class) on every sequence, the upper tier run on all (for
    choosing the threshold; inference runs it only where the lower fires)."""
    model.eval()
    ps, classes = [], []
    events = np.array(model.config.event_classes)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(x[start:start + batch])
            ps.append(model.event_probability(chunk).double().numpy())
            classes.append(events[model.upper(chunk).argmax(dim=1).numpy()])
    return np.concatenate(ps), np.concatenate(classes)


def cascade_accuracy(p: np.ndarray, upper: np.ndarray, y: np.ndarray, threshold: float,
                     noise: int) -> float:
    """Accuracy of the cascade's decision (noise below ``threshold``, else the upper tier's
    class) from :func:`tier_outputs`."""
    return float((np.where(p >= threshold, upper, noise) == y).mean())


def choose_threshold(p: np.ndarray, upper: np.ndarray, y: np.ndarray, noise: int) -> float:
    """The threshold of ``THRESHOLDS`` with the best accuracy, the highest on ties."""
    scores = [cascade_accuracy(p, upper, y, t, noise) for t in THRESHOLDS]
    best = max(scores)
    return max(t for t, s in zip(THRESHOLDS, scores, strict=True) if s == best)


def evaluate_cascade(model: Cascade, split: Split) -> tuple[dict, np.ndarray]:
    """Accuracy and the fraction of upper-tier calls on ``split``, and the predictions
    ``[N]``, from the model's own forward (the upper tier read only where the lower fires)."""
    model.eval()
    model.calls = model.upper_calls = 0
    with torch.no_grad():
        pred = np.concatenate([model(torch.from_numpy(split.x[s:s + 512])).argmax(1).numpy()
                               for s in range(0, len(split), 512)])
    return {"accuracy": float((pred == split.y).mean()),
            "upper_fraction": model.upper_calls / max(model.calls, 1)}, pred


def train_cascade(data: DatasetSplits, config: CascadeConfig, train_config: TrainConfig,
                  model: Cascade | None = None, reporter=None, test_split: bool = True
                  ) -> FitOutcome:
    """Both tiers and the threshold (see the module docstring). The outcome's model has the
    threshold in its config; its metrics hold ``test_accuracy`` and ``best_val_accuracy`` of
    the cascade and ``cascade``: the tiers' validation accuracies, the threshold and how it
    was chosen, the fraction of upper-tier calls per split and the MACs of each tier."""
    config.validate()
    lower_data, upper_data = tier_splits(data, config)
    model = model or new_model(config, data, train_config.seed)
    tiers, seconds = {}, 0.0
    for name, tier_data, tier in (("lower", lower_data, model.lower),
                                  ("upper", upper_data, model.upper)):
        outcome = fit(tier_data, tier.config, train_config, model=tier, reporter=reporter,
                      test_split=False)
        seconds += outcome.metrics["train_seconds"]
        tiers[name] = {"val_accuracy": outcome.result.best_val_accuracy,
                       "best_epoch": outcome.result.best_epoch,
                       "macs": macs_per_inference(tier, data.steps)}
    chosen = "given"
    if config.threshold is None:
        p, upper = tier_outputs(model, data.val.x)
        config.threshold = choose_threshold(p, upper, data.val.y, config.noise_class)
        chosen = "validation split"
    summary = {"threshold": config.threshold, "threshold_from": chosen, "tiers": tiers}
    val, _ = evaluate_cascade(model, data.val)
    summary["val_upper_fraction"] = val["upper_fraction"]
    metrics, pred = model_metrics(model, data, test_split)
    if test_split:
        test, pred = evaluate_cascade(model, data.test)
        metrics["test_accuracy"] = test["accuracy"]
        summary["test_upper_fraction"] = test["upper_fraction"]
        metrics.pop("test_loss", None)  # the decision's logits carry no calibrated loss
    metrics.update({"train_seconds": round(seconds, 2), "best_val_accuracy": val["accuracy"],
                    "cascade": summary, "keep_w": train_config.keep_w,
                    "keep_u": train_config.keep_u, "keep_head": train_config.keep_head,
                    "selection": {"method": "validation split (each tier, then the threshold)",
                                  "sequences": len(data.val)}})
    return FitOutcome(model, outcome.result, metrics, pred)


def choose_stream_threshold(model: Cascade, frames: np.ndarray, reference: np.ndarray,
                            ends: np.ndarray, steps: int) -> float:
    """The threshold of ``THRESHOLDS`` whose decisions on a stream's windows ending at
    ``ends`` ``[D]`` best match ``reference`` ``[D]`` (each window's majority class, see
    :mod:`kiloml.train.stream_metrics`), the highest on ties: the threshold for streams,
    chosen on a validation stream."""
    windows = np.lib.stride_tricks.sliding_window_view(frames, steps, axis=0)
    x = np.ascontiguousarray(windows[ends - steps + 1].transpose(0, 2, 1), dtype=np.float32)
    p, upper = tier_outputs(model, x)
    return choose_threshold(p, upper, reference, model.config.noise_class)
