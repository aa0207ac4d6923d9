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

With `pairs`, a second MLP psi reads every ordered pair (i, j) of valid entities (both
entities' first state and motion, their offsets at the first and last state, both attention
bits), pooled over all pairs and over the pairs whose i is attended: the relations that the
per-entity stream cannot see (the mover's place relative to an unattended reference, which
entity lies closest to which).
"""

from __future__ import annotations

import torch
from torch import nn

from particle_world import entities as E

_PER_ENTITY = 3 * E.DIM + 1 + 2 * (E.POS.stop - E.POS.start)
_PAIR = 2 * (2 * E.DIM + 1) + 2 * (E.POS.stop - E.POS.start)
_POOLED = 2  # attended count, attended fraction


def _masked_mean(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of h [..., N, H] over N with weights [..., N]."""
    return (h * weight[..., None]).sum(-2) / weight.sum(-1, keepdim=True).clamp(min=1.0)


def _mlp(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())


class DemoEncoder(nn.Module):
    def __init__(self, code_dim: int, hidden: int, n_contexts: int, pairs: bool = False):
        super().__init__()
        self.n_contexts, self.code_dim = n_contexts, code_dim
        self.phi = _mlp(_PER_ENTITY, hidden)
        self.psi = _mlp(_PAIR, hidden) if pairs else None
        n_pooled = (4 if pairs else 2) * hidden + _POOLED
        self.rho = nn.Sequential(nn.Linear(n_pooled, hidden), nn.SiLU())
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
        if self.psi is not None:
            pooled += self._pairs(first, last, att, val)
        per_demo = self.rho(torch.cat(pooled, -1))
        out = self.out(per_demo.mean(1))  # [B, n_contexts * C]
        return out.view(-1, self.n_contexts, self.code_dim).transpose(0, 1)

    def _pairs(self, first, last, att, val) -> list[torch.Tensor]:
        """Pair stream pooled [B, K, H] twice: over all ordered pairs of distinct valid
        entities, and over those whose first entity is attended."""
        n, pos = first.shape[-2], E.POS
        own = torch.cat([first, last - first, att[..., None]], -1)  # [B, K, N, 2D+1]
        feats = torch.cat(
            [own[..., :, None, :].expand(*own.shape[:-2], n, n, own.shape[-1]),
             own[..., None, :, :].expand(*own.shape[:-2], n, n, own.shape[-1]),
             first[..., :, None, pos] - first[..., None, :, pos],
             last[..., :, None, pos] - last[..., None, :, pos]],
            dim=-1,
        )  # fmt: skip
        h = self.psi(feats).flatten(-3, -2)  # [B, K, N*N, H]
        distinct = 1.0 - torch.eye(n, dtype=val.dtype, device=val.device)
        pair_val = val[..., :, None] * val[..., None, :] * distinct  # [B, K, N, N]
        pair_att = pair_val * att[..., :, None]
        return [_masked_mean(h, pair_val.flatten(-2)), _masked_mean(h, pair_att.flatten(-2))]
