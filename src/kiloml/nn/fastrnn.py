"""FastRNN and FastGRNN (Kusupati et al., NeurIPS 2018): cells and ``nn.GRU``-style layers.

Parameter names and shapes follow the original EdgeML cells so that EdgeML models import
unchanged: ``W`` is ``[hidden, input]`` (or ``W1`` ``[w_rank, input]`` and ``W2``
``[hidden, w_rank]`` with ``W = W2 @ W1``), ``U`` is ``[hidden, hidden]`` (or ``U1``/``U2``),
biases are ``[1, hidden]`` and the scalars ``zeta``, ``nu`` (FastGRNN) and ``alpha``, ``beta``
(FastRNN) are ``[1, 1]``.

The cells compute one step with plain torch ops and are the readable reference. The layers
run the whole sequence through the fused recurrences of :mod:`kiloml.nn.scan`, which compute the
same numbers (tests check both values and gradients against the cells).
"""

import math

import torch
from torch import nn

from kiloml.nn.nonlinearity import apply_nonlinearity, check_nonlinearity
from kiloml.nn.scan import FastGRNNScan, FastRNNScan


class _LowRankCell(nn.Module):
    """Shared parts of the two cells: ``W``/``U`` as full or low-rank factors."""

    def __init__(self, input_size: int, hidden_size: int, w_rank: int | None,
                 u_rank: int | None):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.w_rank = None if w_rank is None else int(w_rank)
        self.u_rank = None if u_rank is None else int(u_rank)
        for name, rank, limit in (("w_rank", self.w_rank, min(input_size, hidden_size)),
                                  ("u_rank", self.u_rank, hidden_size)):
            if rank is not None and not 1 <= rank <= limit:
                raise ValueError(f"{name} must be between 1 and {limit}, got {rank}")
        if self.w_rank is None:
            self.W = nn.Parameter(torch.empty(hidden_size, input_size))
        else:
            self.W1 = nn.Parameter(torch.empty(self.w_rank, input_size))
            self.W2 = nn.Parameter(torch.empty(hidden_size, self.w_rank))
        if self.u_rank is None:
            self.U = nn.Parameter(torch.empty(hidden_size, hidden_size))
        else:
            self.U1 = nn.Parameter(torch.empty(self.u_rank, hidden_size))
            self.U2 = nn.Parameter(torch.empty(hidden_size, self.u_rank))

    def reset_matrices(self) -> None:
        """Initialise ``W`` with the variance of a Glorot matrix whatever its rank (each factor of
        a low-rank product gets standard deviation ``(target/r)**0.25``) and ``U`` with all its
        singular values 1: an orthogonal matrix at full rank, and at rank ``r`` the product of two
        semi-orthogonal factors (``U1`` orthonormal rows, ``U2`` orthonormal columns). Random
        Gaussian factors would give ``U`` singular values around ``sqrt(H/r)`` (2 at H=32, r=8),
        which a relu update turns into exploding states."""
        hidden, inputs = self.hidden_size, self.input_size
        w_var = 2.0 / (hidden + inputs)
        if self.w_rank is None:
            nn.init.normal_(self.W, std=math.sqrt(w_var))
        else:
            std = (w_var / self.w_rank) ** 0.25
            nn.init.normal_(self.W1, std=std)
            nn.init.normal_(self.W2, std=std)
        if self.u_rank is None:
            nn.init.orthogonal_(self.U)
        else:
            nn.init.orthogonal_(self.U1)
            nn.init.orthogonal_(self.U2)

    def matrix_W(self) -> torch.Tensor:
        """The effective ``[hidden, input]`` input matrix."""
        return self.W if self.w_rank is None else self.W2 @ self.W1

    def matrix_U(self) -> torch.Tensor:
        """The effective ``[hidden, hidden]`` recurrent matrix."""
        return self.U if self.u_rank is None else self.U2 @ self.U1

    def matrix_parameter_names(self) -> dict[str, list[str]]:
        """Names of the parameters that make up ``W`` and ``U`` (what sparsification acts on)."""
        return {"W": ["W"] if self.w_rank is None else ["W1", "W2"],
                "U": ["U"] if self.u_rank is None else ["U1", "U2"]}

    def _pre_activation(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix_W().t() + h @ self.matrix_U().t()


class FastGRNNCell(_LowRankCell):
    r"""One FastGRNN step: ``z = g(Wx + Uh + b_g)``, ``h~ = u(Wx + Uh + b_h)``,
    ``h' = z⊙h + (σ(ζ)(1−z) + σ(ν))⊙h~``.

    Args:
        input_size, hidden_size: feature counts of ``x`` and ``h``.
        gate_nonlinearity, update_nonlinearity: ``g`` and ``u``; one of ``sigmoid``, ``tanh``,
            ``relu``, ``quantSigm``, ``quantTanh``.
        w_rank, u_rank: ranks of ``W``/``U`` (``None`` for full rank).
        zeta_init, nu_init: initial values of ``ζ`` and ``ν`` (before the sigmoid).
        bias_gate_init: initial gate bias; positive values start with long memory (``z≈1``).

    Shapes: ``x`` ``[B, input_size]``, ``h`` ``[B, hidden_size]``; returns ``h'`` like ``h``.
    """

    def __init__(self, input_size: int, hidden_size: int, gate_nonlinearity: str = "sigmoid",
                 update_nonlinearity: str = "tanh", w_rank: int | None = None,
                 u_rank: int | None = None, zeta_init: float = 1.0, nu_init: float = -4.0,
                 bias_gate_init: float = 1.0):
        super().__init__(input_size, hidden_size, w_rank, u_rank)
        self.gate_nonlinearity = check_nonlinearity(gate_nonlinearity)
        self.update_nonlinearity = check_nonlinearity(update_nonlinearity)
        self.zeta_init, self.nu_init, self.bias_gate_init = zeta_init, nu_init, bias_gate_init
        self.bias_gate = nn.Parameter(torch.empty(1, hidden_size))
        self.bias_update = nn.Parameter(torch.empty(1, hidden_size))
        self.zeta = nn.Parameter(torch.empty(1, 1))
        self.nu = nn.Parameter(torch.empty(1, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_matrices()
        with torch.no_grad():
            self.bias_gate.fill_(self.bias_gate_init)
            self.bias_update.zero_()
            self.zeta.fill_(self.zeta_init)
            self.nu.fill_(self.nu_init)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a = self._pre_activation(x, h)
        z = apply_nonlinearity(a + self.bias_gate, self.gate_nonlinearity)
        c = apply_nonlinearity(a + self.bias_update, self.update_nonlinearity)
        return z * h + (torch.sigmoid(self.zeta) * (1 - z) + torch.sigmoid(self.nu)) * c

    def scan(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """All hidden states for a time-major sequence ``x`` ``[T, B, I]``: ``[T, B, H]``."""
        wx = x @ self.matrix_W().t()
        return FastGRNNScan.apply(wx, h0, self.matrix_U(), self.bias_gate, self.bias_update,
                                  self.zeta, self.nu, self.gate_nonlinearity,
                                  self.update_nonlinearity)


class FastRNNCell(_LowRankCell):
    r"""One FastRNN step: ``h' = σ(β)⊙h + σ(α)⊙u(Wx + Uh + b)``.

    Args are as :class:`FastGRNNCell`; ``alpha_init``/``beta_init`` are the initial ``α``/``β``
    before the sigmoid (EdgeML's defaults: a small update, a strong skip connection).
    """

    def __init__(self, input_size: int, hidden_size: int, update_nonlinearity: str = "tanh",
                 w_rank: int | None = None, u_rank: int | None = None,
                 alpha_init: float = -3.0, beta_init: float = 3.0):
        super().__init__(input_size, hidden_size, w_rank, u_rank)
        self.update_nonlinearity = check_nonlinearity(update_nonlinearity)
        self.alpha_init, self.beta_init = alpha_init, beta_init
        self.bias_update = nn.Parameter(torch.empty(1, hidden_size))
        self.alpha = nn.Parameter(torch.empty(1, 1))
        self.beta = nn.Parameter(torch.empty(1, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_matrices()
        with torch.no_grad():
            self.bias_update.zero_()
            self.alpha.fill_(self.alpha_init)
            self.beta.fill_(self.beta_init)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        c = apply_nonlinearity(self._pre_activation(x, h) + self.bias_update,
                               self.update_nonlinearity)
        return torch.sigmoid(self.beta) * h + torch.sigmoid(self.alpha) * c

    def scan(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """All hidden states for a time-major sequence ``x`` ``[T, B, I]``: ``[T, B, H]``."""
        wx = x @ self.matrix_W().t()
        return FastRNNScan.apply(wx, h0, self.matrix_U(), self.bias_update, self.alpha,
                                 self.beta, self.update_nonlinearity)


class _FastLayer(nn.Module):
    """A single-layer recurrence over a sequence with the ``nn.GRU`` calling convention."""

    def __init__(self, make_cell, input_size: int, hidden_size: int, batch_first: bool,
                 bidirectional: bool):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.batch_first, self.bidirectional = batch_first, bidirectional
        self.cell = make_cell()
        self.cell_reverse = make_cell() if bidirectional else None

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cells(self) -> list[_LowRankCell]:
        return [self.cell] if self.cell_reverse is None else [self.cell, self.cell_reverse]

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None):
        """Run the sequence.

        Args:
            input: ``[B, T, I]`` if ``batch_first`` else ``[T, B, I]``.
            hx: initial state ``[D, B, H]`` (``D`` = 2 if bidirectional else 1), or ``None``
                for zeros.

        Returns:
            ``(output, h_n)``: output ``[B, T, D*H]`` (or ``[T, B, D*H]``), ``h_n`` ``[D, B, H]``.
        """
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"expected input of shape [*, *, {self.input_size}], "
                             f"got {list(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input
        batch = x.shape[1]
        if hx is None:
            hx = x.new_zeros(self.num_directions, batch, self.hidden_size)
        elif hx.shape != (self.num_directions, batch, self.hidden_size):
            expected = [self.num_directions, batch, self.hidden_size]
            raise ValueError(f"expected hx of shape {expected}, got {list(hx.shape)}")
        outputs = [self.cell.scan(x, hx[0])]
        if self.cell_reverse is not None:
            outputs.append(self.cell_reverse.scan(x.flip(0), hx[1]).flip(0))
        h_n = torch.stack([outputs[0][-1]] + ([outputs[1][0]] if len(outputs) > 1 else []))
        output = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        return (output.transpose(0, 1) if self.batch_first else output), h_n


class FastGRNN(_FastLayer):
    """FastGRNN over a sequence; arguments as :class:`FastGRNNCell` plus ``batch_first`` and
    ``bidirectional`` (as ``nn.GRU``). Returns ``(output, h_n)`` like ``nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = False,
                 bidirectional: bool = False, **cell_kwargs):
        super().__init__(lambda: FastGRNNCell(input_size, hidden_size, **cell_kwargs),
                         input_size, hidden_size, batch_first, bidirectional)


class FastRNN(_FastLayer):
    """FastRNN over a sequence; arguments as :class:`FastRNNCell` plus ``batch_first`` and
    ``bidirectional`` (as ``nn.GRU``). Returns ``(output, h_n)`` like ``nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = False,
                 bidirectional: bool = False, **cell_kwargs):
        super().__init__(lambda: FastRNNCell(input_size, hidden_size, **cell_kwargs),
                         input_size, hidden_size, batch_first, bidirectional)
