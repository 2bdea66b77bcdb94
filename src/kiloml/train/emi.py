"""EMI-RNN's training and inference (Dwivedi, Kusupati et al., NeurIPS 2018) around an instance
model with logits at every step (:class:`kiloml.nn.emi.EMIFastGRNN`).

Training: every sequence of the training and validation splits becomes a bag of overlapping
instances (:func:`kiloml.data.bags.make_bags`). Round 0 trains on every instance with its
bag's label, a loss at every step (the Trainer's ``step_logits`` hook). Each further round
relabels (:func:`relabel`: in every bag, the ``k`` consecutive instances whose last-step
probability of the bag's class sums highest keep the label, the others become the noise class)
with the current model, then trains on, with the same Trainer and budget.

Inference: an instance is read step by step and stops at the first step whose top probability
reaches the threshold (:func:`early_exit`); a bag's class is the non-noise class with the
longest run of consecutive instances predicting it (:func:`bag_predictions`).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from kiloml.data.bags import make_bags
from kiloml.data.splits import DatasetSplits, Split
from kiloml.nn.emi import EMIConfig, EMIFastGRNN
from kiloml.train.fit import fit, new_model
from kiloml.train.trainer import TrainConfig


def relabel(scores: np.ndarray, labels: np.ndarray, keep: int, noise: int) -> np.ndarray:
    """Instance labels ``[N, I]`` from per-instance scores ``[N, I]`` (the probability of the
    bag's class) and bag labels ``[N]``: in each bag not of class ``noise``, the ``keep``
    consecutive instances with the largest summed score (the first such window on ties) keep
    the bag's label, every other instance gets ``noise``."""
    scores = np.asarray(scores, dtype=np.float64)
    bags, instances = scores.shape
    keep = min(keep, instances)
    sums = np.cumsum(np.pad(scores, ((0, 0), (1, 0))), axis=1)
    start = np.argmax(sums[:, keep:] - sums[:, :-keep], axis=1)  # [N]
    index = np.arange(instances)[None, :]
    inside = (index >= start[:, None]) & (index < start[:, None] + keep)
    out = np.where(inside, labels[:, None], noise)
    out[labels == noise] = noise
    return out.astype(np.int64)


def early_exit(step_probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(class [M], steps read [M])`` of instances from their probabilities after every step
    ``[M, W, C]``: the first step whose top probability is at least ``threshold`` decides,
    else the last step."""
    top = step_probs.max(axis=2)
    reached = top >= threshold
    reached[:, -1] = True
    stop = reached.argmax(axis=1)
    return step_probs[np.arange(len(stop)), stop].argmax(axis=1), stop + 1


def bag_predictions(instance_classes: np.ndarray, noise: int) -> np.ndarray:
    """Bag classes ``[N]`` from instance classes ``[N, I]``: the non-noise class with the
    longest run of consecutive instances predicting it (on ties the one whose run ends
    first); ``noise`` when every instance predicts noise."""
    out = np.full(len(instance_classes), noise, dtype=np.int64)
    for b, row in enumerate(instance_classes):
        best, run = 0, 0
        for i, cls in enumerate(row):
            run = run + 1 if i and cls == row[i - 1] else 1
            if cls != noise and run > best:
                best, out[b] = run, cls
    return out


def step_probabilities(model: EMIFastGRNN, instances: np.ndarray, batch: int = 1024
                       ) -> np.ndarray:
    """Softmax after every step ``[M, W, C+1]`` of instances ``[M, W, F]``."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(instances), batch):
            logits = model.step_logits(torch.from_numpy(instances[start:start + batch]))
            out.append(torch.softmax(logits.double(), dim=-1).numpy())
    return np.concatenate(out)


def instance_scores(model: EMIFastGRNN, bags: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Last-step probability of each bag's class for every instance ``[N, I]``."""
    n, count = bags.shape[:2]
    probs = step_probabilities(model, bags.reshape(n * count, *bags.shape[2:]))[:, -1]
    return probs.reshape(n, count, -1)[np.arange(n)[:, None], np.arange(count)[None, :],
                                       labels[:, None]]


def evaluate_bags(model: EMIFastGRNN, split: Split, threshold: float = math.inf) -> dict:
    """Bag accuracy and the steps read with early exit at ``threshold`` on ``split`` (every
    step read by default)."""
    c = model.config
    bags = make_bags(split.x, c.instance_width, c.instance_stride)
    n, count, width = bags.shape[:3]
    probs = step_probabilities(model, bags.reshape(n * count, width, -1))
    classes, steps = early_exit(probs, threshold)
    pred = bag_predictions(classes.reshape(n, count), c.noise_class)
    return {"accuracy": float((pred == split.y).mean()),
            "steps_per_instance": float(steps.mean()),
            "steps_per_bag": float(steps.reshape(n, count).sum(1).mean()),
            "instances_per_bag": count}


@dataclass
class EMIOutcome:
    model: EMIFastGRNN
    rounds: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def instance_splits(data: DatasetSplits, config: EMIConfig, train_labels: np.ndarray,
                    val_labels: np.ndarray) -> DatasetSplits:
    """The training and validation bags' instances with instance labels; the test split is
    the validation one (never evaluated during training)."""
    def split(x: np.ndarray, labels: np.ndarray) -> Split:
        bags = make_bags(x, config.instance_width, config.instance_stride)
        return Split(bags.reshape(-1, *bags.shape[2:]).astype(np.float32),
                     labels.reshape(-1).astype(np.int64))

    val = split(data.val.x, val_labels)
    return DatasetSplits(f"{data.name} instances", split(data.train.x, train_labels), val,
                         val, [*data.class_names, "noise"], data.description, data.info)


def train_emi(data: DatasetSplits, config: EMIConfig, train_config: TrainConfig,
              test_split: bool = True) -> EMIOutcome:
    """Round 0 and ``config.rounds`` relabelling rounds (see the module docstring); the
    metrics hold bag accuracy with and without early exit on validation (and test)."""
    config.validate()
    count = make_bags(data.train.x[:1], config.instance_width, config.instance_stride).shape[1]
    train_labels = np.repeat(data.train.y[:, None], count, axis=1)
    val_labels = np.repeat(data.val.y[:, None], count, axis=1)
    model = None
    outcome = EMIOutcome(None)
    for round_index in range(config.rounds + 1):
        if round_index:
            train_labels = relabel(instance_scores(model, make_bags(
                data.train.x, config.instance_width, config.instance_stride), data.train.y),
                data.train.y, config.keep_instances, config.noise_class)
            val_labels = relabel(instance_scores(model, make_bags(
                data.val.x, config.instance_width, config.instance_stride), data.val.y),
                data.val.y, config.keep_instances, config.noise_class)
        instances = instance_splits(data, config, train_labels, val_labels)
        model = model or new_model(config, instances, train_config.seed)
        result = fit(instances, config, train_config, model=model, test_split=False)
        outcome.rounds.append({
            "round": round_index, "best_epoch": result.result.best_epoch,
            "val_instance_accuracy": result.result.best_val_accuracy,
            "noise_fraction": float((train_labels == config.noise_class).mean()),
            "val_bag_accuracy": evaluate_bags(model, data.val)["accuracy"]})
    outcome.model = model
    outcome.metrics = {"rounds": outcome.rounds, "macs_per_instance":
                       model.macs(config.instance_width)}
    splits = {"val": data.val, **({"test": data.test} if test_split else {})}
    for name, split in splits.items():
        outcome.metrics[f"{name}_full"] = evaluate_bags(model, split)
        outcome.metrics[f"{name}_early_exit"] = evaluate_bags(model, split,
                                                              config.exit_threshold)
    return outcome
