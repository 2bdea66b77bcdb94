"""Dataset names → loaders. ``load_dataset`` also accepts a path to the user's own ``.npz``."""

from collections.abc import Callable
from pathlib import Path

from kiloml.data.npz import load_npz
from kiloml.data.smartwatch import load_smartwatch
from kiloml.data.splits import DatasetSplits
from kiloml.errors import KilomlError

#: name -> (loader taking an optional data path, one-line description)
DATASETS: dict[str, tuple[Callable[[Path | None], DatasetSplits], str]] = {
    "smartwatch": (load_smartwatch, "seglearn smartwatch IMU, 7 exercises, split by subject"),
}


def load_dataset(name: str, data_dir: Path | str | None = None) -> DatasetSplits:
    """Load a registered dataset by ``name`` (optionally from ``data_dir``), or a ``.npz`` path."""
    if name in DATASETS:
        return DATASETS[name][0](Path(data_dir) if data_dir is not None else None)
    if name.endswith(".npz"):
        return load_npz(Path(name))
    raise KilomlError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                      "or pass a .npz file with X_train, y_train, X_test, y_test")


def dataset_location(name: str) -> str | None:
    """Where a registered dataset is looked for by default (for ``kiloml datasets``)."""
    if name == "smartwatch":
        from kiloml.data.smartwatch import default_path

        path = default_path()
        return str(path) if path else None
    return None
