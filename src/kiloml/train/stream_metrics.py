"""How decisions on a stream are scored (the matching rule of ``kiloml eval --stream``).

A decision is made at frame ``t`` on the window of the last ``T`` frames ``[t - T + 1, t]``.

- **Accuracy** (decision level): the fraction of decisions equal to the window's majority
  class, the class most of its ``T`` frames belong to (ties: the lowest class index).
- **Detection and latency**: an event (a segment ``[s, e)`` of class ``c`` that is not noise)
  is detected by the first decision of class ``c`` whose window overlaps it
  (``s <= t <= e + T - 2``); its latency is ``t - s + 1`` frames from the event's first frame
  to that decision's last, in seconds. The mean is over detected events.
- **False alarms**: an onset is a decision of a class that is not noise whose previous
  decision (if any) was another class; it is a false alarm when its window overlaps no event
  of that class. Per hour of stream.
"""

import numpy as np

from kiloml.data.streams import Stream


def decision_frames(length: int, steps: int, hop: int) -> np.ndarray:
    """Frames ``[D]`` at which a window of ``steps`` moving by ``hop`` decides: ``steps - 1``,
    then every ``hop`` frames while inside a stream of ``length`` frames."""
    return np.arange(steps - 1, length, hop, dtype=np.int64)


def majority_labels(labels: np.ndarray, ends: np.ndarray, steps: int) -> np.ndarray:
    """The majority class ``[D]`` of the windows of ``steps`` frames ending at ``ends``."""
    classes = int(labels.max()) + 1
    cumulative = np.zeros((len(labels) + 1, classes), dtype=np.int64)
    np.cumsum(np.eye(classes, dtype=np.int64)[labels], axis=0, out=cumulative[1:])
    counts = cumulative[ends + 1] - cumulative[ends + 1 - steps]
    return counts.argmax(axis=1)


def stream_metrics(stream: Stream, ends: np.ndarray, classes: np.ndarray, steps: int) -> dict:
    """Accuracy, detections, latency and false alarms (see the module docstring) of the
    decisions ``classes`` ``[D]`` made at frames ``ends`` ``[D]`` (increasing) by a window of
    ``steps`` frames."""
    ends, classes = np.asarray(ends, dtype=np.int64), np.asarray(classes, dtype=np.int64)
    reference = majority_labels(stream.labels, ends, steps)
    events = stream.events()
    latencies = []
    for start, end, label in events:
        lo, hi = np.searchsorted(ends, [start, end + steps - 1])
        hits = np.flatnonzero(classes[lo:hi] == label)
        if len(hits):
            latencies.append(int(ends[lo + hits[0]]) - start + 1)
    starts = np.array([s for s, _, _ in events], dtype=np.int64)
    stops = np.array([e for _, e, _ in events], dtype=np.int64)
    kinds = np.array([c for _, _, c in events], dtype=np.int64)
    onset = np.ones(len(classes), dtype=bool)
    onset[1:] = classes[1:] != classes[:-1]
    if stream.noise is not None:
        onset &= classes != stream.noise
    false_alarms = sum(
        not np.any((kinds == classes[i]) & (starts <= ends[i]) & (stops - 1 >= ends[i] - steps + 1))
        for i in np.flatnonzero(onset))
    hours = stream.seconds / 3600
    return {
        "frames": len(stream.frames), "seconds": stream.seconds, "decisions": len(ends),
        "accuracy": float((classes == reference).mean()) if len(ends) else 0.0,
        "events": len(events), "detected": len(latencies),
        "detection_rate": len(latencies) / len(events) if events else 0.0,
        "latency_seconds": float(np.mean(latencies)) / stream.rate if latencies else None,
        "onsets": int(onset.sum()), "false_alarms": int(false_alarms),
        "false_alarms_per_hour": false_alarms / hours,
    }
