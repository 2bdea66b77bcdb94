"""The user's own data as a ``.npz`` file with ``X_train``, ``y_train``, ``X_test``, ``y_test``.

``X_*`` are ``[N, T, F]`` sequences, ``y_*`` integer labels ``0..C-1`` where ``C`` is
``len(class_names)`` if given, else ``max(y_train) + 1``; a label outside that range in any split
is an error. Optional ``X_val``/
``y_val``; without them the last 10% of the training sequences (a fixed rule, after a shuffle with
seed 0) become the validation split. Optional ``class_names``, and ``vector_channels``
``[G, 3]``: the feature indices of each 3-axis sensor (e.g. ``[[0, 1, 2], [3, 4, 5]]`` for an
accelerometer and a gyroscope), which selects the ``imu`` training recipe.
"""

import zipfile
from pathlib import Path

import numpy as np

from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

VAL_FRACTION = 0.1


def load_npz(path: Path) -> DatasetSplits:
    path = Path(path)
    if not path.is_file():
        raise KilomlError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise KilomlError(f"{path}: not a readable .npz file ({e})") from None
    missing = [k for k in ("X_train", "y_train", "X_test", "y_test") if k not in arrays]
    if missing:
        raise KilomlError(f"{path}: missing arrays {missing} "
                          "(need X_train, y_train, X_test, y_test)")
    for k in ("X_train", "X_test", "X_val"):
        if k in arrays and arrays[k].ndim != 3:
            raise KilomlError(f"{path}: {k} must be [N, T, F], got shape {list(arrays[k].shape)}")
    for xk, yk in (("X_train", "y_train"), ("X_test", "y_test"), ("X_val", "y_val")):
        if xk in arrays and len(arrays[xk]) != len(arrays.get(yk, [])):
            raise KilomlError(f"{path}: {xk} has {len(arrays[xk])} sequences but {yk} has "
                              f"{len(arrays.get(yk, []))} labels")
    x_train, y_train = arrays["X_train"], arrays["y_train"]
    if "X_val" in arrays:
        train, val = Split(x_train, y_train), Split(arrays["X_val"], arrays["y_val"])
    else:
        order = np.random.default_rng(0).permutation(len(y_train))
        n_val = max(1, int(round(VAL_FRACTION * len(y_train))))
        val_idx, train_idx = order[-n_val:], order[:-n_val]
        train = Split(x_train[train_idx], y_train[train_idx])
        val = Split(x_train[val_idx], y_train[val_idx])
    if not np.issubdtype(np.asarray(y_train).dtype, np.number) or len(y_train) == 0:
        raise KilomlError(f"{path}: y_train must hold integer labels 0..C-1")
    if "class_names" in arrays:
        class_names = [str(c) for c in arrays["class_names"]]
    else:  # the classes are those of the training labels; other splits must stay within them
        class_names = [str(i) for i in range(int(np.nanmax(y_train)) + 1)]
    info = {"path": str(path)}
    if "vector_channels" in arrays:
        info["vector_channels"] = _vector_channels(path, arrays["vector_channels"],
                                                   x_train.shape[2])
    return DatasetSplits(path.stem, train, val, Split(arrays["X_test"], arrays["y_test"]),
                         class_names, description=f"user data from {path.name}",
                         info=info).validate()


def _vector_channels(path: Path, groups: np.ndarray, features: int) -> list[list[int]]:
    """``vector_channels`` as lists of 3 distinct feature indices, or a one-line error."""
    flat = groups.reshape(-1) if groups.ndim == 2 else groups
    if (groups.ndim != 2 or groups.shape[1] != 3 or not np.issubdtype(groups.dtype, np.integer)
            or len(set(flat.tolist())) != flat.size or flat.min(initial=0) < 0
            or flat.max(initial=0) >= features):
        raise KilomlError(f"{path}: vector_channels must be [G, 3] distinct feature indices in "
                          f"0..{features - 1}, got {groups.tolist()}")
    return groups.tolist()
