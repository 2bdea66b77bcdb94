"""Images enlarged by a whole factor with bilinear interpolation, computed when indexed.

A ``[N, H, W, C]`` ``uint8`` array becomes kiloml's image rows ``[N, f·H, f·W·C]`` float32 in
``[0, 1]`` (pixels interleaved, as :mod:`kiloml.data.cifar10` holds them) without ever holding
all of them: indexing (an int, a slice or an array of indices, as the Trainer and ``evaluate``
do) resizes just those images. 50,000 CIFAR-10 images at 96×96 would be 5.5 GB of float32.

The rule: bilinear interpolation with half-pixel centres — output pixel ``i`` samples the input
at ``(i + 0.5) / f − 0.5``, between its two nearest pixels, clamped at the border — per axis and
per channel. It equals ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` and Pillow's ``BILINEAR`` for enlargement.
"""

import numpy as np


def interpolation_matrix(size: int, factor: int) -> np.ndarray:
    """``[factor·size, size]`` float32 weights of bilinear enlargement along one axis."""
    out = np.zeros((size * factor, size), dtype=np.float64)
    for i in range(size * factor):
        source = (i + 0.5) / factor - 0.5
        low = int(np.floor(source))
        frac = source - low
        out[i, min(max(low, 0), size - 1)] += 1.0 - frac
        out[i, min(max(low + 1, 0), size - 1)] += frac
    return out.astype(np.float32)


class UpsampledImages:
    """``[N, f·H, f·W·C]`` float32 view of ``images`` ``[N, H, W, C]`` ``uint8``, each enlarged by
    ``factor`` when indexed (see the module docstring). Supports ``len``, ``shape``,
    ``dtype``, ``ndim``, indexing by int / slice / index array, and ``np.asarray`` (which
    computes every image: avoid on large sets)."""

    is_lazy = True

    def __init__(self, images: np.ndarray, factor: int):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 [N, H, W, C] images, got {images.dtype} "
                             f"{list(images.shape)}")
        self.images, self.factor = images, int(factor)
        n, h, w, c = images.shape
        self.shape = (n, h * self.factor, w * self.factor * c)
        self.dtype, self.ndim = np.dtype(np.float32), 3
        self._rows = interpolation_matrix(h, self.factor)
        self._cols_t = interpolation_matrix(w, self.factor).T.copy()

    def __len__(self) -> int:
        return self.shape[0]

    def _resize(self, images: np.ndarray) -> np.ndarray:
        x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)  # [n, C, H, W]
        x = self._rows @ x @ self._cols_t  # [n, C, fH, fW]
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(len(images), *self.shape[1:])

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return self._resize(self.images[index][None])[0]
        return self._resize(self.images[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.concatenate([self[start:start + 1000] for start in range(0, len(self), 1000)]
                             or [np.empty((0, *self.shape[1:]), np.float32)])
        return out if dtype is None else out.astype(dtype)
