"""RNNPool (Saha et al., NeurIPS 2020): a pooling operator made of two small FastGRNNs.

One patch ``[C, r, c]`` becomes one vector of ``4·h2`` features:

1. RNN1 (input ``C``, hidden ``h1``) sweeps every row from left to right and every column from
   top to bottom; its final states are ``r`` row summaries and ``c`` column summaries
   (``[h1]`` each).
2. RNN2 (input ``h1``, hidden ``h2``) sweeps the row summaries top to bottom and bottom to top,
   and the column summaries left to right and right to left.
3. The output is RNN2's four final states, concatenated in the order
   ``[rows forward, rows backward, columns forward, columns backward]``.

RNN1 is one cell for rows and columns and RNN2 one cell for all four sweeps (EdgeML's
``is_shared_bidirectional``), both FastGRNN with sigmoid gate, tanh update and
``zeta``/``nu`` initialised at ``100``/``-100`` (so ``h' = z⊙h + (1−z)⊙h~`` at the start) as in
the paper's code. The same weights pool every patch. :func:`init_as_edgeml` re-initialises
both cells as EdgeML's code does instead of with kiloml's defaults.

:class:`RNNPoolLayer` cuts a ``[N, C, H, W]`` map into patches (``patch_size`` and ``stride``
may differ per axis) and pools them all at once: every sweep of every patch of every image is
one batch row of a single fused scan (:mod:`kiloml.nn.scan`), one scan per sequence length.
"""

import torch
import torch.nn.functional as F
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.fastrnn import FastGRNNCell

#: ``zeta``/``nu`` before the sigmoid, as in the paper's code: the update is ``(1−z)⊙h~``
ZETA_INIT, NU_INIT = 100.0, -100.0


#: EdgeML's FastGRNN initialisation: every ``W``/``U`` entry ``EDGEML_STD·N(0, 1)``, both biases
#: ``EDGEML_BIAS``
EDGEML_STD, EDGEML_BIAS = 0.1, 1.0


def _pair(value, name: str) -> tuple[int, int]:
    """``value`` (an int or a pair of ints, each ≥ 1) as ``(rows, columns)``."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if (len(items) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items)):
        raise KilomlError(f"{name} must be a positive integer or a pair (rows, columns) of "
                          f"positive integers, got {value!r}")
    return int(items[0]), int(items[1])


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KilomlError(f"{name} must be a positive integer, got {value!r}")
    return value


def final_states(cell: FastGRNNCell, sequences: list[torch.Tensor]) -> list[torch.Tensor]:
    """The final state ``[B_i, H]`` of ``cell`` run from zeros over each time-major sequence
    ``[T_i, B_i, I]``; sequences of equal length share one fused scan."""
    results: list[torch.Tensor | None] = [None] * len(sequences)
    by_length: dict[int, list[int]] = {}
    for i, seq in enumerate(sequences):
        by_length.setdefault(seq.shape[0], []).append(i)
    for indices in by_length.values():
        x = torch.cat([sequences[i] for i in indices], dim=1)
        h0 = x.new_zeros(x.shape[1], cell.hidden_size)
        last = cell.scan(x, h0)[-1]
        for i, part in zip(indices, last.split([sequences[i].shape[1] for i in indices]),
                           strict=True):
            results[i] = part
    return results


@torch.no_grad()
def init_as_edgeml(module: nn.Module) -> nn.Module:
    """Re-initialise both FastGRNN cells of an :class:`RNNPool` or :class:`RNNPoolLayer` (in
    place) as EdgeML's ``FastGRNNCell``: ``W`` and ``U`` (or their low-rank factors) drawn from
    ``0.1·N(0, 1)``, gate and update bias 1 (kiloml's default: Glorot-normal ``W``, orthogonal
    ``U``, gate bias 1, update bias 0). ``zeta``/``nu`` keep ``100``/``-100`` as both use.
    Draws from torch's global generator; returns ``module``."""
    pool = module.pool if isinstance(module, RNNPoolLayer) else module
    if not isinstance(pool, RNNPool):
        raise KilomlError(f"init_as_edgeml expects an RNNPool or RNNPoolLayer, "
                          f"got {type(module).__name__}")
    for cell in (pool.rnn1, pool.rnn2):
        for names in cell.matrix_parameter_names().values():
            for name in names:
                getattr(cell, name).normal_(0.0, EDGEML_STD)
        cell.bias_gate.fill_(EDGEML_BIAS)
        cell.bias_update.fill_(EDGEML_BIAS)
        cell.zeta.fill_(ZETA_INIT)
        cell.nu.fill_(NU_INIT)
    return module


class RNNPool(nn.Module):
    """RNNPool of a batch of patches.

    Args:
        in_channels: ``C``, the patch's channels (RNN1's input size).
        hidden1: ``h1``, RNN1's hidden size (the row and column summaries).
        hidden2: ``h2``, RNN2's hidden size; the output has ``4·h2`` features.

    Shapes: ``forward(x [B, C, r, c]) -> [B, 4·h2]`` for any ``r, c ≥ 1``.
    """

    def __init__(self, in_channels: int, hidden1: int, hidden2: int):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels")
        self.hidden1 = _positive(hidden1, "h1")
        self.hidden2 = _positive(hidden2, "h2")
        self.rnn1 = FastGRNNCell(in_channels, hidden1, zeta_init=ZETA_INIT, nu_init=NU_INIT)
        self.rnn2 = FastGRNNCell(hidden1, hidden2, zeta_init=ZETA_INIT, nu_init=NU_INIT)

    @property
    def out_features(self) -> int:
        return 4 * self.hidden2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise KilomlError(f"RNNPool expects patches [B, {self.in_channels}, rows, columns], "
                              f"got {list(x.shape)}")
        batch, channels, rows, cols = x.shape
        # rows: time = column index, batch = (patch, row); columns: time = row, batch = (patch, col)
        row_seq = x.permute(3, 0, 2, 1).reshape(cols, batch * rows, channels)
        col_seq = x.permute(2, 0, 3, 1).reshape(rows, batch * cols, channels)
        row_sum, col_sum = final_states(self.rnn1, [row_seq, col_seq])
        row_sum = row_sum.reshape(batch, rows, self.hidden1).transpose(0, 1)  # [r, B, h1]
        col_sum = col_sum.reshape(batch, cols, self.hidden1).transpose(0, 1)  # [c, B, h1]
        finals = final_states(self.rnn2, [row_sum, row_sum.flip(0), col_sum, col_sum.flip(0)])
        return torch.cat(finals, dim=1)


class RNNPoolLayer(nn.Module):
    """RNNPool over every patch of a feature map.

    Args:
        in_channels: ``C`` of the input map.
        patch_size: ``r`` or ``(r, c)``, the patch in rows × columns of the map.
        stride: one int or ``(rows, columns)``: how far apart patches start.
        h1, h2: the hidden sizes of RNN1 and RNN2 (see :class:`RNNPool`).

    Shapes: ``[N, C, H, W] -> [N, 4·h2, (H − r)//s_r + 1, (W − c)//s_c + 1]`` (patches that
    would cross the border are not taken, as in a convolution without padding).
    """

    def __init__(self, in_channels: int, patch_size, stride, h1: int, h2: int):
        super().__init__()
        self.patch_size = _pair(patch_size, "patch_size")
        self.stride = _pair(stride, "stride")
        self.pool = RNNPool(in_channels, h1, h2)
        self.in_channels = self.pool.in_channels

    @property
    def out_channels(self) -> int:
        return self.pool.out_features

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(rows, columns)`` of the pooled map of a ``height × width`` input."""
        (r, c), (sr, sc) = self.patch_size, self.stride
        if height < r or width < c:
            raise KilomlError(f"RNNPool patch {r}x{c} is larger than the {height}x{width} map")
        return (height - r) // sr + 1, (width - c) // sc + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise KilomlError(f"RNNPoolLayer expects images [N, {self.in_channels}, H, W], "
                              f"got {list(x.shape)}")
        n, channels, height, width = x.shape
        out_h, out_w = self.output_size(height, width)
        r, c = self.patch_size
        patches = F.unfold(x, kernel_size=self.patch_size, stride=self.stride)  # [N, C·r·c, L]
        patches = patches.transpose(1, 2).reshape(n * out_h * out_w, channels, r, c)
        pooled = self.pool(patches)  # [N·L, 4·h2]
        return pooled.reshape(n, out_h, out_w, -1).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, patch_size={self.patch_size}, stride={self.stride}, "
                f"h1={self.pool.hidden1}, h2={self.pool.hidden2}")
