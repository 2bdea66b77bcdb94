"""Gate and update non-linearities of FastRNN/FastGRNN, with derivatives written from the output.

The fused recurrences in :mod:`kiloml.nn.scan` store only each non-linearity's output ``y`` and
need ``dy/dx`` during backpropagation, so every function here has a twin that computes the
derivative from ``y`` alone. ``quantSigm`` and ``quantTanh`` are EdgeML's piecewise-linear
versions, cheap on integer hardware.
"""

from collections.abc import Callable

import torch

from kiloml.errors import KilomlError


def _quant_tanh(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-1.0, 1.0)


def _quant_sigm(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "quantSigm": _quant_sigm,
    "quantTanh": _quant_tanh,
}

DERIVATIVES_FROM_OUTPUT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": lambda y: y * (1.0 - y),
    "tanh": lambda y: 1.0 - y * y,
    "relu": lambda y: (y > 0).to(y.dtype),
    "quantSigm": lambda y: ((y > 0) & (y < 1)).to(y.dtype) * 0.5,
    "quantTanh": lambda y: ((y > -1) & (y < 1)).to(y.dtype),
}


def check_nonlinearity(name: str) -> str:
    """Return ``name`` if it is a supported non-linearity, else raise a one-line error."""
    if name not in FUNCTIONS:
        raise KilomlError(f"unknown non-linearity {name!r}; choose one of {', '.join(FUNCTIONS)}")
    return name


def apply_nonlinearity(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the named non-linearity elementwise."""
    return FUNCTIONS[check_nonlinearity(name)](x)
