"""A float model's decisions on a whole stream: a window of the model's ``T`` frames that
moves by ``hop`` frames, one decision per position (the first when ``T`` frames are in).

Every window is read whole by the float model. For a ShaRNN whose hop is its brick this is
what its streaming form computes (:class:`kiloml.ir.stream.ShaRNNStream`: each brick read
once, the window's result the same); for a cascade the upper tier reads only the windows
where the lower tier fires (its ``upper_calls`` count them).
"""

import numpy as np
import torch

from kiloml.data.streams import Stream
from kiloml.errors import KilomlError
from kiloml.models import get_family
from kiloml.train.stream_metrics import decision_frames, stream_metrics

#: Families that classify a window of frames as a whole and so can slide over a stream.
STREAMING_KINDS = ("fastgrnn", "fastrnn", "gru", "lstm", "dscnn", "sharnn", "cascade")


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
    ``hop`` and, for a cascade, ``upper_fraction``."""
    check_streaming(model.config, hop)
    window = (f"one window of {steps // model.config.brick_size} bricks"
              if model.config.kind == "sharnn" else "one window")
    stream.check(model.config.input_size, steps, window)
    ends, classes, fraction = stream_decisions(model, stream.frames, steps, hop)
    metrics = stream_metrics(stream, ends, classes, steps)
    metrics.update(hop=hop, steps=steps, rule=stream.rule)
    if fraction is not None:
        metrics["upper_fraction"] = fraction
    return metrics
