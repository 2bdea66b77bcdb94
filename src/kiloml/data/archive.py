"""Dataset archives: SHA-256 check and reading members straight from a ``.tar.gz`` (or from
the same layout extracted into a folder), without extracting to disk."""

import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from kiloml.errors import KilomlError


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_archive(path: Path, expected_sha256: str) -> str:
    """Return the archive's SHA-256 after checking it equals the published one."""
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise KilomlError(f"{path}: corrupt archive (SHA-256 {actual[:16]}... differs from the "
                          f"published {expected_sha256[:16]}...); download it again")
    return actual


def archive_members(path: Path, suffix: str = ".wav") -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each regular file whose name ends with ``suffix``, in archive order;
    names lose a leading ``./``."""
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(suffix):
                    name = member.name.removeprefix("./")
                    yield name, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise KilomlError(f"{path}: corrupt archive ({e})") from None


def folder_members(root: Path, suffix: str = ".wav") -> Iterator[tuple[str, bytes]]:
    """``(name relative to root, bytes)`` of each file under ``root`` ending with ``suffix``,
    in sorted order."""
    for file in sorted(p for p in root.rglob(f"*{suffix}") if p.is_file()):
        yield file.relative_to(root).as_posix(), file.read_bytes()
