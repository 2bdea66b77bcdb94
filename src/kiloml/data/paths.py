"""Where datasets are looked for and where derived files are cached, and the check that a file
given as input is a regular file.

``KILOML_DATA`` names a folder laid out like kiloml's data folder (``speech_commands/``,
``fsdd/``, ``mnist/``); without it, ``data/`` under the current directory. ``KILOML_CACHE``
names the cache folder (computed audio features); without it, ``~/.cache/kiloml``.
"""

import os
import stat
from pathlib import Path

from kiloml.errors import KilomlError


def data_root() -> Path:
    """The folder holding the downloaded datasets: ``$KILOML_DATA`` or ``./data``."""
    root = os.environ.get("KILOML_DATA")
    return Path(root).expanduser() if root else Path.cwd() / "data"


def cache_dir() -> Path:
    """The folder for cached derived files: ``$KILOML_CACHE`` or ``~/.cache/kiloml``."""
    root = os.environ.get("KILOML_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "kiloml"


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_input_file(path: Path, what: str = "file") -> None:
    """One-line error unless ``path`` is a regular file (or a symbolic link to one): a missing
    file, a broken link, a directory or a device such as ``/dev/zero`` are each named."""
    path = Path(path)
    if not os.path.lexists(path):
        raise KilomlError(f"{path}: file not found")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KilomlError(f"{path}: broken symbolic link (to {os.readlink(path)})") from None
    except OSError as e:
        raise KilomlError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        via = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise KilomlError(f"{path}: is {_file_type(mode)}{via}, not a {what}")
