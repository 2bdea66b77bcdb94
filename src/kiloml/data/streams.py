"""Whole streams for streaming evaluation (``kiloml eval RUN --stream``), with what happened
when: every frame's class and the segments (one per clip or recording).

- **Clips with a noise class** (speech-commands-12 and any dataset of clips with a class that
  means nothing happened, such as ``_silence_``): the test split's clips that are not noise,
  in the order of ``numpy.random.default_rng(seed).permutation``, each preceded by ``gap``
  noise clips drawn from the test split's noise clips with replacement by the same generator
  (``rng.integers``, after the permutation), and ``gap`` more after the last one. Each clip
  keeps its feature frames as computed for the clip (for speech: its 99 log-mel frames, 10 ms
  apart); a clip is one segment of its class.
- **Smartwatch**: the test subjects' whole recordings end to end, in the file's order (50
  samples per second); a recording is one segment of its exercise. There is no noise class.

A stream is its frames ``[L, F]`` float32, the class of every frame ``[L]``, the segments
``(start, end, class)`` (frame indices, end exclusive) in order, the noise class (or
``None``) and the frames per second.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiloml.data.smartwatch import load_recordings
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

#: Frames per second of the clip datasets' features (log-mel frames every 10 ms).
AUDIO_FRAMES_PER_SECOND = 100.0
SMARTWATCH_FRAMES_PER_SECOND = 50.0


@dataclass
class Stream:
    frames: np.ndarray
    labels: np.ndarray
    segments: list[tuple[int, int, int]]
    noise: int | None
    rate: float
    rule: str

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.rate

    def events(self) -> list[tuple[int, int, int]]:
        """The segments that are not noise."""
        return [s for s in self.segments if s[2] != self.noise]

    def check(self, features: int, min_frames: int, what: str) -> "Stream":
        """One-line errors unless the frames are ``[L, features]``, finite, and at least
        ``min_frames`` long (``what`` names that length)."""
        if self.frames.ndim != 2 or self.frames.shape[1] != features:
            raise KilomlError(f"a stream must be frames [L, {features}], got shape "
                              f"{list(self.frames.shape)}")
        bad = ~np.isfinite(self.frames)
        if bad.any():
            t = int(np.argwhere(bad)[0][0])
            raise KilomlError(f"the stream holds NaN or infinite values (first at frame {t}, "
                              f"{t / self.rate:.2f} s)")
        if len(self.frames) < min_frames:
            raise KilomlError(f"the stream has {len(self.frames)} frames, shorter than "
                              f"{what} ({min_frames} frames)")
        return self


def from_segments(parts: list[tuple[np.ndarray, int]], noise: int | None, rate: float,
                  rule: str) -> Stream:
    """A stream of ``parts`` (frames ``[n, F]``, class) end to end."""
    if not parts:
        raise KilomlError("a stream needs at least one clip or recording")
    segments, start = [], 0
    for frames, label in parts:
        segments.append((start, start + len(frames), int(label)))
        start += len(frames)
    labels = np.concatenate([np.full(len(f), int(c), dtype=np.int64) for f, c in parts])
    frames = np.concatenate([np.asarray(f, dtype=np.float32) for f, _ in parts])
    return Stream(frames, labels, segments, noise, rate, rule)


def clip_stream(split: Split, noise: int, seed: int = 0, gap: int = 1,
                rate: float = AUDIO_FRAMES_PER_SECOND, name: str = "test") -> Stream:
    """The clips of ``split`` (the split called ``name``) as one stream, ``gap`` noise clips
    around each event clip (see the module docstring)."""
    if gap < 0:
        raise KilomlError(f"the gap must be 0 or more noise clips, got {gap}")
    events = np.flatnonzero(split.y != noise)
    quiet = np.flatnonzero(split.y == noise)
    if not len(events):
        raise KilomlError(f"the {name} split holds no clip that is not noise: nothing to "
                          "detect")
    if gap and not len(quiet):
        raise KilomlError(f"the {name} split holds no noise clip to put between the others "
                          "(give a gap of 0)")
    rng = np.random.default_rng(seed)
    order = events[rng.permutation(len(events))]
    fill = quiet[rng.integers(0, len(quiet), size=gap * (len(order) + 1))] if gap else []
    parts, f = [], 0
    for index in order:
        for _ in range(gap):
            parts.append((split.x[fill[f]], noise))
            f += 1
        parts.append((split.x[index], int(split.y[index])))
    parts += [(split.x[i], noise) for i in fill[f:]]
    rule = (f"{len(order)} {name} clips in a seeded order (seed {seed}), {gap} noise clip(s) "
            "before each and after the last")
    return from_segments(parts, noise, rate, rule)


def recording_stream(path: Path | None, subjects: tuple[int, ...],
                     rate: float = SMARTWATCH_FRAMES_PER_SECOND) -> Stream:
    """The smartwatch recordings of ``subjects`` end to end."""
    parts = load_recordings(path, subjects)
    rule = (f"the {len(parts)} recordings of subject(s) {', '.join(map(str, subjects))} end "
            "to end")
    return from_segments(parts, None, rate, rule)


def dataset_stream(data: DatasetSplits, noise: str = "_silence_", seed: int = 0, gap: int = 1,
                   split: str = "test") -> Stream:
    """The stream of a dataset's ``split`` (``test``, or ``val`` to choose a setting on):
    smartwatch's recordings of that split's subjects, else its clips around clips of the class
    named ``noise`` (those of a run whose data was padded in front for frame stacking as
    recorded: their last ``padded_from`` frames)."""
    names = [str(n) for n in data.class_names]
    if data.name == "smartwatch":
        return recording_stream(data.info.get("path"), tuple(data.info["subjects"][split]))
    if noise not in names:
        raise KilomlError(f"--stream needs the smartwatch recordings or clips with a noise "
                          f"class ({noise}) to put between events; {data.name} has neither")
    part = getattr(data, split)
    x = part.x
    original = data.info.get("padded_from")
    if original:
        x = x[:, -original:]
    return clip_stream(Split(x, part.y), names.index(noise), seed, gap, name=split)
