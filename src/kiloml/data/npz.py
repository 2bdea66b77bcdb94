"""The user's own data as a ``.npz`` file with ``X_train``, ``y_train``, ``X_test``, ``y_test``.

``X_*`` are ``[N, T, F]`` sequences of real numbers, or ``[N, F]`` feature vectors (for
ProtoNN; held as one step of ``F`` features, ``info["input"] == "vector"``), ``y_*`` integer
labels ``0..C-1`` where
``C`` is ``len(class_names)`` if given, else ``max(y_train) + 1``; a label outside that range in
any split is an error. Optional ``X_val``/``y_val``; without them the last 10% of the training
sequences (a fixed rule, after a shuffle with seed 0) become the validation split. Optional
``class_names``.

:func:`read_npz` reads any ``.npz`` safely: it must be a regular file and a zip archive; pickled
objects are refused, never unpickled; and the arrays' unpacked size is checked against the
memory the machine has before anything is inflated (a zip bomb stops with a one-line error).
Optional ``vector_channels`` ``[G, 3]``: the feature indices of each 3-axis sensor (e.g.
``[[0, 1, 2], [3, 4, 5]]`` for an accelerometer and a gyroscope), which selects the ``imu``
training recipe.
"""

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from kiloml.data.paths import check_input_file
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

VAL_FRACTION = 0.1
#: Most classes a label array may imply (``max(y_train) + 1``).
MAX_CLASSES = 10_000
#: Fraction of the machine's available memory the arrays of one file may take unpacked.
MEMORY_FRACTION = 0.5


def available_memory_bytes() -> int:
    """Memory the machine can give a new allocation (``MemAvailable`` on Linux, else all of
    physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member: header checked (no objects, data no larger than the member), then
    exactly the declared bytes read."""
    key = info.filename[:-len(".npy")]
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not "
                                 "supported")
        except ValueError as e:
            raise KilomlError(f"{path}: {key} is not a readable array ({e})") from None
        if dtype.hasobject:
            raise KilomlError(f"{path}: {key} holds Python objects (pickled data), which kiloml "
                              "never loads; save plain numeric arrays")
        if dtype.itemsize == 0:
            raise KilomlError(f"{path}: {key} has items of 0 bytes ({dtype})")
        count = math.prod(shape)
        size = count * dtype.itemsize
        if size > info.file_size:
            raise KilomlError(f"{path}: {key} declares shape {list(shape)} ({size:,} bytes) but "
                              f"the file holds {info.file_size:,}; it is corrupt")
        buffer = bytearray(size)
        if f.readinto(buffer) != size:
            raise KilomlError(f"{path}: {key} is truncated")
    array = np.frombuffer(buffer, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` file ``path`` by name; a one-line error for anything that is not a
    readable ``.npz`` of plain arrays that fits in memory (see the module docstring)."""
    path = Path(path)
    check_input_file(path, ".npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            unpacked = sum(i.file_size for i in members)
            limit = int(MEMORY_FRACTION * available_memory_bytes())
            if unpacked > limit:
                raise KilomlError(f"{path}: its arrays unpack to {_megabytes(unpacked)}, more "
                                  f"than half of the {_megabytes(2 * limit)} of memory available "
                                  "(a zip bomb?)")
            return {i.filename[:-len(".npy")]: _read_member(archive, i, path) for i in members}
    except zipfile.BadZipFile as e:
        reason = "not a zip archive" if "File is not a zip file" in str(e) else str(e)
        raise KilomlError(f"{path}: not a readable .npz file ({reason})") from None
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise KilomlError(f"{path}: not a readable .npz file ({e})") from None
    except OSError as e:
        raise KilomlError(f"{path}: cannot read it ({e.strerror or e})") from None


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    missing = [k for k in ("X_train", "y_train", "X_test", "y_test") if k not in arrays]
    if missing:
        raise KilomlError(f"{path}: missing arrays {missing} "
                          "(need X_train, y_train, X_test, y_test)")
    dims = arrays["X_train"].ndim
    for xk, yk in (("X_train", "y_train"), ("X_test", "y_test"), ("X_val", "y_val")):
        if xk not in arrays and yk not in arrays:
            continue
        x, y = arrays.get(xk), arrays.get(yk)
        if x is None or y is None:
            raise KilomlError(f"{path}: {xk if x is None else yk} is missing next to "
                              f"{yk if x is None else xk}")
        if x.ndim not in (2, 3):
            raise KilomlError(f"{path}: {xk} must be [N, T, F] sequences or [N, F] feature "
                              f"vectors, got shape {list(x.shape)}")
        if x.ndim != dims:
            raise KilomlError(f"{path}: {xk} has {x.ndim} dimensions but X_train has {dims}")
        if y.ndim != 1:
            raise KilomlError(f"{path}: {yk} must be [N] labels, got shape {list(y.shape)}")
        if len(x) != len(y):
            raise KilomlError(f"{path}: {xk} has {len(x)} sequences but {yk} has {len(y)} "
                              "labels")


def _class_names(path: Path, arrays: dict[str, np.ndarray]) -> list[str]:
    """``class_names`` if given, else ``0..max(y_train)``."""
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1:
            raise KilomlError(f"{path}: class_names must be a list of names, got shape "
                              f"{list(names.shape)}")
        return [str(c) for c in names]
    y = arrays["y_train"]
    if len(y) == 0:
        raise KilomlError(f"{path}: y_train holds no labels")
    if y.dtype.kind not in "biuf":
        raise KilomlError(f"{path}: y_train must hold integer labels 0..C-1, not {y.dtype}")
    if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)) or y.min() < 0:
        raise KilomlError(f"{path}: y_train must hold integer labels 0..C-1")
    classes = int(y.max()) + 1
    if classes > MAX_CLASSES:
        raise KilomlError(f"{path}: y_train's largest label {int(y.max())} means {classes:,} "
                          f"classes; kiloml supports up to {MAX_CLASSES:,}")
    return [str(i) for i in range(classes)]


def load_npz(path: Path) -> DatasetSplits:
    path = Path(path)
    arrays = read_npz(path)
    _check_arrays(path, arrays)
    class_names = _class_names(path, arrays)
    vectors = arrays["X_train"].ndim == 2
    if vectors:  # feature vectors: one step of F features
        for key in ("X_train", "X_val", "X_test"):
            if key in arrays:
                arrays[key] = arrays[key][:, None, :]
    x_train, y_train = arrays["X_train"], arrays["y_train"]
    if "X_val" in arrays:
        train, val = Split(x_train, y_train), Split(arrays["X_val"], arrays["y_val"])
    else:
        if len(y_train) < 2:
            raise KilomlError(f"{path}: {len(y_train)} training sequence(s) cannot be split "
                              "into train and validation; give X_val/y_val or more sequences")
        order = np.random.default_rng(0).permutation(len(y_train))
        n_val = max(1, int(round(VAL_FRACTION * len(y_train))))
        val_idx, train_idx = order[-n_val:], order[:-n_val]
        train = Split(x_train[train_idx], y_train[train_idx])
        val = Split(x_train[val_idx], y_train[val_idx])
    info = {"path": str(path), **({"input": "vector"} if vectors else {})}
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
