"""Output directories: how kiloml writes a run (``kiloml train``) or an export (``kiloml export``)
without ever losing a file that is not its own.

* A directory kiloml writes carries a marker, :data:`MARKER`: the kind of output and the names
  kiloml writes into it. Only those names are ever removed (``--overwrite``); the directory
  itself, and anything else in it, stays.
* A non-empty folder without the marker is never written into, whatever the flags (outputs of
  kiloml versions before the marker are recognised by their ``config.json``/``export.json``).
* :func:`check_output_dir` refuses a bad ``--out`` before any input is loaded and changes
  nothing; :func:`claim_output_dir` then creates, locks and (with ``replace``) clears it, after
  every input was validated.
* Files are written to a temporary sibling and renamed into place; an export is written into a
  temporary sibling directory (:func:`staged_output_dir`) and renamed into place as a whole.
* An advisory lock (``fcntl.flock`` on the directory) lets one kiloml command at a time write
  into an output directory; a second one stops with a one-line error.
"""

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kiloml import __version__
from kiloml.errors import KilomlError

MARKER = ".kiloml-output.json"
#: Suffix of the temporary siblings files are written to before the rename.
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class OutputKind:
    """What kind of directory kiloml writes and which names it writes into it."""

    name: str  # "run" or "export", stored in the marker
    signature: str  # the file that identifies this kind written by kiloml before the marker
    files: tuple[str, ...]  # names kiloml may write (files, or folders with their own marker)
    scratch_dirs: tuple[str, ...] = field(default=())  # folders kiloml fills and removes whole

    @property
    def article(self) -> str:
        return f"an {self.name}" if self.name[0] in "aeiou" else f"a {self.name}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path``, then rename it into place: readers
    see the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_marker(path: Path) -> dict | None:
    """The marker of directory ``path`` (``{"kind", "kiloml_version", "files"}``), or ``None``
    when there is none or it is unreadable."""
    try:
        marker = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def write_marker(path: Path, kind: OutputKind, files) -> None:
    """Record that ``path`` is kiloml's ``kind`` output holding (at most) ``files``."""
    _write_marker(path, kind.name, files, kind.scratch_dirs)


def _write_marker(path: Path, kind_name: str, files, scratch_dirs) -> None:
    atomic_write_bytes(Path(path) / MARKER, (json.dumps({
        "kind": kind_name, "kiloml_version": __version__, "files": sorted(set(files)),
        "scratch_dirs": list(scratch_dirs),
    }, indent=2) + "\n").encode())


def record_files(path: Path, kind: OutputKind, names) -> None:
    """Add ``names`` to the files the marker of ``path`` says kiloml wrote."""
    marker = read_marker(path)
    write_marker(path, kind, list(marker["files"] if marker else []) + list(names))


def _legacy_kind(path: Path, kind: OutputKind) -> bool:
    """Whether ``path`` holds ``kind`` written by a kiloml version before the marker."""
    try:
        data = json.loads((path / kind.signature).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "kiloml_version" in data


def own_files(path: Path, kind: OutputKind) -> list[str] | None:
    """The names in ``path`` kiloml wrote as ``kind``'s output, or ``None`` if ``path`` is not
    kiloml's ``kind`` output."""
    path = Path(path)
    marker = read_marker(path)
    if marker is not None:
        return [str(n) for n in marker["files"]] if marker.get("kind") == kind.name else None
    if not _legacy_kind(path, kind):
        return None
    names = list(kind.files)
    if kind.name == "export":  # the Arduino library zip is named after the library
        try:
            zip_name = json.loads((path / kind.signature).read_text()).get("arduino_zip")
        except (OSError, ValueError):
            zip_name = None
        if isinstance(zip_name, str) and "/" not in zip_name:
            names.append(zip_name)
    return names


def _describe(path: Path) -> str:
    """What a path that is not a directory is, for messages."""
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    if path.is_file():
        return "a file"
    return "not a directory"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (as anything)."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _other_kind(path: Path, kind: OutputKind, others: tuple[OutputKind, ...]) -> str | None:
    for other in others:
        if other.name != kind.name and own_files(path, other) is not None:
            return other.article
    return None


def check_output_dir(path: Path, kind: OutputKind, *, replace: bool = False,
                     resume: bool = False, flag: str = "--out",
                     others: tuple[OutputKind, ...] = ()) -> None:
    """Refuse ``path`` as ``kind``'s output directory with a one-line error, changing nothing.

    A missing or empty directory is fine, and so is kiloml's own ``kind`` output with nothing
    finished in it (see :func:`has_results`); one with results needs ``replace`` (overwrite)
    or ``resume``. A file, a path under a file, an unwritable place and a non-empty folder
    kiloml did not write are refused whatever the flags.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise KilomlError(f"{flag} {path}: exists and is {_describe(path)}; give a directory")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise KilomlError(f"{flag} {path}: {existing} is {_describe(existing)}, so no directory "
                          "can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise KilomlError(f"{flag} {path}: {existing} is not writable (permission denied)")
    if path.is_dir():
        OutputLock(path).release()  # one-line error now if another command is writing to it
    _check(path, kind, replace=replace, resume=resume, flag=flag, others=others)


def _check(path: Path, kind: OutputKind, *, replace: bool, resume: bool, flag: str,
           others: tuple[OutputKind, ...]) -> None:
    """:func:`check_output_dir` without the lock test (for callers holding the lock)."""
    if resume:
        if not path.is_dir() or own_files(path, kind) is None:
            raise KilomlError(f"{flag} {path}: no kiloml {kind.name} to resume here")
        return
    if not path.is_dir() or not any(path.iterdir()):
        return
    if own_files(path, kind) is None:
        other = _other_kind(path, kind, others)
        if other is not None:
            raise KilomlError(f"{flag} {path}: holds {other}, not {kind.article}; choose another "
                              f"{flag}")
        raise KilomlError(f"{flag} {path}: folder is not empty and was not written by kiloml; "
                          f"kiloml writes only into a new or empty folder or its own {kind.name} "
                          f"(choose another {flag})")
    if has_results(path, kind) and not replace:
        options = ("--resume to continue it, --overwrite to replace it," if kind.name == "run"
                   else "--overwrite to replace it")
        raise KilomlError(f"{flag} {path}: already holds {kind.article}; pass {options} or "
                          f"choose another {flag}")


def has_results(path: Path, kind: OutputKind) -> bool:
    """Whether ``path`` holds any of ``kind``'s files other than its configuration (a run killed
    before its first epoch holds only ``config.json``: nothing to lose)."""
    names = own_files(path, kind) or []
    return any(os.path.lexists(Path(path) / n) for n in names if n != kind.signature)


def remove_own_files(path: Path, kind: OutputKind | None = None,
                     nested: tuple[OutputKind, ...] = ()) -> None:
    """Remove what kiloml wrote into ``path`` (as ``kind``'s output, if given) and the temporary
    siblings of those files; leaves everything else, and the directory itself. A folder among
    them is removed whole if it is scratch space (a verify build), else only its own files if
    it is itself kiloml's output (a demo's export in ``RUN/c``; without a marker, one of the
    ``nested`` kinds written by an earlier kiloml). The marker stays, listing no files, while
    anything else is left in the directory: it is still kiloml's output."""
    path = Path(path)
    marker = read_marker(path)
    if marker is not None and (kind is None or marker.get("kind") == kind.name):
        names, scratch = marker["files"], marker.get("scratch_dirs", [])
        kind_name = str(marker.get("kind"))
    elif marker is None and kind is not None and own_files(path, kind) is not None:
        names, scratch, kind_name = own_files(path, kind), kind.scratch_dirs, kind.name
    else:
        raise KilomlError(f"{path}: not kiloml's {kind.name if kind else 'output'}; "
                          "nothing removed")
    for name in map(str, names):
        if not name or "/" in name or name in (".", ".."):
            continue  # a tampered marker names nothing outside the directory
        target = path / name
        if target.is_dir() and not target.is_symlink():
            if name in scratch:
                shutil.rmtree(target)
            else:
                inner = next((k for k in nested if own_files(target, k) is not None), None)
                if read_marker(target) is not None or inner is not None:
                    remove_own_files(target, None if read_marker(target) else inner)
                    if not any(target.iterdir()):
                        target.rmdir()
        elif os.path.lexists(target):
            target.unlink()
        tmp = target.with_name(name + TMP_SUFFIX)
        if tmp.is_file() or tmp.is_symlink():
            tmp.unlink()
    if any(p.name != MARKER for p in path.iterdir()):
        _write_marker(path, kind_name, [], scratch)
    else:
        (path / MARKER).unlink(missing_ok=True)


def _make_dirs(path: Path, out: Path) -> None:
    """``mkdir -p path`` for the output ``out``, a failure as a one-line error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "it" if path == out else str(path)
        raise KilomlError(f"--out {out}: cannot create {what} ({e.strerror})") from None


class OutputLock:
    """An exclusive advisory lock on a directory (``flock``), held until :meth:`release`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self.fd)
            self.fd = None
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise KilomlError(f"{self.path}: another kiloml command is writing to this "
                                  "directory; wait for it to finish or choose another --out"
                                  ) from None
            raise

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __enter__(self) -> "OutputLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_output_dir(path: Path, kind: OutputKind, *, replace: bool = False,
                     resume: bool = False, others: tuple[OutputKind, ...] = ()) -> OutputLock:
    """Create (or reuse) ``path`` as ``kind``'s output, lock it and, with ``replace``, remove
    kiloml's own files from it; call after every input was validated. The checks of
    :func:`check_output_dir` are repeated under the lock (another command may have written
    meanwhile). Returns the lock; release it when the command ends."""
    path = Path(path)
    check_output_dir(path, kind, replace=replace, resume=resume, others=others)
    _make_dirs(path, path)
    lock = OutputLock(path)
    try:
        _check(path, kind, replace=replace, resume=resume, flag="--out", others=others)
        if not resume:
            if own_files(path, kind) is not None:
                remove_own_files(path, kind, nested=others)
            write_marker(path, kind, kind.files)
    except BaseException:
        lock.release()
        raise
    return lock


@contextmanager
def staged_output_dir(path: Path, kind: OutputKind, *, replace: bool = False,
                      others: tuple[OutputKind, ...] = ()) -> Iterator[Path]:
    """Yield a temporary sibling directory of ``path`` to write ``kind``'s output into; when the
    block succeeds, it becomes ``path`` (renamed into place, or, into an existing directory,
    after kiloml's own files there were removed). On failure the temporary directory is
    removed and ``path`` is untouched."""
    path = Path(path)
    check_output_dir(path, kind, replace=replace, others=others)
    _make_dirs(path.parent, path)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".kiloml-tmp",
                                        dir=path.parent))
    except OSError as e:
        raise KilomlError(f"--out {path}: cannot write in {path.parent} ({e.strerror})") from None
    try:
        with OutputLock(staging):
            yield staging
            write_marker(staging, kind, [p.name for p in staging.iterdir() if p.name != MARKER])
            if not os.path.lexists(path):
                try:
                    os.rename(staging, path)  # the lock moves with the directory
                    return
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            _install_into(staging, path, kind, replace=replace, others=others)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _install_into(staging: Path, path: Path, kind: OutputKind, *, replace: bool,
                  others: tuple[OutputKind, ...]) -> None:
    """Move the entries of ``staging`` into the existing directory ``path``."""
    with OutputLock(path):
        _check(path, kind, replace=replace, resume=False, flag="--out", others=others)
        own = set(own_files(path, kind) or [])
        names = [p.name for p in staging.iterdir() if p.name != MARKER]
        taken = [n for n in names if os.path.lexists(path / n) and n not in own]
        if taken:
            raise KilomlError(f"--out {path}: {', '.join(taken)} there was not written by kiloml "
                              "and would be replaced; move it or choose another --out")
        if own:
            remove_own_files(path, kind)
        for name in names:
            os.replace(staging / name, path / name)
        write_marker(path, kind, names)
    shutil.rmtree(staging)
