"""Google Speech Commands v0.02, the canonical 12-class test set, split by speaker.

Source: ``speech_commands_test_set_v0.02.tar.gz`` (SHA-256 checked), 4,890 one-second 16 kHz
mono 16-bit WAV clips under ``./<label>/``: ten words plus ``_silence_`` (background noise,
named ``N.wav``) and ``_unknown_`` (other words, named ``<word>_<speaker>_nohash_<n>.wav.wav``).
Read straight from the archive, or from a folder holding the extracted ``<label>/`` folders.

Only this test set is available, so it is split **by speaker** (the hex hash before
``_nohash_``): a speaker's place is ``int(sha1(speaker), 16) % 100``; below 10 → validation,
10–19 → test, the rest → train. So no speaker is in two splits and the rule does not depend on
which other files are present. ``_silence_`` clips have no speaker; their file name takes the
speaker's place. Clips of other sample rates are bad files.

Features: each clip fixed to 1 s (centred zero-padding / central crop, see ``audio_clips``),
then ``log_mel`` → ``[99, 32]``. Counts (train/val/test): 3,945 / 441 / 504 clips, 12 classes
in every split (per class: see ``docs/datasets.md``).
"""

import hashlib
import re
from pathlib import Path

import numpy as np

from kiloml.data.archive import archive_members, check_archive, folder_members
from kiloml.data.audio_clips import cached_arrays, clip_features, decode_clips
from kiloml.data.audio_clips import front_end_fingerprint as fingerprint
from kiloml.data.bad_files import BadFiles
from kiloml.data.paths import data_root
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

ARCHIVE = "speech_commands_test_set_v0.02.tar.gz"
SHA256 = "307ffa89bb8348c3a88e7dd48a032f9130f11cd564789fb935dbe147d3814984"
LABELS = ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
          "stop", "go")
SAMPLE_RATE = 16000
VAL_PERCENT = 10
TEST_PERCENT = 10
SPEAKER = re.compile(r"([0-9a-fA-F]+)_nohash_")


def default_path() -> Path:
    """``speech_commands/`` under the data root (``$KILOML_DATA`` or ``./data``)."""
    return data_root() / "speech_commands"


def speaker_of(name: str) -> str:
    """The speaker hash of a clip ``<label>/...<hash>_nohash_<n>.wav``, else the path itself."""
    match = SPEAKER.search(name.rsplit("/", 1)[-1])
    return match.group(1).lower() if match else name


def split_of(group: str, val_percent: int = VAL_PERCENT,
             test_percent: int = TEST_PERCENT) -> str:
    """``"train"``, ``"val"`` or ``"test"`` from ``sha1(group)`` taken modulo 100."""
    place = int(hashlib.sha1(group.encode()).hexdigest(), 16) % 100
    if place < val_percent:
        return "val"
    if place < val_percent + test_percent:
        return "test"
    return "train"


def _source(path: Path | None) -> tuple[Path, bool]:
    """The archive (``True``) or extracted folder (``False``) to read."""
    path = Path(path) if path is not None else default_path()
    if path.is_dir() and (path / ARCHIVE).is_file():
        return path / ARCHIVE, True
    if path.is_file():
        return path, True
    if path.is_dir() and any((path / label).is_dir() for label in LABELS):
        return path, False
    raise KilomlError(f"{path}: speech-commands-12 not found (expected {ARCHIVE} or its "
                      "extracted label folders)")


def _read(source: Path, is_archive: bool, bad: BadFiles) -> dict[str, np.ndarray]:
    members = archive_members(source) if is_archive else folder_members(source)
    wanted = ((n, d) for n, d in members if n.split("/", 1)[0] in LABELS)
    names, signals, _ = decode_clips(wanted, SAMPLE_RATE, bad, str(source))
    if not names:
        raise KilomlError(f"{source}: no WAV files in the label folders {', '.join(LABELS)}")
    return {"names": np.array(names), "x": clip_features(signals, SAMPLE_RATE)}


def split_clips(names: list[str] | np.ndarray) -> dict[str, np.ndarray]:
    """Indices of each split's clips (``"train"``, ``"val"``, ``"test"``), by speaker."""
    splits = np.array([split_of(speaker_of(str(n))) for n in names])
    return {s: np.flatnonzero(splits == s) for s in ("train", "val", "test")}


def load_speech_commands(path: Path | None = None, *,
                         skip_bad_files: bool = False) -> DatasetSplits:
    """Load and split the 12-class test set from ``path`` (the archive, the folder holding it,
    or the extracted folder; default ``default_path()``)."""
    source, is_archive = _source(path)
    bad = BadFiles(skip_bad_files)
    if is_archive:
        sha = check_archive(source, SHA256)
        key = f"speech-commands-12-{sha[:16]}-{fingerprint(SAMPLE_RATE)}"
        arrays = cached_arrays(key, ("names", "x"), lambda: _read(source, True, bad))
    else:
        arrays = _read(source, False, bad)
    names = [str(n) for n in arrays["names"]]
    y = np.array([LABELS.index(n.split("/", 1)[0]) for n in names], dtype=np.int64)
    parts = {s: Split(arrays["x"][i], y[i]) for s, i in split_clips(names).items()}
    return DatasetSplits(
        name="speech-commands-12", **parts, class_names=list(LABELS),
        description="Speech Commands v0.02 12-class test set, log-mel 99x32, split by speaker",
        info={"path": str(source), "sample_rate": SAMPLE_RATE, "clip_seconds": 1.0,
              "split_rule": f"sha1(speaker) % 100: <{VAL_PERCENT} val, "
                            f"<{VAL_PERCENT + TEST_PERCENT} test, else train",
              "skipped_files": bad.skipped},
    ).validate()
