"""DemoEncoder: an amortised first guess of the concept codes, read off the demos.

Eq. 8 infers a code by a few gradient steps on the demos' energy. From one shared start,
five steps must carry the code to every concept of every family; with all families trained
together that stalls (mean success flat from step 300 to 900). The encoder gives each task
its own start, which the Langevin steps on the demos' energy then refine:

    w_start(context) = code_init[context] + head(mean_k pool_j phi(entity features))

Entity features of each demo (first and last state, motion, attention bit, position
relative to the attended entities' centroid) go through a per-entity MLP phi, pooled over
attended and over all valid entities (means, plus the attended count and fraction), then
averaged over demos. The output layer starts at zero, so an untrained encoder is exactly
the learned shared start.
"""

from __future__ import annotations

import torch
from torch import nn

from particle_world import entities as E

_PER_ENTITY = 3 * E.DIM + 1 + 2 * (E.POS.stop - E.POS.start)
_POOLED = 2  # attended count, attended fraction


def _masked_mean(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of h [..., N, H] over N with weights [..., N]."""
    return (h * weight[..., None]).sum(-2) / weight.sum(-1, keepdim=True).clamp(min=1.0)


class DemoEncoder(nn.Module):
    def __init__(self, code_dim: int, hidden: int, n_contexts: int):
        super().__init__()
        self.n_contexts, self.code_dim = n_contexts, code_dim
        self.phi = nn.Sequential(
            nn.Linear(_PER_ENTITY, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )  # fmt: skip
        self.rho = nn.Sequential(nn.Linear(2 * hidden + _POOLED, hidden), nn.SiLU())
        self.out = nn.Linear(hidden, n_contexts * code_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, traj: torch.Tensor, attention: torch.Tensor, valid: torch.Tensor):
        """Code offsets [n_contexts, B, C] from demos traj [B, K, T+1, N, D], attention and
        valid [B, K, N]."""
        att = attention.to(traj.dtype)
        val = valid.to(traj.dtype)
        first, last = traj[:, :, 0], traj[:, :, -1]  # [B, K, N, D]
        pos = E.POS
        centre0 = _masked_mean(first[..., pos], att)[..., None, :]  # [B, K, 1, 2]
        centre1 = _masked_mean(last[..., pos], att)[..., None, :]
        feats = torch.cat(
            [first, last, last - first, att[..., None],
             first[..., pos] - centre0, last[..., pos] - centre1],
            dim=-1,
        )  # fmt: skip
        h = self.phi(feats)  # [B, K, N, H]
        n_att = (att * val).sum(-1)
        counts = torch.stack([n_att, n_att / val.sum(-1).clamp(min=1.0)], -1)  # [B, K, 2]
        pooled = [_masked_mean(h, att * val), _masked_mean(h, val), counts]
        per_demo = self.rho(torch.cat(pooled, -1))
        out = self.out(per_demo.mean(1))  # [B, n_contexts * C]
        return out.view(-1, self.n_contexts, self.code_dim).transpose(0, 1)
