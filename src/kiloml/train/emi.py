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

import numpy as np
import torch

from kiloml.data.bags import make_bags
from kiloml.data.splits import DatasetSplits, Split
from kiloml.nn.emi import EMIConfig, EMIFastGRNN, longest_run
from kiloml.train.fit import FitOutcome, fit, new_model
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
    return np.array([longest_run(row, noise) for row in instance_classes], dtype=np.int64)


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


def evaluate_bags(model: EMIFastGRNN, split: Split, threshold: float = math.inf
                  ) -> tuple[dict, np.ndarray]:
    """Bag accuracy and the steps read with early exit at ``threshold`` on ``split`` (every
    step read by default), and the bag predictions ``[N]``."""
    c = model.config
    bags = make_bags(split.x, c.instance_width, c.instance_stride)
    n, count, width = bags.shape[:3]
    probs = step_probabilities(model, bags.reshape(n * count, width, -1))
    classes, steps = early_exit(probs, threshold)
    pred = bag_predictions(classes.reshape(n, count), c.noise_class)
    return {"accuracy": float((pred == split.y).mean()),
            "steps_per_instance": float(steps.mean()),
            "steps_per_bag": float(steps.reshape(n, count).sum(1).mean()),
            "instances_per_bag": count}, pred


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
              model: EMIFastGRNN | None = None, reporter=None, test_split: bool = True
              ) -> FitOutcome:
    """Round 0 and ``config.rounds`` relabelling rounds (see the module docstring), each
    ``train_config.epochs`` long. The outcome is the last round's, its metrics those of the
    bags: ``test_accuracy`` and ``best_val_accuracy`` with early exit, ``emi`` the rounds and
    bag accuracy and steps read with and without early exit; ``test_predictions`` the test
    bags' classes (none without ``test_split``)."""
    config.validate()
    width, stride = config.instance_width, config.instance_stride
    count = make_bags(data.train.x[:1], width, stride).shape[1]
    labels = {"train": np.repeat(data.train.y[:, None], count, axis=1),
              "val": np.repeat(data.val.y[:, None], count, axis=1)}
    rounds, seconds = [], 0.0
    for round_index in range(config.rounds + 1):
        if round_index:
            for name in labels:
                split = getattr(data, name)
                scores = instance_scores(model, make_bags(split.x, width, stride), split.y)
                labels[name] = relabel(scores, split.y, config.keep_instances,
                                       config.noise_class)
        instances = instance_splits(data, config, labels["train"], labels["val"])
        model = model or new_model(config, instances, train_config.seed)
        outcome = fit(instances, config, train_config, model=model, reporter=reporter,
                      test_split=False)
        seconds += outcome.metrics["train_seconds"]
        rounds.append({"round": round_index, "best_epoch": outcome.result.best_epoch,
                       "val_instance_accuracy": outcome.result.best_val_accuracy,
                       "noise_fraction": float((labels["train"] == config.noise_class).mean())})
    emi = {"rounds": rounds, "instances_per_bag": count, "steps_per_instance": width}
    splits = {"val": data.val, **({"test": data.test} if test_split else {})}
    predictions = None
    for name, split in splits.items():
        emi[f"{name}_full"], _ = evaluate_bags(model, split)
        emi[f"{name}_early_exit"], pred = evaluate_bags(model, split, config.exit_threshold)
        predictions = pred if name == "test" else predictions
    metrics = dict(outcome.metrics, dataset=data.name, emi=emi,
                   best_val_accuracy=emi["val_early_exit"]["accuracy"],
                   train_seconds=round(seconds, 2))
    metrics["selection"] = {"method": "validation split (instances, each round)",
                            "sequences": len(data.val)}
    metrics.pop("warning", None)
    if test_split:
        metrics["test_accuracy"] = emi["test_early_exit"]["accuracy"]
    return FitOutcome(model, outcome.result, metrics, predictions)
