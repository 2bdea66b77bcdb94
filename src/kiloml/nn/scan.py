"""Fused recurrences of FastGRNN and FastRNN over a whole sequence, with hand-written BPTT.

Autograd through a Python loop records ~15 small ops per time step and replays them backwards.
Here the input projection ``W x_t`` is one large matmul done by the caller (under autograd), and
the loop keeps only what the recurrence really needs: one ``addmm`` and four elementwise ops per
step forwards, one ``addmm`` and two elementwise ops per step backwards, all writing into
preallocated buffers through per-step views made once before the loop (``unbind``; indexing
inside the loop costs as much as a small op). Everything that does not depend on the running
gradient (gate derivatives, bias, ``zeta``/``nu`` and ``U`` gradients) is computed for all steps
at once, in place, after the loop: large temporaries cost page faults on CPU, so the backward
pass reuses its buffers.

Shapes: ``wx`` is ``[T, B, H]`` (time-major, ``W x_t`` without bias), ``h0`` is ``[B, H]``,
``U`` is ``[H, H]`` (the effective matrix, ``U2 @ U1`` when low-rank), biases are ``[1, H]`` and
``zeta``/``nu``/``alpha``/``beta`` are ``[1, 1]``. The result is every hidden state, ``[T, B, H]``.
"""

import torch
from torch.autograd import Function

from kiloml.nn.nonlinearity import DERIVATIVES_FROM_OUTPUT, FUNCTIONS


def _apply_into(name: str, x: torch.Tensor, out: torch.Tensor) -> None:
    """``out = f(x)`` without a temporary for the common non-linearities."""
    if name == "sigmoid":
        torch.sigmoid(x, out=out)
    elif name == "tanh":
        torch.tanh(x, out=out)
    else:
        out.copy_(FUNCTIONS[name](x))


def _derivative_from_output(name: str, y: torch.Tensor) -> torch.Tensor:
    """``f'(x)`` from ``y = f(x)`` as a new tensor (one allocation for sigmoid/tanh)."""
    if name == "sigmoid":
        return torch.sub(1.0, y).mul_(y)
    if name == "tanh":
        return torch.mul(y, y).neg_().add_(1.0)
    return DERIVATIVES_FROM_OUTPUT[name](y)


def _previous_states(hs: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """``[h0, h_1, ..., h_{T-1}]`` as ``[T, B, H]``."""
    return torch.cat([h0.unsqueeze(0), hs[:-1]], dim=0)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum(a * b)`` without materialising the product."""
    return torch.dot(a.reshape(-1), b.reshape(-1))


class FastGRNNScan(Function):
    """``h_t = z⊙h_{t-1} + (σ(ζ)(1−z) + σ(ν))⊙h~``, ``z = g(a + b_g)``, ``h~ = u(a + b_h)``,
    ``a = W x_t + U h_{t-1}``."""

    @staticmethod
    def forward(ctx, wx, h0, U, bias_gate, bias_update, zeta, nu, gate_nl, update_nl):
        s_zeta, s_nu = float(torch.sigmoid(zeta)), float(torch.sigmoid(nu))
        steps, batch, hidden = wx.shape
        # One addmm per step yields both pre-activations with their biases: [a+b_g | a+b_h].
        wx_both = wx.new_empty(steps, batch, 2 * hidden)
        torch.add(wx, bias_gate, out=wx_both[..., :hidden])
        torch.add(wx, bias_update, out=wx_both[..., hidden:])
        ut_both = torch.cat([U.t(), U.t()], dim=1).contiguous()
        hs, zs, cs = torch.empty_like(wx), torch.empty_like(wx), torch.empty_like(wx)
        pre = wx.new_empty(batch, 2 * hidden)
        pre_gate, pre_update = pre[:, :hidden], pre[:, hidden:]
        scaled_c, kept_h = wx.new_empty(batch, hidden), wx.new_empty(batch, hidden)
        h = h0
        for wx_t, z_t, c_t, h_t in zip(wx_both.unbind(0), zs.unbind(0), cs.unbind(0),
                                       hs.unbind(0), strict=True):
            torch.addmm(wx_t, h, ut_both, out=pre)
            _apply_into(gate_nl, pre_gate, z_t)
            _apply_into(update_nl, pre_update, c_t)
            # h' = z*h + (s_zeta*(1-z) + s_nu)*c  ==  z*(h - s_zeta*c) + (s_zeta + s_nu)*c
            torch.mul(c_t, s_zeta + s_nu, out=scaled_c)
            torch.add(h, c_t, alpha=-s_zeta, out=kept_h)
            h = torch.addcmul(scaled_c, z_t, kept_h, out=h_t)
        ctx.save_for_backward(hs, zs, cs, h0, U)
        ctx.constants = (s_zeta, s_nu, gate_nl, update_nl)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        hs, zs, cs, h0, U = ctx.saved_tensors
        s_zeta, s_nu, gate_nl, update_nl = ctx.constants
        h_prev = _previous_states(hs, h0)
        # dh'/dz = h - s_zeta*c ; dh'/dc = s_zeta*(1-z) + s_nu ; dh'/dh (direct) = z
        gain_gate = torch.add(h_prev, cs, alpha=-s_zeta).mul_(_derivative_from_output(gate_nl, zs))
        gain_update = torch.mul(zs, -s_zeta).add_(s_zeta + s_nu)
        gain_update.mul_(_derivative_from_output(update_nl, cs))
        gain = torch.add(gain_gate, gain_update)
        grad_h = torch.empty_like(hs)  # dL/dh_t through every later step
        grad_h[-1] = grad_hs[-1]
        direct, through_u = torch.empty_like(hs[0]), torch.empty_like(hs[0])
        grad_h_t, grad_hs_t, zs_t, gain_t = (v.unbind(0) for v in (grad_h, grad_hs, zs, gain))
        for t in range(hs.shape[0] - 1, 0, -1):
            dh = grad_h_t[t]
            torch.addcmul(grad_hs_t[t - 1], dh, zs_t[t], out=direct)
            torch.mul(dh, gain_t[t], out=through_u)
            torch.addmm(direct, through_u, U, out=grad_h_t[t - 1])
        dh = grad_h[0]
        grad_h0 = torch.addmm(dh * zs[0], dh * gain[0], U)
        grad_a_gate, grad_a_update = gain_gate.mul_(grad_h), gain_update.mul_(grad_h)
        grad_wx = torch.add(grad_a_gate, grad_a_update, out=gain)
        hidden = hs.shape[-1]
        grad_U = grad_wx.reshape(-1, hidden).t() @ h_prev.reshape(-1, hidden)
        grad_bias_gate = grad_a_gate.sum(dim=(0, 1)).unsqueeze(0)
        grad_bias_update = grad_a_update.sum(dim=(0, 1)).unsqueeze(0)
        grad_c = grad_h.mul_(cs)  # dL/dh' * c, reusing grad_h
        sum_grad_c = grad_c.sum()
        grad_zeta = (sum_grad_c - _dot(grad_c, zs)) * (s_zeta * (1.0 - s_zeta))
        grad_nu = sum_grad_c * (s_nu * (1.0 - s_nu))
        return (grad_wx, grad_h0, grad_U, grad_bias_gate, grad_bias_update,
                grad_zeta.reshape(1, 1), grad_nu.reshape(1, 1), None, None)


class FastRNNScan(Function):
    """``h_t = σ(β) h_{t-1} + σ(α) u(a + b)``, ``a = W x_t + U h_{t-1}``."""

    @staticmethod
    def forward(ctx, wx, h0, U, bias_update, alpha, beta, update_nl):
        s_alpha, s_beta = float(torch.sigmoid(alpha)), float(torch.sigmoid(beta))
        hs, cs = torch.empty_like(wx), torch.empty_like(wx)
        wx_biased = wx + bias_update
        ut = U.t().contiguous()
        pre, kept_h = torch.empty_like(h0), torch.empty_like(h0)
        h = h0
        for wx_t, c_t, h_t in zip(wx_biased.unbind(0), cs.unbind(0), hs.unbind(0),
                                  strict=True):
            _apply_into(update_nl, torch.addmm(wx_t, h, ut, out=pre), c_t)
            torch.mul(h, s_beta, out=kept_h)
            h = torch.add(kept_h, c_t, alpha=s_alpha, out=h_t)
        ctx.save_for_backward(hs, cs, h0, U)
        ctx.constants = (s_alpha, s_beta, update_nl)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        hs, cs, h0, U = ctx.saved_tensors
        s_alpha, s_beta, update_nl = ctx.constants
        gain = _derivative_from_output(update_nl, cs).mul_(s_alpha)
        grad_h = torch.empty_like(hs)
        grad_h[-1] = grad_hs[-1]
        direct, through_u = torch.empty_like(hs[0]), torch.empty_like(hs[0])
        grad_h_t, grad_hs_t, gain_t = (v.unbind(0) for v in (grad_h, grad_hs, gain))
        for t in range(hs.shape[0] - 1, 0, -1):
            dh = grad_h_t[t]
            torch.add(grad_hs_t[t - 1], dh, alpha=s_beta, out=direct)
            torch.mul(dh, gain_t[t], out=through_u)
            torch.addmm(direct, through_u, U, out=grad_h_t[t - 1])
        dh = grad_h[0]
        grad_h0 = torch.addmm(dh * s_beta, dh * gain[0], U)
        h_prev = _previous_states(hs, h0)
        grad_alpha = _dot(grad_h, cs) * (s_alpha * (1.0 - s_alpha))
        grad_beta = _dot(grad_h, h_prev) * (s_beta * (1.0 - s_beta))
        grad_wx = gain.mul_(grad_h)
        hidden = hs.shape[-1]
        grad_U = grad_wx.reshape(-1, hidden).t() @ h_prev.reshape(-1, hidden)
        grad_bias = grad_wx.sum(dim=(0, 1)).unsqueeze(0)
        return (grad_wx, grad_h0, grad_U, grad_bias, grad_alpha.reshape(1, 1),
                grad_beta.reshape(1, 1), None)
