"""MI-ShaRNN (Dennis et al., NeurIPS 2019): a ShaRNN trained on the instances an EMI-FastGRNN
run relabelled, and its decisions on a whole stream.

Training data (``kiloml train --model sharnn --instances-from EMI_RUN``): every window of
every split of the EMI run's dataset becomes its bag of instances (width ``W``, stride ``s``;
:func:`kiloml.data.bags.make_bags`), which the run's trained model relabels
(:func:`kiloml.train.emi.relabel`: the ``k`` consecutive instances most likely of the
window's class keep it, the others become the noise class, index ``C``). The instances
``[N * I, W, F]`` and their labels are the ShaRNN's dataset, written into the run as
``instances.npz`` (classes: the data's and ``noise``) so that ``export``, ``verify`` and
``eval`` read it like any run's data; the ``mi`` section of ``config.json`` names the EMI
run and its dataset.

On a stream (``kiloml eval RUN --stream``) the ShaRNN classifies the last ``W`` frames every
brick of ``K`` frames (its streaming form, reusing the bricks it read); each decision is the
longest run of a class other than noise in its last ``I = 1 + (T - W) // K`` instance
decisions (:func:`kiloml.nn.emi.longest_run`), reading ``(I - 1) K + W`` frames; a decision of
noise is scored as the stream's noise class when it has one.
"""

from pathlib import Path

import numpy as np
import torch

from kiloml.data.bags import make_bags
from kiloml.data.splits import DatasetSplits, Split
from kiloml.data.streams import Stream
from kiloml.errors import KilomlError
from kiloml.nn.emi import longest_run
from kiloml.train.emi import instance_scores, relabel
from kiloml.train.stream_decisions import stream_decisions
from kiloml.train.stream_metrics import stream_metrics


def load_emi_run(run_dir: Path) -> tuple[dict, torch.nn.Module]:
    """``(config, model)`` of the EMI-FastGRNN run ``run_dir``; one-line errors when it is
    missing or of another family."""
    from kiloml.runs import WEIGHTS_FILE, check_finite_weights, load_run, read_run_config

    run_dir = Path(run_dir)
    kind = read_run_config(run_dir)["model"].get("kind")
    if kind != "emi-fastgrnn":
        raise KilomlError(f"--instances-from {run_dir}: a {kind} run; MI-ShaRNN needs the "
                          "instances an emi-fastgrnn run relabelled (kiloml train --model "
                          "emi-fastgrnn)")
    config, model = load_run(run_dir)
    check_finite_weights(model, run_dir / WEIGHTS_FILE)
    return config, model


def relabelled_instances(emi: torch.nn.Module, data: DatasetSplits) -> DatasetSplits:
    """Every split's windows ``[N, T, F]`` as instances ``[N * I, W, F]`` labelled by ``emi``
    (classes: ``data``'s and ``noise``); ``info`` keeps what chooses the training recipe."""
    c = emi.config
    if c.input_size != data.num_features:
        raise KilomlError(f"the EMI run reads {c.input_size} features; its data has "
                          f"{data.num_features}")

    def split(part: Split) -> Split:
        bags = make_bags(part.x, c.instance_width, c.instance_stride)
        labels = relabel(instance_scores(emi, bags, part.y), part.y, c.keep_instances,
                         c.noise_class)
        return Split(bags.reshape(-1, *bags.shape[2:]).astype(np.float32),
                     labels.reshape(-1).astype(np.int64))

    info = {k: v for k, v in data.info.items() if k in ("vector_channels", "sample_rate")}
    return DatasetSplits(f"{data.name} instances", split(data.train), split(data.val),
                         split(data.test), [*map(str, data.class_names), "noise"],
                         f"{data.name} windows as instances relabelled by EMI-FastGRNN", info)


def write_instances(data: DatasetSplits, path: Path) -> None:
    """``data`` as a ``.npz`` of :mod:`kiloml.data.npz` (with ``vector_channels`` if any)."""
    arrays = {"class_names": np.array(data.class_names)}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        arrays[f"X_{name}"], arrays[f"y_{name}"] = split.x, split.y
    if data.info.get("vector_channels"):
        arrays["vector_channels"] = np.asarray(data.info["vector_channels"], dtype=np.int64)
    np.savez(path, **arrays)


def mi_section(emi_run: Path, emi_config: dict) -> dict:
    """The ``mi`` section of an MI-ShaRNN run's ``config.json``."""
    model = emi_config["model"]
    return {"emi_run": str(Path(emi_run).resolve()), "data": emi_config["data"],
            **{k: model[k] for k in ("instance_width", "instance_stride", "keep_instances")},
            "noise_class": int(model["num_classes"])}


def instances_per_window(mi: dict, steps: int, brick: int) -> int:
    """``I = 1 + (T - W) // K``: the instance decisions one window of ``steps`` holds."""
    width = mi["instance_width"]
    if width > steps:
        raise KilomlError(f"instance width {width} is longer than the {steps}-step windows")
    return 1 + (steps - width) // brick


def mi_stream_decisions(model: torch.nn.Module, frames: np.ndarray, width: int, count: int,
                        noise: int) -> tuple[np.ndarray, np.ndarray]:
    """``(frames decided at [D], classes [D])``: the longest run of the last ``count`` instance
    decisions (the ShaRNN on the last ``width`` frames, one every brick) of ``frames``
    ``[L, F]``."""
    ends, classes, _ = stream_decisions(model, frames, width, model.config.brick_size)
    bags = np.array([longest_run(classes[i - count + 1:i + 1], noise)
                     for i in range(count - 1, len(classes))], dtype=np.int64)
    return ends[count - 1:], bags


def evaluate_mi_stream(model: torch.nn.Module, stream: Stream, steps: int, mi: dict) -> dict:
    """The stream's checks, then the MI-ShaRNN's decisions (windows of ``steps`` frames)
    scored by :func:`kiloml.train.stream_metrics.stream_metrics`, with ``hop`` (the brick),
    ``steps`` (frames a decision reads) and ``instances`` (``I``)."""
    brick, width = model.config.brick_size, mi["instance_width"]
    count = instances_per_window(mi, steps, brick)
    reads = (count - 1) * brick + width
    stream.check(model.config.input_size, reads, "one window")
    ends, classes = mi_stream_decisions(model, stream.frames, width, count, mi["noise_class"])
    if stream.noise is not None:
        classes[classes == mi["noise_class"]] = stream.noise
    metrics = stream_metrics(stream, ends, classes, reads)
    metrics.update(hop=brick, steps=reads, instances=count, rule=stream.rule)
    return metrics
