"""Fingerprints of the files a dataset was read from (total size and SHA-256), which a run
records so that ``--resume``, ``eval`` and ``export`` can tell whether the data changed.

The sources are ``info["sources"]`` of a loaded dataset, else ``info["path"]``; a folder stands
for every regular file under it. One file's hash is the SHA-256 of its bytes (what
``sha256sum`` prints); several files' hash is the SHA-256 of their relative names, sizes and
hashes in sorted order.
"""

import hashlib
import os
from pathlib import Path

from kiloml.data.splits import DatasetSplits


def data_sources(data: DatasetSplits) -> list[Path]:
    """Absolute paths of the files or folders ``data`` was read from (empty if unknown)."""
    sources = data.info.get("sources") or ([data.info["path"]] if data.info.get("path") else [])
    return [Path(os.path.abspath(s)) for s in sources]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(sources: list[Path]) -> list[tuple[str, Path]]:
    """``(name, file)`` of every regular file the sources stand for, in sorted order."""
    files = []
    for source in sources:
        if source.is_dir():
            files += [(f"{source.name}/{p.relative_to(source).as_posix()}", p)
                      for p in source.rglob("*") if p.is_file()]
        elif source.is_file():
            files.append((source.name, source))
    return sorted(files)


def fingerprint(sources: list[Path]) -> dict | None:
    """``{"bytes": total size, "sha256": hex}`` of the files under ``sources``, or ``None``
    when there are none."""
    files = _files(sources)
    if not files:
        return None
    if len(files) == 1 and files[0][1] in sources:
        file = files[0][1]
        return {"bytes": file.stat().st_size, "sha256": _file_sha256(file)}
    digest, total = hashlib.sha256(), 0
    for name, file in files:
        size = file.stat().st_size
        total += size
        digest.update(f"{name}\0{size}\0{_file_sha256(file)}\n".encode())
    return {"bytes": total, "sha256": digest.hexdigest()}


def describe_change(recorded: dict, current: dict | None) -> str | None:
    """How ``current`` differs from ``recorded`` in words, or ``None`` if it does not."""
    if current is None:
        return "its files are gone"
    if current == recorded:
        return None
    if current.get("bytes") != recorded.get("bytes"):
        return f"{recorded.get('bytes'):,} bytes then, {current['bytes']:,} now"
    return (f"same size, different contents (SHA-256 {str(recorded.get('sha256'))[:12]}… then, "
            f"{current['sha256'][:12]}… now)")
