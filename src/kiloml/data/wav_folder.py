"""The user's own audio: a folder of WAV clips in one sub-folder per label.

``ROOT/<label>/**/*.wav`` (mono 16-bit PCM, one sample rate: the rate most files have; files
of another rate are bad files). Classes are the sub-folder names in sorted order. Each clip is
fixed to 1 s (centred zero-padding / central crop) and turned into log-mel features
``[99, 32]``.

Split rule (as ``speech-commands-12``): a clip's group is its speaker when the file name has
the Speech Commands form ``<speaker>_nohash_<n>.wav``, else its path under ``ROOT``; a group's
place is ``int(sha1(group), 16) % 100``: below 10 → validation, 10–19 → test, else train.
"""

from pathlib import Path

import numpy as np

from kiloml.data.archive import folder_members
from kiloml.data.audio_clips import clip_features, decode_clips
from kiloml.data.bad_files import BadFiles
from kiloml.data.logmel import LogMelConfig
from kiloml.data.speech_commands import speaker_of, split_of
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError


def load_wav_folder(path: Path | str, *, skip_bad_files: bool = False) -> DatasetSplits:
    """Load and split a folder with one sub-folder of WAV files per label."""
    root = Path(path)
    if not root.is_dir():
        raise KilomlError(f"{root}: folder not found")
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    bad = BadFiles(skip_bad_files)
    for stray in sorted(root.glob("*.wav")):
        bad.report(str(stray), "not inside a label sub-folder")
    if not labels:
        raise KilomlError(f"{root}: empty folder (expected one sub-folder of .wav files per "
                          "label)")
    for label in labels:
        if not any((root / label).rglob("*.wav")):
            raise KilomlError(f"{root / label}: empty label folder (no .wav files)")
    members = ((n, d) for n, d in folder_members(root) if "/" in n)
    names, signals, rate = decode_clips(members, None, bad, str(root))
    if not names:
        raise KilomlError(f"{root}: no readable WAV files")
    _check_rate(root, rate, names[0])
    y = np.array([labels.index(n.split("/", 1)[0]) for n in names], dtype=np.int64)
    x = clip_features(signals, rate)
    splits = np.array([split_of(speaker_of(n)) for n in names])
    empty = [s for s in ("train", "val", "test") if not np.any(splits == s)]
    if empty:
        raise KilomlError(f"{root}: {len(names)} clips are too few to fill the {empty[0]} split "
                          "(10% of speakers/files each go to val and test)")
    return DatasetSplits(
        name=root.name, class_names=labels,
        **{s: Split(x[splits == s], y[splits == s]) for s in ("train", "val", "test")},
        description=f"WAV folder {root.name}, log-mel 99x32 at {rate} Hz",
        info={"path": str(root), "sample_rate": rate, "clip_seconds": 1.0,
              "split_rule": "sha1(speaker or file) % 100: <10 val, <20 test, else train",
              "skipped_files": bad.skipped},
    ).validate()


def _check_rate(root: Path, rate: int, example: str) -> None:
    """One-line error naming the folder, a file and the rate if the log-mel front end cannot
    take WAV files at ``rate`` Hz."""
    try:
        LogMelConfig(rate)
    except KilomlError as e:
        raise KilomlError(f"{root}: the WAV files are at {rate:,} Hz (e.g. {example}), which the "
                          f"log-mel front end cannot take ({e}); resample them to 16,000 or "
                          "8,000 Hz") from None
