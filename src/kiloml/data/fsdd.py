"""Free Spoken Digit Dataset (FSDD): spoken digits 0–9, 8 kHz mono 16-bit WAV.

Source: ``free-spoken-digit-dataset-26eb9aa.tar.gz`` (the repository at commit 26eb9aa,
SHA-256 checked), clips ``recordings/{digit}_{speaker}_{take}.wav``: 6 speakers × 10 digits
× 50 takes = 3,000 clips. Read straight from the archive, or from a folder holding the
extracted ``recordings/`` (any speakers; no checksum then).

Split: the official one, takes 0–4 → test, 5–49 → train; validation comes from the official
train part stratified by speaker and digit: takes 5–9 of every speaker and digit → validation,
10–49 → train. Every speaker is in every split (FSDD's official rule; it is not
speaker-disjoint). Counts (train/val/test): 2,400 / 300 / 300, i.e. 240 / 30 / 30 per digit
and 400 / 50 / 50 per speaker. A WAV file in ``recordings/`` with another name pattern or
another sample rate is a bad file.

Features: each clip fixed to 1 s (centred zero-padding / central crop; 20 clips are longer),
then ``log_mel`` at 8 kHz → ``[99, 32]``.
"""

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

ARCHIVE = "free-spoken-digit-dataset-26eb9aa.tar.gz"
SHA256 = "adad6acbc3be46af16ff7d8799181dcb8de0afc9f1d8931022d7dd719e27b5d1"
SAMPLE_RATE = 8000
TEST_TAKES = range(0, 5)
VAL_TAKES = range(5, 10)
CLIP_NAME = re.compile(r"^(\d)_(.+)_(\d+)\.wav$")


def default_path() -> Path:
    """``fsdd/`` under the data root (``$KILOML_DATA`` or ``./data``)."""
    return data_root() / "fsdd"


def parse_name(name: str) -> tuple[int, str, int] | None:
    """``(digit, speaker, take)`` of ``.../{digit}_{speaker}_{take}.wav``, or ``None``."""
    match = CLIP_NAME.match(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return int(match.group(1)), match.group(2), int(match.group(3))


def split_of(take: int) -> str:
    """``"test"`` for takes 0–4, ``"val"`` for 5–9, ``"train"`` for the rest."""
    if take in TEST_TAKES:
        return "test"
    return "val" if take in VAL_TAKES else "train"


def _source(path: Path | None) -> tuple[Path, bool]:
    path = Path(path) if path is not None else default_path()
    if path.is_dir() and (path / ARCHIVE).is_file():
        return path / ARCHIVE, True
    if path.is_file():
        return path, True
    if path.is_dir() and (path / "recordings").is_dir():
        return path / "recordings", False
    if path.is_dir() and path.name == "recordings":
        return path, False
    raise KilomlError(f"{path}: fsdd not found (expected {ARCHIVE} or a recordings/ folder)")


def _clips(members, where: str, bad: BadFiles):
    for name, data in members:
        if parse_name(name) is None:
            bad.report(f"{where}:{name}", "name is not {digit}_{speaker}_{take}.wav")
        else:
            yield name, data


def _read(source: Path, is_archive: bool, bad: BadFiles) -> dict[str, np.ndarray]:
    if is_archive:
        members = ((n, d) for n, d in archive_members(source) if n.startswith("recordings/"))
    else:
        members = folder_members(source)
    names, signals, _ = decode_clips(_clips(members, str(source), bad), SAMPLE_RATE, bad,
                                     str(source))
    if not names:
        raise KilomlError(f"{source}: no WAV files named {{digit}}_{{speaker}}_{{take}}.wav")
    return {"names": np.array(names), "x": clip_features(signals, SAMPLE_RATE)}


def load_fsdd(path: Path | None = None, *, skip_bad_files: bool = False) -> DatasetSplits:
    """Load and split FSDD from ``path`` (the archive, the folder holding it, or a folder with
    ``recordings/``; default ``default_path()``)."""
    source, is_archive = _source(path)
    bad = BadFiles(skip_bad_files)
    if is_archive:
        sha = check_archive(source, SHA256)
        key = f"fsdd-{sha[:16]}-{fingerprint(SAMPLE_RATE)}"
        arrays = cached_arrays(key, ("names", "x"), lambda: _read(source, True, bad))
    else:
        arrays = _read(source, False, bad)
    parsed = [parse_name(str(n)) for n in arrays["names"]]
    y = np.array([digit for digit, _, _ in parsed], dtype=np.int64)
    splits = np.array([split_of(take) for _, _, take in parsed])
    parts = {s: Split(arrays["x"][splits == s], y[splits == s]) for s in ("train", "val", "test")}
    return DatasetSplits(
        name="fsdd", **parts, class_names=[str(d) for d in range(10)],
        description="Free Spoken Digit Dataset, 8 kHz log-mel 99x32, official take split",
        info={"path": str(source), "sample_rate": SAMPLE_RATE, "clip_seconds": 1.0,
              "speakers": sorted({s for _, s, _ in parsed}),
              "split_rule": "take 0-4 test, 5-9 val, 10-49 train",
              "skipped_files": bad.skipped},
    ).validate()
