"""Where datasets are looked for and where derived files are cached.

``KILOML_DATA`` names a folder laid out like kiloml's data folder (``speech_commands/``,
``fsdd/``, ``mnist/``); without it, ``data/`` under the current directory. ``KILOML_CACHE``
names the cache folder (computed audio features); without it, ``~/.cache/kiloml``.
"""

import os
from pathlib import Path


def data_root() -> Path:
    """The folder holding the downloaded datasets: ``$KILOML_DATA`` or ``./data``."""
    root = os.environ.get("KILOML_DATA")
    return Path(root).expanduser() if root else Path.cwd() / "data"


def cache_dir() -> Path:
    """The folder for cached derived files: ``$KILOML_CACHE`` or ``~/.cache/kiloml``."""
    root = os.environ.get("KILOML_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "kiloml"
