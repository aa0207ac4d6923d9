"""SiLU with hand-written first and second derivatives, for the energy's MLPs.

Algorithm 1 differentiates through unrolled Langevin chains: every step takes the energy's
gradient with create_graph and the final backward differentiates that gradient again, so
SiLU and its first and second derivatives run on every pair tensor at every chain step.
Autograd evaluates the sigmoid afresh for each (silu, silu_backward, and again inside its
double backward), and an exponential costs three to five times a multiply here. This one
evaluates it once, in the forward, and builds both derivatives from it with multiplies
and adds: the same function to float rounding, and any higher derivative still right.
It saves 4 to 6% of a training step (README, Speed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _SiLUGrad(torch.autograd.Function):
    """grad -> grad * silu'(x), given x and, from the forward, s = sigmoid(x), y = silu(x)
    and d = silu'(x) = s + y (1 - s)."""

    @staticmethod
    def forward(ctx, x, s, y, d, grad):
        ctx.save_for_backward(x, s, y, d, grad)
        return grad * d

    @staticmethod
    def backward(ctx, out_grad):
        x, s, y, d, grad = ctx.saved_tensors
        if torch.is_grad_enabled():  # a third derivative is being taken: rebuild from x
            s = torch.sigmoid(x)
            y = x * s
            d = torch.addcmul(s, y, 1 - s)
        # silu''(x) = s (1 - s) (2 + x - 2 y)
        second = torch.ops.aten.sigmoid_backward(out_grad * grad, s) * (
            torch.add(x, y, alpha=-2) + 2
        )
        return second, None, None, None, out_grad * d


class _SiLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        y = x * s
        ctx.save_for_backward(x, s, y, torch.addcmul(s, y, 1 - s))
        return y

    @staticmethod
    def backward(ctx, grad):
        return _SiLUGrad.apply(*ctx.saved_tensors, grad)


HAND_DERIVATIVES = True
"""False: autograd's own derivatives of F.silu (bench/train_throughput.py compares)."""


class SiLU(nn.Module):
    """nn.SiLU, with the cheaper derivatives above when a gradient is being taken."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if HAND_DERIVATIVES and torch.is_grad_enabled() and x.requires_grad:
            return _SiLU.apply(x)
        return F.silu(x)
