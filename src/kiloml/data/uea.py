"""UEA/UCR ``.ts`` classification problems: sktime's bundled sets and the user's own files.

A problem is a pair ``NAME_TRAIN.ts`` / ``NAME_TEST.ts`` read by kiloml's own reader
(``ts_format``). The official test file → test; validation is drawn from the train file,
stratified by class: in each class (in file order), a permutation with seed 0 picks
``ceil(20%)`` of the cases for validation, the rest stay in train.

Variable-length series (JapaneseVowels: 7–29 steps) are padded to the longest series of both
files by repeating each series' **first** value at the front ("edge" pre-padding), so every
series ends on its real last step (where a recurrent model reads its state) and the padding
stays in the range of the data.

Bundled (from an installed ``sktime==1.2.0``'s ``sktime/datasets/data/``, found without
importing sktime; ``pip install --no-deps sktime==1.2.0``):

- ``basic-motions``: BasicMotions, 6 channels (3-axis accelerometer + gyroscope) × 100 steps,
  4 classes (standing, running, walking, badminton); train/val/test 32 / 8 / 40
  (8 / 2 / 10 per class). The two 3-axis groups are declared (``info["vector_channels"]``);
  the same files read as a ``.ts`` pair of the user's declare nothing.
- ``japanese-vowels``: JapaneseVowels, 12 LPC cepstrum channels × 29 steps (padded), 9 classes
  (the speaker); train/val/test 216 / 54 / 370 (24 / 6 / 24–88 per class).
"""

import importlib.util
import math
import os
from pathlib import Path

import numpy as np

from kiloml.data.bad_files import BadFiles
from kiloml.data.paths import check_input_file
from kiloml.data.splits import DatasetSplits, Split
from kiloml.data.ts_format import TsData, read_ts
from kiloml.errors import KilomlError

VAL_FRACTION = 0.2
INSTALL_HINT = "pip install --no-deps sktime==1.2.0"
BUNDLED = {"basic-motions": "BasicMotions", "japanese-vowels": "JapaneseVowels"}
#: 3-axis sensor channels of the bundled problems (accelerometer, gyroscope)
VECTOR_CHANNELS = {"basic-motions": [[0, 1, 2], [3, 4, 5]]}


def sktime_data_dir() -> Path | None:
    """``sktime/datasets/data`` of an installed sktime (found without importing it)."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "datasets" / "data"


def default_path(name: str) -> Path | None:
    """The folder of a bundled problem (``basic-motions`` → ``.../data/BasicMotions``)."""
    root = sktime_data_dir()
    return root / BUNDLED[name] if root is not None else None


def ts_pair(path: Path | str) -> tuple[Path, Path]:
    """``(NAME_TRAIN.ts, NAME_TEST.ts)`` from either file, the stem ``.../NAME``, or a folder
    ``NAME/`` holding them."""
    path = Path(path)
    if path.is_dir():
        path = path / path.name
    text = str(path)
    for suffix in ("_TRAIN.ts", "_TEST.ts", ".ts"):
        if text.upper().endswith(suffix.upper()):
            text = text[: -len(suffix)]
            break
    return Path(f"{text}_TRAIN.ts"), Path(f"{text}_TEST.ts")


def pad_front(series: list[np.ndarray], length: int) -> np.ndarray:
    """``[N, length, D]``: each ``[T_i, D]`` series with its first value repeated in front."""
    out = np.empty((len(series), length, series[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, : length - len(s)] = s[0]
        out[i, length - len(s):] = s
    return out


def stratified_val(labels: np.ndarray, fraction: float = VAL_FRACTION,
                   seed: int = 0) -> np.ndarray:
    """Boolean mask of validation cases: ``ceil(fraction · n_c)`` per class ``c``, picked by
    one seeded permutation (a class of one case stays in train)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        if len(members) > 1:
            mask[members[: math.ceil(fraction * len(members))]] = True
    return mask


def load_ts_problem(path: Path | str, *, skip_bad_files: bool = False,
                    name: str | None = None) -> DatasetSplits:
    """Load a ``.ts`` train/test pair (see ``ts_pair`` for what ``path`` may be)."""
    train_path, test_path = ts_pair(path)
    for p in (train_path, test_path):
        if not os.path.lexists(p):
            raise KilomlError(f"{p}: file not found (a .ts problem needs NAME_TRAIN.ts and "
                              "NAME_TEST.ts side by side)")
        check_input_file(p, ".ts file")
    bad = BadFiles(skip_bad_files)
    train, test = read_ts(train_path, bad), read_ts(test_path, bad)
    dims = {s.shape[1] for s in train.series + test.series}
    if len(dims) != 1:
        raise KilomlError(f"{test_path}: {sorted(dims)} dimensions across the two files")
    classes = train.class_labels
    unknown = sorted(set(test.class_labels) - set(classes))
    if unknown:
        raise KilomlError(f"{test_path}: class labels {unknown} are not in {train_path.name}")
    length = max(len(s) for s in train.series + test.series)

    def arrays(data: TsData) -> tuple[np.ndarray, np.ndarray]:
        y = np.array([classes.index(label) for label in data.labels], dtype=np.int64)
        return pad_front(data.series, length), y

    x_train, y_train = arrays(train)
    val = stratified_val(y_train)
    lengths = [len(s) for s in train.series + test.series]
    return DatasetSplits(
        name=name or train.problem_name, train=Split(x_train[~val], y_train[~val]),
        val=Split(x_train[val], y_train[val]), test=Split(*arrays(test)), class_names=classes,
        description=f"UEA/UCR .ts problem {train.problem_name}",
        info={"path": str(train_path), "sources": [str(train_path), str(test_path)],
              "series_length": [min(lengths), max(lengths)],
              "padding": "first value repeated in front" if min(lengths) < length else None,
              "split_rule": f"official test; val = ceil({VAL_FRACTION:.0%}) of each train class, "
                            "seed 0",
              "skipped_files": bad.skipped},
    ).validate()


def _bundled(name: str, path: Path | None, skip_bad_files: bool) -> DatasetSplits:
    path = Path(path) if path is not None else default_path(name)
    if path is None:
        raise KilomlError(f"{name} data not found: sktime is not installed ({INSTALL_HINT})")
    if path.is_dir() and not (path / f"{BUNDLED[name]}_TRAIN.ts").is_file():
        path = path / BUNDLED[name]  # the data folder holding all bundled problems
    data = load_ts_problem(path, skip_bad_files=skip_bad_files, name=name)
    if name in VECTOR_CHANNELS:
        data.info["vector_channels"] = VECTOR_CHANNELS[name]
    return data


def load_basic_motions(path: Path | None = None, *,
                       skip_bad_files: bool = False) -> DatasetSplits:
    """BasicMotions (6 × 100, 4 classes) from ``path`` (default: installed sktime's)."""
    return _bundled("basic-motions", path, skip_bad_files)


def load_japanese_vowels(path: Path | None = None, *,
                         skip_bad_files: bool = False) -> DatasetSplits:
    """JapaneseVowels (12 × 29 padded, 9 speakers) from ``path`` (default: sktime's)."""
    return _bundled("japanese-vowels", path, skip_bad_files)
