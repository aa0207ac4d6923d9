"""Energy networks E(x, gate, w): the relation network of eq. 4 and the per-entity 'no RN'.

Inputs, shared by both:
    x      [B, S, N, D]  the states scored (S time steps), D from particle_world.entities
    gate   [B, N]        attention gate in [0, 1]: sigmoid(a), or an exact 0/1 mask
    w      [B, C]        concept code
    valid  [B, N]        False on padded entities
Output: energy [B].

Each state gets a time feature s / (S - 1) (0 when S = 1) so that trajectories can be told
apart from sets of states, and (ModelConfig.motion_features) each entity its displacement
since the first scored state, x_i^s - x_i^0 over position, so that a per-state pair term can
see who has moved yet ("after": stay put until the cross moves). One-state inputs (one-step
generation, identification, the robot's cost) have zero displacement and score as before.
"""

from __future__ import annotations

import torch
from torch import nn

from energy_model.config import ModelConfig
from particle_world import entities as E


def entity_features(cfg: ModelConfig) -> int:
    """Per-entity input size: the entity, the time feature and, when on, the displacement."""
    return E.DIM + 1 + (E.POS.stop - E.POS.start if cfg.motion_features else 0)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


def _features(x: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """[B, S, N, F]: x, the time feature and (motion_features) the displacement since s = 0."""
    b, s, n, _ = x.shape
    t = torch.linspace(0.0, 1.0, s, device=x.device, dtype=x.dtype) if s > 1 else x.new_zeros(1)
    parts = [x, t.view(1, s, 1, 1).expand(b, s, n, 1)]
    if cfg.motion_features:
        parts.append(x[..., E.POS] - x[:, :1, :, E.POS])
    return torch.cat(parts, dim=-1)


class EnergyNet(nn.Module):
    """Shared parts: the output head f(sum, w) and the linear/square switch."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.head not in ("linear", "square"):
            raise ValueError(f"head must be 'linear' or 'square', got {cfg.head!r}")
        self.cfg = cfg
        self.f = _mlp(cfg.hidden + cfg.code_dim, cfg.hidden, 1)
        self.film = None
        if cfg.code_film:
            self.film = nn.Linear(cfg.code_dim, 2 * cfg.hidden)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def modulate(self, h: torch.Tensor, w: torch.Tensor, rows=None) -> torch.Tensor:
        """FiLM of g's hidden layer h [R, ..., H] by the code w [B, C] (rows: the batch row
        of each of h's R rows, when R is not B); h itself when code_film is off."""
        if self.film is None:
            return h
        gb = self.film(w)
        if rows is not None:
            gb = gb[rows]
        gamma, beta = gb.view(gb.shape[0], *([1] * (h.dim() - 2)), -1).chunk(2, dim=-1)
        return h * (1 + gamma) + beta

    def head(self, pooled: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = self.f(torch.cat([pooled, w], dim=-1)).squeeze(-1)  # [B]
        return out.square() if self.cfg.head == "square" else out

    @staticmethod
    def check(x, gate, w, valid):
        if x.dim() != 4 or x.shape[-1] != E.DIM:
            raise ValueError(f"x must be [B, S, N, {E.DIM}], got {list(x.shape)}")
        b, _, n, _ = x.shape
        if gate.shape != (b, n) or valid.shape != (b, n) or w.dim() != 2 or w.shape[0] != b:
            raise ValueError(
                f"shapes disagree: x {list(x.shape)}, gate {list(gate.shape)}, "
                f"w {list(w.shape)}, valid {list(valid.shape)}; want [B,S,N,D], [B,N], [B,C], [B,N]"
            )


PAIR_GATES = ("attended-to-all", "attended-pairs", "relevance")


class RelationEnergy(EnergyNet):
    """E = f(sum_{s,i} gate_i * mean_j v_ij g(x_i^s, x_j^s, gate_j, w), w), eq. 4.

    g's first layer is split into per-entity terms (W_i x_i + W_j [x_j, gate_j] + W_w w), so
    all pairs cost one broadcast add. The pair weight v_ij is valid_j ('attended-to-all',
    the default), gate_j ('attended-pairs', the paper's symmetric gate) or
    gate_j + (1 - gate_j) rho_j ('relevance': rho a learned relevance of x_j under w,
    starting near 0, so distractors stay out while references can be learned in). Summing
    over attended i keeps counts (quantity concepts); averaging over j keeps the scale
    across entity counts.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.pair_gate not in PAIR_GATES:
            raise ValueError(f"pair_gate must be one of {PAIR_GATES}, got {cfg.pair_gate!r}")
        self.relevance = None
        if cfg.pair_gate == "relevance":
            self.relevance = nn.Linear(entity_features(cfg) + cfg.code_dim, 1)
            nn.init.constant_(self.relevance.bias, -3.0)  # starts near attended-pairs
        h = cfg.hidden
        self.g_i = nn.Linear(entity_features(cfg), h)
        self.g_j = nn.Linear(entity_features(cfg) + 1, h, bias=False)
        self.g_w = nn.Linear(cfg.code_dim, h, bias=False)
        self.g_rest = nn.Sequential(nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h))

    def forward(self, x, gate, w, valid):
        self.check(x, gate, w, valid)
        feats = _features(x, self.cfg)  # [B, S, N, F]
        b, s, n, _ = feats.shape
        g = gate.to(x.dtype)
        vf = valid.to(x.dtype)
        first_j = self.g_j(torch.cat([feats, g.view(b, 1, n, 1).expand(b, s, n, 1)], -1))
        row_w = g * vf  # [B, N]
        bi, ii = _live_rows(row_w, valid)  # [P], [P]: the rows (b, i) that can count
        pre = (
            self.g_i(feats[bi, :, ii])[:, :, None]  # [P, S, 1, H]
            + first_j[bi]  # [P, S, N, H]
            + self.g_w(w)[bi][:, None, None]  # [P, 1, 1, H]
        )  # [P, S, N, H]
        pair = self.g_rest[2:](self.modulate(self.g_rest[:2](pre), w, bi))  # [P, S, N, H]
        wj = self._pair_weight(feats, g, vf, w)  # [B, N]
        wj = wj / vf.sum(-1, keepdim=True).clamp(min=1.0)
        per_row = (wj[bi][:, None, None, :] @ pair).squeeze(-2).sum(1)  # [P, H]
        contrib = per_row * row_w[bi, ii][:, None]  # [P, H]
        pooled = contrib.new_zeros(b, contrib.shape[-1]).index_add(0, bi, contrib)  # [B, H]
        return self.head(pooled, w)

    def _pair_weight(self, feats, g, vf, w):
        """v_j: how much entity j counts as the second of a pair."""
        if self.cfg.pair_gate == "attended-to-all":
            return vf
        if self.cfg.pair_gate == "attended-pairs":
            return g * vf
        b, _, n, _ = feats.shape
        rho = torch.sigmoid(
            self.relevance(torch.cat([feats[:, 0], w[:, None].expand(b, n, -1)], -1))
        )
        return (g + (1 - g) * rho.squeeze(-1)) * vf


ROW_MODES = ("sparse", "all")
ROW_MODE = "sparse"
"""Which rows of the pair sum are computed: 'sparse' only those that can count, 'all' every
(b, i), the zero weights doing the masking. The energy is the same; sparse was faster on
both machines measured (bench/train_throughput*.json): 2x on this CPU, 4 to 24% on an
H200 GPU, although finding the rows reads the mask back to the host."""


def _live_rows(row_w: torch.Tensor, valid: torch.Tensor):
    """Indices (b, i) of the rows of the pair sum to compute, packed over the batch.

    Sparse: padded entities never count, and when the gate is an exact, constant 0/1 mask
    (demos, generation) only attended rows do: computing just those is exact and several
    times faster, since most concepts attend one or two entities of up to eight."""
    if ROW_MODE not in ROW_MODES:
        raise ValueError(f"ROW_MODE must be one of {ROW_MODES}, got {ROW_MODE!r}")
    if ROW_MODE == "all":
        b, n = valid.shape
        rows = torch.arange(b * n, device=valid.device)
        return rows // n, rows % n
    exact = not row_w.requires_grad and bool(((row_w == 0) | (row_w == 1)).all())
    return (row_w > 0 if exact else valid).nonzero(as_tuple=True)


class EntityEnergy(EnergyNet):
    """The paper's 'no RN' ablation: E = f(sum_{s,i} gate_i g(x_i^s, w), w)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.g = _mlp(entity_features(cfg) + cfg.code_dim, cfg.hidden, cfg.hidden)

    def forward(self, x, gate, w, valid):
        self.check(x, gate, w, valid)
        feats = _features(x, self.cfg)
        b, s, n, _ = feats.shape
        inp = torch.cat([feats, w[:, None, None].expand(b, s, n, w.shape[-1])], -1)
        per = self.g[3:](self.modulate(self.g[:3](inp), w))
        pooled = torch.einsum("bsih,bi->bh", per, gate.to(x.dtype) * valid.to(x.dtype))
        return self.head(pooled, w)


def build_energy(cfg: ModelConfig) -> EnergyNet:
    return RelationEnergy(cfg) if cfg.relational else EntityEnergy(cfg)
