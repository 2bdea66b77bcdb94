"""EMI-RNN's bags (Dwivedi/Kusupati et al., NeurIPS 2018): every sequence becomes a bag of
overlapping instances, windows of ``width`` steps every ``stride`` steps.

``make_bags(x [N, T, F], width, stride) -> [N, I, width, F]`` with
``I = 1 + (T - width) // stride`` instances; instance ``i`` is steps ``i*stride ..
i*stride + width - 1`` (steps after the last whole window are not read).
"""

import numpy as np

from kiloml.errors import KilomlError


def instance_count(steps: int, width: int, stride: int) -> int:
    """Instances of a bag of ``steps`` steps; one-line error for a width or stride that does
    not fit."""
    if width < 1 or stride < 1:
        raise KilomlError(f"instance width and stride must be positive, got {width} and "
                          f"{stride}")
    if width > steps:
        raise KilomlError(f"--instance-width {width} is longer than the {steps}-step "
                          "sequences")
    return 1 + (steps - width) // stride


def make_bags(x: np.ndarray, width: int, stride: int) -> np.ndarray:
    """``[N, T, F]`` → ``[N, I, width, F]`` (a copy; see the module docstring)."""
    x = np.asarray(x)
    count = instance_count(x.shape[1], width, stride)
    index = np.arange(count)[:, None] * stride + np.arange(width)[None, :]
    return x[:, index]
