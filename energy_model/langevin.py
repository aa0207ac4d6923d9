"""One Langevin (SGLD) sampler, parameterised by the variable it moves (x, a or w).

    v_k = v_{k-1} - step_k * grad_v E(v_{k-1}) + noise * N(0, 1)        (eq. 3, descent form)

The step size is learned per step and per feature of the variable's last axis (Meta-SGD);
test-time runs longer than K reuse the last step size. With create_graph the chain stays
differentiable, so Algorithm 1's meta-gradient reaches the energy through the samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from energy_model.config import SamplerConfig


class SamplerDiverged(RuntimeError):
    """The energy or a sample became NaN or infinite."""


class Langevin(nn.Module):
    def __init__(self, cfg: SamplerConfig, feature_dim: int):
        super().__init__()
        for name, value, ok in (
            ("step_size", cfg.step_size, cfg.step_size > 0),
            ("noise", cfg.noise, cfg.noise >= 0),
            ("clip", cfg.clip, cfg.clip is None or cfg.clip > 0),
        ):
            if not ok:
                raise ValueError(
                    f"a sampler's {name} must be {'>= 0' if name == 'noise' else 'positive'}, "
                    f"got {value!r} (--inference.x/a/w.{name.replace('_', '-')})"
                )
        self.cfg = cfg
        self.log_step = nn.Parameter(
            torch.full((cfg.steps, feature_dim), math.log(cfg.step_size)),
            requires_grad=cfg.learn_step_size,
        )

    def forward(
        self,
        energy_fn: Callable[[torch.Tensor], torch.Tensor],
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        create_graph: bool = False,
        steps: int | None = None,
        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
        record: list | None = None,
        graph_steps: int | None = None,
    ) -> torch.Tensor:
        """Run the chain from v; only coordinates where mask is 1 move; bounds (lower, upper
        broadcast against v) clamp every iterate. Appends each iterate (detached) to record.
        With create_graph, graph_steps k keeps the graph through the last k steps only
        (truncated backpropagation; None: through all)."""
        cfg = self.cfg
        n = cfg.steps if steps is None else steps
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Langevin steps must be an integer >= 0, got {n!r}")
        first_kept = 0 if graph_steps is None else n - graph_steps
        v = v if create_graph else v.detach()
        energy = v.new_zeros(())
        for k in range(n):
            keep = create_graph and k >= first_kept
            if not keep:
                v = v.detach()
            if not v.requires_grad:
                v = v.requires_grad_()
            energy = energy_fn(v)  # [B]
            (grad,) = torch.autograd.grad(energy.sum(), v, create_graph=keep)
            if cfg.normalize:
                grad = _normalized(grad, mask)
            step = self.log_step[min(k, cfg.steps - 1)].exp()
            update = -step * grad
            if cfg.clip is not None:
                update = update.clamp(-cfg.clip, cfg.clip)
            if cfg.noise > 0:
                update = update + cfg.noise * torch.randn_like(update)
            if mask is not None:
                update = update * mask
            v = v + update
            if bounds is not None:
                v = torch.maximum(torch.minimum(v, bounds[1]), bounds[0])
            if not keep:
                v = v.detach()
            if record is not None:
                record.append(v.detach().clone())
        if not torch.isfinite(v).all():  # NaN and inf persist, so one check per chain will do
            raise SamplerDiverged(
                f"Langevin chain of {n} steps: sample became NaN/inf (last energy "
                f"{energy.detach().abs().max().item():.3g}); lower the step size or noise, "
                "or enable step clipping"
            )
        return v


def _normalized(grad: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """grad over its RMS per batch row, taken over the coordinates that move (mask 1; every
    coordinate without a mask)."""
    dims = tuple(range(1, grad.dim()))
    if mask is None:
        mean_sq = grad.square().mean(dim=dims, keepdim=True)
    else:
        grad = grad * mask
        count = mask.expand_as(grad).sum(dim=dims, keepdim=True).clamp(min=1.0)
        mean_sq = grad.square().sum(dim=dims, keepdim=True) / count
    return grad / mean_sq.sqrt().clamp(min=1e-8)
