"""Smartwatch shoulder-exercise IMU recordings shipped by PyPI's ``seglearn==1.2.5``.

140 recordings (10 subjects × 7 exercises × 2 sides), 6 channels (accelerometer ``ax ay az``,
gyroscope ``wx wy wz``) at 50 Hz, 947–2618 samples each. Split **by subject** so that no person
is in two splits: subjects 1–7 train, 8 validation, 9–10 test. Each recording is cut into
windows of 128 samples (2.56 s) every 64 samples; every window takes its recording's label.
``train_hop`` cuts the training windows more densely (16: four times as many, starting at
every offset a multiple of 16), and ``train_speeds`` also cuts them from the training recordings
replayed faster or slower (``time_stretch``: the gyroscope scaled by the speed, the
accelerometer's motion part by its square); validation and test windows stay every 64 samples of
the recordings as made.
"""

import importlib.util
from pathlib import Path

import numpy as np

from kiloml.data.splits import DatasetSplits, Split, sliding_windows
from kiloml.data.time_stretch import SPEED_RANGE, time_stretch
from kiloml.errors import KilomlError

WINDOW = 128
HOP = 64
TRAIN_HOP = 64
TRAIN_SPEEDS = (1.0,)
MAX_SPEEDS = 8
ACCELEROMETER = (0, 1, 2)
GYROSCOPE = (3, 4, 5)
TRAIN_SUBJECTS = (1, 2, 3, 4, 5, 6, 7)
VAL_SUBJECTS = (8,)
TEST_SUBJECTS = (9, 10)
SUBJECTS = tuple(range(1, 11))
INSTALL_HINT = "pip install --no-deps seglearn==1.2.5"


def default_path() -> Path | None:
    """``watch_dataset.npy`` inside an installed ``seglearn`` (found without importing it)."""
    spec = importlib.util.find_spec("seglearn")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data" / "watch_dataset.npy"


def _windows(data: dict, subjects: tuple[int, ...], hop: int = HOP,
             speeds: tuple[float, ...] = TRAIN_SPEEDS) -> Split:
    xs, ys = [], []
    for recording, label, subject in zip(data["X"], data["y"], data["subject"], strict=True):
        if int(subject) in subjects:
            recording = np.asarray(recording, dtype=np.float32)
            for speed in speeds:
                played = recording if speed == 1 else time_stretch(
                    recording, speed, rate_channels=GYROSCOPE,
                    acceleration_channels=ACCELEROMETER)
                w = sliding_windows(played, WINDOW, hop)
                xs.append(w)
                ys.append(np.full(len(w), int(label), dtype=np.int64))
    return Split(np.concatenate(xs), np.concatenate(ys))


def check_train_speeds(speeds) -> tuple[float, ...]:
    """``speeds`` as a tuple of floats, or a one-line error naming ``--train-speeds``."""
    lo, hi = SPEED_RANGE
    try:
        values = tuple(float(s) for s in speeds if not isinstance(s, bool))
    except (TypeError, ValueError):
        values = ()
    if (not values or len(values) != len(speeds) or len(values) > MAX_SPEEDS
            or len(set(values)) != len(values) or not all(lo <= v <= hi for v in values)):
        raise KilomlError(f"--train-speeds takes 1 to {MAX_SPEEDS} different speeds from {lo:g} "
                          f"to {hi:g} (1 is the recording as made); got {speeds}")
    return values


def _read(path: Path | None) -> tuple[Path, dict]:
    """``(file, contents)`` of ``watch_dataset.npy`` at ``path`` (a file or its folder;
    default: the installed seglearn's), checked."""
    path = Path(path) if path is not None else default_path()
    if path is None:
        raise KilomlError(f"smartwatch data not found: seglearn is not installed ({INSTALL_HINT})")
    if path.is_dir():
        path = path / "watch_dataset.npy"
    if not path.is_file():
        raise KilomlError(f"{path}: file not found ({INSTALL_HINT})")
    try:
        data = np.load(path, allow_pickle=True).item()
    except (OSError, ValueError, AttributeError) as e:
        raise KilomlError(f"{path}: not a seglearn watch_dataset.npy ({e})") from None
    required = {"X", "y", "subject", "y_labels"}
    if not isinstance(data, dict) or not required <= set(data):
        raise KilomlError(f"{path}: expected a dict with keys {sorted(required)}")
    return path, data


def load_recordings(path: Path | None = None, subjects: tuple[int, ...] = TEST_SUBJECTS
                    ) -> list[tuple[np.ndarray, int]]:
    """The whole recordings ``[T, 6]`` float32 of ``subjects``, with their labels, in the
    file's order (for streams: the recordings end to end)."""
    _, data = _read(path)
    return [(np.asarray(x, dtype=np.float32), int(label))
            for x, label, subject in zip(data["X"], data["y"], data["subject"], strict=True)
            if int(subject) in subjects]


def load_smartwatch(path: Path | None = None, train_hop: int = TRAIN_HOP,
                    train_speeds: tuple[float, ...] = TRAIN_SPEEDS,
                    subjects: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] = (
                        TRAIN_SUBJECTS, VAL_SUBJECTS, TEST_SUBJECTS)) -> DatasetSplits:
    """Load and split the watch data set from ``path`` (default: the installed seglearn's);
    ``subjects`` are the (train, validation, test) subjects, disjoint, from 1–10, and
    ``train_hop`` (1–128 samples) the step between training windows, and ``train_speeds`` the
    speeds (0.5–2) the training recordings are replayed at before they are cut (1: as made)."""
    if isinstance(train_hop, bool) or not isinstance(train_hop, int) \
            or not 1 <= train_hop <= WINDOW:
        raise KilomlError(f"--train-hop must be a whole number of samples from 1 to {WINDOW}; "
                          f"got {train_hop}")
    train_speeds = check_train_speeds(train_speeds)
    train_subjects, val_subjects, test_subjects = (tuple(map(int, s)) for s in subjects)
    chosen = train_subjects + val_subjects + test_subjects
    if (len(set(chosen)) != len(chosen) or not set(chosen) <= set(SUBJECTS)
            or not all((train_subjects, val_subjects, test_subjects))):
        raise KilomlError(f"smartwatch subjects must be disjoint, non-empty and in 1–10; got "
                          f"train {train_subjects}, val {val_subjects}, test {test_subjects}")
    path, data = _read(path)
    return DatasetSplits(
        name="smartwatch",
        train=_windows(data, train_subjects, train_hop, train_speeds),
        val=_windows(data, val_subjects),
        test=_windows(data, test_subjects),
        class_names=[str(n) for n in data["y_labels"]],
        description="seglearn smartwatch IMU, 6 channels @ 50 Hz, 7 exercises, split by subject",
        info={"path": str(path), "window": WINDOW, "hop": HOP, "train_hop": train_hop,
              "train_speeds": list(train_speeds),
              "vector_channels": [list(ACCELEROMETER), list(GYROSCOPE)],
              "subjects": {"train": train_subjects, "val": val_subjects,
                           "test": test_subjects}},
    ).validate()
