"""A float model's decisions on a whole stream: a window of the model's ``T`` frames that
moves by ``hop`` frames, one decision per position (the first when ``T`` frames are in).

Every window is read whole by the float model. For a ShaRNN whose hop is its brick this is
what its streaming form computes (:class:`kiloml.ir.stream.ShaRNNStream`: each brick read
once, the window's result the same); for a cascade the upper tier reads only the windows
where the lower tier fires (its ``upper_calls`` count them). An EMI-FastGRNN decides once per
instance stride as its streaming form does (:class:`kiloml.ir.early_exit.EMIStream`): every
instance of ``W`` frames ending every ``s`` frames is read until its logit margin reaches
``ln(p / (1 - p))`` (:func:`kiloml.nn.emi.exit_steps`), and the window of its last ``I``
instances (``(I - 1) s + W`` frames) gets the longest run of their classes; a window whose
instances all say noise is scored as the stream's noise class (e.g. ``_silence_``) when it has
one, else as the EMI noise class (a wrong decision, and its onset a false alarm).
"""

import numpy as np
import torch

from kiloml.data.streams import Stream
from kiloml.errors import KilomlError
from kiloml.models import get_family
from kiloml.nn.emi import exit_steps, float_margin, longest_run
from kiloml.train.stream_metrics import decision_frames, stream_metrics

#: Families that classify a window of frames as a whole and so can slide over a stream.
STREAMING_KINDS = ("fastgrnn", "fastrnn", "gru", "lstm", "dscnn", "sharnn", "cascade",
                   "emi-fastgrnn")


def check_streaming(config, hop: int) -> None:
    """One-line errors unless the model of ``config`` can slide over a stream by ``hop``."""
    family = get_family(config.kind)
    if family.input_kind != "sequence":
        raise KilomlError(f"{config.kind} takes feature vectors, not sequences; a stream needs "
                          "a sequence model (fastgrnn, sharnn, cascade, ...)")
    if config.kind not in STREAMING_KINDS:
        raise KilomlError(f"{config.kind} has no streaming evaluation yet; choose a run of "
                          f"{', '.join(STREAMING_KINDS)}")
    if hop < 1:
        raise KilomlError(f"--hop must be a positive number of frames, got {hop}")
    if config.kind == "sharnn" and hop != config.brick_size:
        raise KilomlError(f"a ShaRNN decides once per brick: --hop must be its brick size "
                          f"{config.brick_size}, got {hop}")
    if config.kind == "emi-fastgrnn" and hop != config.instance_stride:
        raise KilomlError(f"an EMI-FastGRNN decides once per instance: --hop must be its "
                          f"instance stride {config.instance_stride}, got {hop}")


def default_hop(config, steps: int) -> int:
    """A ShaRNN's brick, an EMI-FastGRNN's instance stride, else the largest divisor of the
    window ``steps`` not above its square root."""
    if config.kind == "sharnn":
        return config.brick_size
    if config.kind == "emi-fastgrnn":
        return config.instance_stride
    return max(k for k in range(1, int(steps ** 0.5) + 1) if steps % k == 0)


def decision_window(config, steps: int) -> int:
    """Frames a decision reads: ``steps``, or an EMI-FastGRNN's last ``I`` instances of a
    window of ``steps``: ``(I - 1) s + W``."""
    if config.kind != "emi-fastgrnn":
        return steps
    width, stride = config.instance_width, config.instance_stride
    if width > steps:
        raise KilomlError(f"instance width {width} is longer than the {steps}-step windows")
    return (steps - width) // stride * stride + width


def emi_stream_decisions(model: torch.nn.Module, frames: np.ndarray, steps: int,
                         batch: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames decided at [D], classes [D], steps read per instance [M])`` of an
    EMI-FastGRNN on ``frames`` ``[L, F]`` (see the module docstring; windows of ``steps``
    frames give ``I`` instances)."""
    c = model.config
    width, stride = c.instance_width, c.instance_stride
    count = 1 + (steps - width) // stride
    ends = np.arange(width - 1, len(frames), stride, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(frames, width, axis=0)  # [., F, W]
    margin = float_margin(c.exit_threshold)
    classes, read = [], []
    model.eval()
    with torch.no_grad():
        for first in range(0, len(ends), batch):
            starts = ends[first:first + batch] - width + 1
            x = np.ascontiguousarray(windows[starts].transpose(0, 2, 1), dtype=np.float32)
            cls, stop = exit_steps(model.step_logits(torch.from_numpy(x)).double().numpy(),
                                   margin)
            classes.append(cls)
            read.append(stop)
    classes = np.concatenate(classes) if classes else np.empty(0, dtype=np.int64)
    read = np.concatenate(read) if read else np.empty(0, dtype=np.int64)
    bags = [longest_run(classes[i - count + 1:i + 1], c.noise_class)
            for i in range(count - 1, len(classes))]
    return ends[count - 1:], np.asarray(bags, dtype=np.int64), read


def stream_decisions(model: torch.nn.Module, frames: np.ndarray, steps: int, hop: int,
                     batch: int = 256) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(frames decided at [D], classes [D], fraction of upper-tier calls or None)`` of
    ``model`` on ``frames`` ``[L, F]`` with windows of ``steps`` frames every ``hop``."""
    check_streaming(model.config, hop)
    ends = decision_frames(len(frames), steps, hop)
    windows = np.lib.stride_tricks.sliding_window_view(frames, steps, axis=0)  # [L-T+1, F, T]
    cascade = hasattr(model, "upper_calls")
    if cascade:
        model.calls = model.upper_calls = 0
    classes = []
    model.eval()
    with torch.no_grad():
        for first in range(0, len(ends), batch):
            starts = ends[first:first + batch] - steps + 1
            x = np.ascontiguousarray(windows[starts].transpose(0, 2, 1), dtype=np.float32)
            classes.append(model(torch.from_numpy(x)).argmax(dim=1).numpy())
    classes = np.concatenate(classes) if classes else np.empty(0, dtype=np.int64)
    fraction = model.upper_calls / max(model.calls, 1) if cascade else None
    return ends, classes.astype(np.int64), fraction


def evaluate_stream(model: torch.nn.Module, stream: Stream, steps: int, hop: int) -> dict:
    """The stream's checks (frames ``[L, F]``, finite, at least one window), then the
    model's decisions scored by :func:`kiloml.train.stream_metrics.stream_metrics`, with
    ``hop``, ``steps`` (the frames a decision reads: :func:`decision_window`), for a cascade
    ``upper_fraction``, for an EMI-FastGRNN ``instances`` read and ``steps_per_instance``."""
    check_streaming(model.config, hop)
    window = (f"one window of {steps // model.config.brick_size} bricks"
              if model.config.kind == "sharnn" else "one window")
    reads = decision_window(model.config, steps)
    stream.check(model.config.input_size, reads, window)
    if model.config.kind == "emi-fastgrnn":
        ends, classes, read = emi_stream_decisions(model, stream.frames, steps)
        if stream.noise is not None:  # "every instance is noise": the stream's noise class
            classes[classes == model.config.noise_class] = stream.noise
        fraction = None
    else:
        ends, classes, fraction = stream_decisions(model, stream.frames, steps, hop)
    metrics = stream_metrics(stream, ends, classes, reads)
    metrics.update(hop=hop, steps=reads, rule=stream.rule)
    if fraction is not None:
        metrics["upper_fraction"] = fraction
    if model.config.kind == "emi-fastgrnn":
        metrics.update(instances=len(read), steps_per_instance=float(read.mean()),
                       instance_width=model.config.instance_width)
    return metrics
