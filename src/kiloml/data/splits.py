"""Train/validation/test splits as checked float32 arrays."""

from dataclasses import dataclass, field

import numpy as np

from kiloml.errors import KilomlError


@dataclass
class Split:
    """One split: ``x`` ``[N, T, F]`` float32 features and ``y`` ``[N]`` int64 labels. ``x`` may
    be an array-like with ``is_lazy = True`` (``data.resized_images``) that computes the rows it
    is indexed with."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DatasetSplits:
    """A dataset's three splits plus what a run needs to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    description: str = ""
    info: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.train.x.shape[1]

    @property
    def num_features(self) -> int:
        return self.train.x.shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def pad_front(self, steps: int) -> "DatasetSplits":
        """The same splits with every sequence lengthened to ``steps`` by repeating its first
        frame in front (the convention of the ``.ts`` loader for series of unequal length);
        ``info["padded_from"]`` keeps the original length."""
        extra = steps - self.steps
        if extra < 0:
            raise ValueError(f"cannot pad {self.steps} steps to {steps}")
        if extra == 0:
            return self

        def pad(split: Split) -> Split:
            front = np.repeat(split.x[:, :1], extra, axis=1)
            return Split(np.concatenate([front, split.x], axis=1), split.y)

        return DatasetSplits(self.name, pad(self.train), pad(self.val), pad(self.test),
                             self.class_names, self.description,
                             {**self.info, "padded_from": self.steps})

    def validate(self) -> "DatasetSplits":
        """Check shapes, dtypes, finiteness and label range; one-line error on the first problem.

        Features must be real numbers that stay finite as float32 (complex values, text and
        objects are refused, not cast); every dimension must be non-empty."""
        for split_name in ("train", "val", "test"):
            split = getattr(self, split_name)
            where = f"{self.name} {split_name} split"
            lazy = getattr(split.x, "is_lazy", False)  # images computed when indexed
            x, y = split.x if lazy else np.asarray(split.x), np.asarray(split.y)
            if x.ndim != 3:
                raise KilomlError(f"{where}: features must be [N, T, F], got shape {list(x.shape)}")
            if y.ndim != 1 or len(y) != len(x):
                raise KilomlError(f"{where}: {len(x)} sequences but labels of shape "
                                  f"{list(y.shape)}")
            if len(x) == 0:
                raise KilomlError(f"{where}: no sequences")
            if 0 in x.shape[1:]:
                raise KilomlError(f"{where}: sequences of {x.shape[1]} steps × {x.shape[2]} "
                                  "features; both must be at least 1")
            if x.shape[1:] != self.train.x.shape[1:]:
                raise KilomlError(f"{where}: sequences are {list(x.shape[1:])} but train's are "
                                  f"{list(self.train.x.shape[1:])}")
            if not lazy:  # a lazy array's source was checked by its loader
                x = _real_features(x, where)
            if y.dtype.kind not in "biu":
                if y.dtype.kind != "f":
                    raise KilomlError(f"{where}: labels must be integers, not {y.dtype}")
                if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                    raise KilomlError(f"{where}: labels must be integers")
            if not lazy:
                _check_finite(x, where)
            if y.min() < 0 or y.max() >= self.num_classes:
                raise KilomlError(f"{where}: labels must be in 0..{self.num_classes - 1}, "
                                  f"found {int(y.min())}..{int(y.max())}")
            split.x = x
            split.y = y.astype(np.int64, copy=False)
        return self


def _real_features(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as float32, refusing what is not real numbers (complex, text, objects)."""
    if np.iscomplexobj(x):
        raise KilomlError(f"{where}: complex feature values; features must be real numbers")
    if x.dtype.kind not in "biuf":
        raise KilomlError(f"{where}: features must be numbers, not {x.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported
        return x.astype(np.float32, copy=False)


def _check_finite(x: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        n, t, f = np.argwhere(bad)[0]
        raise KilomlError(f"{where}: {int(bad.sum())} NaN/inf feature values, or values beyond "
                          f"float32's range (first at sequence {n}, step {t}, feature {f})")


def check_features(x, where: str) -> np.ndarray:
    """``x`` as a float32 ``[N, T, F]`` array of finite real numbers with every dimension
    non-empty, or a one-line error starting with ``where``."""
    x = np.asarray(x)
    if x.ndim != 3 or 0 in x.shape:
        raise KilomlError(f"{where}: features must be a non-empty [N, T, F] array, got shape "
                          f"{list(x.shape)}")
    x = _real_features(x, where)
    _check_finite(x, where)
    return x


def sliding_windows(recording: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Windows ``[N, length, F]`` of a ``[T, F]`` recording, starting every ``hop`` samples;
    a recording shorter than ``length`` gives none."""
    if len(recording) < length:
        return np.empty((0, length, recording.shape[1]), dtype=recording.dtype)
    starts = range(0, len(recording) - length + 1, hop)
    return np.stack([recording[s:s + length] for s in starts])
