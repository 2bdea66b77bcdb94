"""Raw int16 PCM of an audio dataset's test clips, in the order of the loader's test split, for
checking the exported PCM → label path (``kiloml_predict_pcm``).

Read through the loaders' public functions (the archive or folder layout, the split rule,
``decode_clips`` and ``fix_length``), so clip ``i`` here is the clip whose float features are
``splits.test.x[i]`` of :func:`kiloml.data.load_dataset`: every clip is fixed to 1 s exactly
as training did. Supported: ``speech-commands-12`` (16 kHz) and ``fsdd`` (8 kHz).
"""

from pathlib import Path

import numpy as np

from kiloml.data import fsdd, speech_commands
from kiloml.data.archive import archive_members, folder_members
from kiloml.data.audio_clips import CLIP_SECONDS, decode_clips, fix_length
from kiloml.data.bad_files import BadFiles
from kiloml.errors import KilomlError

PCM_DATASETS = ("speech-commands-12", "fsdd")


def _members(path: Path, archive_name: str, folder_marker: str | None):
    """``(name, bytes)`` of the WAVs under ``path`` (the archive, its folder, or the extracted
    folder), names relative to the archive root."""
    if path.is_dir() and (path / archive_name).is_file():
        path = path / archive_name
    if path.is_file():
        return archive_members(path)
    if folder_marker and path.is_dir() and (path / folder_marker).is_dir():
        return ((f"{folder_marker}/{n}", d) for n, d in folder_members(path / folder_marker))
    if path.is_dir():
        return folder_members(path)
    raise KilomlError(f"{path}: audio clips not found")


def load_test_pcm(dataset: str, data_dir: Path | str | None = None, limit: int | None = None,
                  skip_bad_files: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """``(pcm int16 [N, rate], labels int64 [N], rate)``: the first ``limit`` (default all)
    test clips of ``dataset``, each fixed to one second."""
    bad = BadFiles(skip_bad_files)
    if dataset == "speech-commands-12":
        path = Path(data_dir) if data_dir is not None else speech_commands.default_path()
        members = ((n, d) for n, d in _members(path, speech_commands.ARCHIVE, None)
                   if n.split("/", 1)[0] in speech_commands.LABELS)
        rate = speech_commands.SAMPLE_RATE
        names, signals, _ = decode_clips(members, rate, bad, str(path))
        test = speech_commands.split_clips(names)["test"]
        labels = np.array([speech_commands.LABELS.index(names[i].split("/", 1)[0])
                           for i in test], dtype=np.int64)
    elif dataset == "fsdd":
        path = Path(data_dir) if data_dir is not None else fsdd.default_path()
        members = ((n, d) for n, d in _members(path, fsdd.ARCHIVE, "recordings")
                   if n.startswith("recordings/") and fsdd.parse_name(n) is not None)
        rate = fsdd.SAMPLE_RATE
        names, signals, _ = decode_clips(members, rate, bad, str(path))
        parsed = [fsdd.parse_name(n) for n in names]
        test = np.flatnonzero([fsdd.split_of(take) == "test" for _, _, take in parsed])
        labels = np.array([parsed[i][0] for i in test], dtype=np.int64)
    else:
        raise KilomlError(f"no raw PCM reader for dataset {dataset!r} (supported: "
                          f"{', '.join(PCM_DATASETS)})")
    test, labels = test[:limit], labels[:limit]
    length = int(round(CLIP_SECONDS * rate))
    pcm = np.stack([fix_length(signals[i], length) for i in test]).astype(np.int16)
    return pcm, labels, rate
