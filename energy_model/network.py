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
import torch.nn.functional as F
from torch import nn

from energy_model.activation import SiLU
from energy_model.config import ModelConfig
from particle_world import entities as E


def entity_features(cfg: ModelConfig) -> int:
    """Per-entity input size: the entity, the time feature and, when on, the displacement."""
    return E.DIM + 1 + (E.POS.stop - E.POS.start if cfg.motion_features else 0)


def attended_spread(feats: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """[B, 2]: the square roots of the two eigenvalues of the m-weighted scatter of the
    positions in feats [B, S, N, F] (m [B, N]), averaged over S (ModelConfig.figure_input).
    Closed form for a 2 x 2 matrix, whose gradient stays finite where the two are equal."""
    p = feats[..., E.POS]
    mw = m / m.sum(-1, keepdim=True).clamp(min=1e-6)
    d = p - torch.einsum("bn,bsni->bsi", mw, p)[:, :, None]
    cov = torch.einsum("bn,bsni,bsnj->bsij", mw, d, d)  # [B, S, 2, 2]
    a, b, c = cov[..., 0, 0], cov[..., 0, 1], cov[..., 1, 1]
    half, root = (a + c) / 2, (((a - c) / 2).square() + b.square() + 1e-8).sqrt()
    eig = torch.stack([half + root, (half - root).clamp(min=0)], -1)  # [B, S, 2]
    return (eig + 1e-4).sqrt().mean(1)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), SiLU(), nn.Linear(hidden, hidden), SiLU(),
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
        self.f = _mlp(cfg.hidden + cfg.code_dim + 2 * cfg.figure_input, cfg.hidden, 1)
        self.film = None
        if cfg.code_film:
            self.film = nn.Linear(cfg.code_dim, 2 * cfg.hidden)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.scale = None
        if cfg.code_scale:
            self.scale = nn.Linear(cfg.code_dim, entity_features(cfg))
            nn.init.zeros_(self.scale.weight)
            nn.init.zeros_(self.scale.bias)

    def _feats(self, x, w):
        """g's per-entity input [B, S, N, F], scaled by the code when code_scale is on."""
        feats = _features(x, self.cfg)
        if self.scale is None:
            return feats
        return feats * (1 + self.scale(w))[:, None, None]

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

    def head(self, pooled: torch.Tensor, w: torch.Tensor, figure=None) -> torch.Tensor:
        inputs = [pooled, w] if figure is None else [pooled, w, figure]
        out = self.f(torch.cat(inputs, dim=-1)).squeeze(-1)  # [B]
        return out.square() if self.cfg.head == "square" else out

    def gate_energy(self, x, w, valid):
        """gate [B, N] -> energy [B] at fixed x [B, S, N, D], w, valid: what a chain over the
        gate calls at every step. The gate-independent work is done once, here."""
        self.check(x, valid, w, valid)
        return self._gate_energy(x, w, valid, figure=False)

    def check(self, x, gate, w, valid):
        """x [B, S, N, D], the gate (attention) and valid [B, N], codes w [B, C] of this
        network's code size; else a ValueError naming what disagrees."""
        if x.dim() != 4 or x.shape[-1] != E.DIM:
            raise ValueError(f"x must be [B, S, N, {E.DIM}], got {list(x.shape)}")
        b, _, n, _ = x.shape
        for label, t in (("valid", valid), ("attention", gate)):
            if t.shape != (b, n):
                raise ValueError(f"{label} must be [B={b}, N={n}] like x, got {list(t.shape)}")
        c = self.cfg.code_dim
        if w.shape != (b, c):
            raise ValueError(f"codes must be [B={b}, {c}] for this model, got {list(w.shape)}")


PAIR_GATES = ("attended-to-all", "attended-pairs", "relevance")
DISTANCE_EPS = 1e-4
"""Added under pair_distance's square root, so that its gradient stays finite at i = j."""
FRACTIONAL_GATES = ("expected", "input")


class RelationEnergy(EnergyNet):
    """E = f(sum_{s,i} gate_i * mean_j v_ij g(x_i^s, x_j^s, gate_j, w), w), eq. 4.

    g's first layer is split into per-entity terms (W_i x_i + W_j [x_j, gate_j] + W_w w), so
    all pairs cost one broadcast add. The pair weight v_ij is valid_j ('attended-to-all',
    the default), gate_j ('attended-pairs', the paper's symmetric gate) or
    gate_j + (1 - gate_j) rho_j ('relevance': rho a learned relevance of x_j under w,
    starting near 0, so distractors stay out while references can be learned in). Summing
    over attended i keeps counts (quantity concepts); averaging over j keeps the scale
    across entity counts.

    A fractional gate (identification's sigmoid(a)) is g's input by default; with
    fractional_gate 'expected' g sees gate_j only as 0 or 1 and a fractional gate scores the
    expected pair sum when each entity is attended independently with probability gate_j
    (gate_energy): multilinear in the gates, so a chain over them computes g once, not at
    every step.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.pair_gate not in PAIR_GATES:
            raise ValueError(f"pair_gate must be one of {PAIR_GATES}, got {cfg.pair_gate!r}")
        if cfg.fractional_gate not in FRACTIONAL_GATES:
            raise ValueError(
                f"fractional_gate must be one of {FRACTIONAL_GATES}, got {cfg.fractional_gate!r}"
            )
        self.relevance = None
        if cfg.pair_gate == "relevance":
            self.relevance = nn.Linear(entity_features(cfg) + cfg.code_dim, 1)
            nn.init.constant_(self.relevance.bias, -3.0)  # starts near attended-pairs
        h = cfg.hidden
        self.g_i = nn.Linear(entity_features(cfg), h)
        self.g_j = nn.Linear(entity_features(cfg) + 1, h, bias=False)
        self.g_w = nn.Linear(cfg.code_dim, h, bias=False)
        self.g_rest = nn.Sequential(SiLU(), nn.Linear(h, h), SiLU(), nn.Linear(h, h))
        self.g_d = nn.Linear(1, h, bias=False) if cfg.pair_distance else None

    def forward(self, x, gate, w, valid, figure=True):
        """figure: whether f reads the attended entities' spread (ModelConfig.figure_input);
        generation's energy does, identification's does not (ConceptModel)."""
        self.check(x, gate, w, valid)
        binary = not gate.requires_grad and bool(((gate == 0) | (gate == 1)).all())
        if binary:
            return self._pair_sum_energy(x, gate.to(x.dtype), w, valid, figure)
        return self._gate_energy(x, w, valid, figure)(gate)

    def _gate_energy(self, x, w, valid, figure):
        if self.cfg.fractional_gate == "expected":
            return self._expected_energy(x, w, valid, figure)
        return self._input_gate_energy(x, w, valid, figure)

    def _hidden(self, pre, w, rows):
        """g's hidden layers: its first layer's output pre [R, S, N, H] -> the input of its
        last (linear) layer [R, S, N, H]."""
        return self.g_rest[2](self.modulate(self.g_rest[:2](pre), w, rows))

    def _last_layer(self, summed, weight_sum):
        """g's last layer applied after the weighted sum over pairs it commutes with:
        sum_k c_k (W z_k + b) = W sum_k c_k z_k + b sum_k c_k; a third of g's work saved."""
        last = self.g_rest[3]
        return F.linear(summed, last.weight) + weight_sum[:, None] * last.bias

    def _first_layer(self, feats, gate_j, w, bi, ii):
        """g's first layer for rows (bi, ii) against every j: [P, S, N, H]; with
        pair_distance, plus W_d ||p_i - p_j||, the one term that is not per-entity."""
        b, s, n, _ = feats.shape
        first_j = self.g_j(torch.cat([feats, gate_j.view(b, 1, n, 1).expand(b, s, n, 1)], -1))
        first = (
            self.g_i(feats[bi, :, ii])[:, :, None]  # [P, S, 1, H]
            + first_j[bi]  # [P, S, N, H]
            + self.g_w(w)[bi][:, None, None]  # [P, 1, 1, H]
        )
        if self.g_d is None:
            return first
        pos = feats[..., E.POS]
        diff = pos[bi, :, ii][:, :, None] - pos[bi]  # [P, S, N, 2]
        dist = (diff.square().sum(-1, keepdim=True) + DISTANCE_EPS).sqrt()
        return first + self.g_d(dist)

    def _pair_sum_energy(self, x, gate, w, valid, figure):
        """The energy with the gate as g's input, computing the rows _live_rows names (at
        an exact 0/1 gate only the attended ones)."""
        feats = self._feats(x, w)  # [B, S, N, F]
        vf = valid.to(x.dtype)
        bi, ii = _live_rows(gate * vf, valid)  # [P], [P]
        pre = self._first_layer(feats, gate, w, bi, ii)
        return self._rows_energy(pre, feats, gate, vf, w, bi, ii, figure)

    def _input_gate_energy(self, x, w, valid, figure):
        """gate -> energy with the gate as g's input (fractional_gate 'input'): every valid
        row counts, and g's first layer without the gate, the same at every step of a
        chain, is computed once; a gate g_j adds g_j times the gate's column to it. With
        ROW_MODE 'all', everything at every call instead (the naive baseline)."""
        if ROW_MODE == "all":
            return lambda gate: self._pair_sum_energy(x, gate.to(x.dtype), w, valid, figure)
        feats, vf, bi, ii, pre0 = self._gate_free_first_layer(x, w, valid)

        def energy(gate):
            g = gate.to(x.dtype)
            pre = pre0 + g[bi][:, None, :, None] * self._gate_column
            return self._rows_energy(pre, feats, g, vf, w, bi, ii, figure)

        return energy

    def _gate_free_first_layer(self, x, w, valid):
        """For a chain over a fractional gate: the features, valid mask, every valid row
        (bi, ii) (any gate may count) and g's first layer of those rows at gate 0."""
        feats = self._feats(x, w)
        vf = valid.to(x.dtype)
        bi, ii = valid.nonzero(as_tuple=True)
        return feats, vf, bi, ii, self._first_layer(feats, torch.zeros_like(vf), w, bi, ii)

    @property
    def _gate_column(self):
        """What gate_j = 1 adds to g's first layer."""
        return self.g_j.weight[:, -1]

    def _rows_energy(self, pre, feats, gate, vf, w, bi, ii, figure):
        """The energy from g's first layer pre [P, S, N, H] of rows (bi, ii)."""
        b, s = feats.shape[:2]
        z = self._hidden(pre, w, bi)  # [P, S, N, H]
        wj = self._pair_weight(feats, gate, vf, w) / vf.sum(-1, keepdim=True).clamp(min=1.0)
        per_row = self._last_layer(
            (wj[bi][:, None, None, :] @ z).squeeze(-2).sum(1), wj[bi].sum(-1) * s
        )  # [P, H]
        return self._head_of_rows(per_row, bi, ii, b, w, feats, gate * vf, figure)

    def _head_of_rows(self, per_row, bi, ii, b, w, feats, m, figure):
        """f of the rows' outputs [P, H], each weighted by its entity's gate m [B, N] and
        summed into its batch row bi; with figure_input, f also reads the attended
        entities' spread where figure is True, zeros where it is not."""
        contrib = per_row * m[bi, ii][:, None]
        pooled = contrib.new_zeros(b, contrib.shape[-1]).index_add(0, bi, contrib)  # [B, H]
        spread = None
        if self.cfg.figure_input:
            spread = attended_spread(feats, m) if figure else pooled.new_zeros(b, 2)
        return self.head(pooled, w, spread)

    def _expected_energy(self, x, w, valid, figure):
        """gate [B, N] in [0, 1] -> energy [B] at fixed x, w, with g computed once, here.

        The pooled sum is its expectation over binary masks m_j ~ Bernoulli(gate_j):
        row i counts gate_i times sum_j [(1 - gate_j) v_j(0) g(., m_j=0) + gate_j v_j(1)
        g(., m_j=1)] / n, the pair (i, i) given m_i = 1. At a 0/1 gate it is the energy
        itself."""
        feats, vf, bi, ii, pre0 = self._gate_free_first_layer(x, w, valid)
        b, s, n, _ = feats.shape
        z0 = self._hidden(pre0, w, bi).sum(1)  # [P, N, H]
        z1 = self._hidden(pre0 + self._gate_column, w, bi).sum(1)
        v0 = self._pair_weight(feats, torch.zeros_like(vf), vf, w)  # [B, N]
        v1 = self._pair_weight(feats, torch.ones_like(vf), vf, w)
        self_pair = ii[:, None] == torch.arange(n, device=x.device)  # [P, N]
        scale = vf.sum(-1, keepdim=True).clamp(min=1.0)

        def energy(gate):
            g = gate.to(x.dtype)
            c0 = torch.where(self_pair, 0.0, (1 - g[bi]) * v0[bi])  # [P, N]
            c1 = torch.where(self_pair, v1[bi], g[bi] * v1[bi])
            summed = (c0[:, None] @ z0 + c1[:, None] @ z1).squeeze(1)
            per_row = self._last_layer(summed, (c0 + c1).sum(-1) * s) / scale[bi]  # [P, H]
            return self._head_of_rows(per_row, bi, ii, b, w, feats, g * vf, figure)

        return energy

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
(b, i), the zero weights doing the masking, and a chain over the gate recomputing all of g
at every step (the naive baseline). The energy is the same; sparse was faster on
both machines measured (bench/train_throughput*.json): 2x on this CPU, 4 to 24% on an
H200 GPU, although finding the rows reads the mask back to the host."""


def _live_rows(row_w: torch.Tensor, valid: torch.Tensor):
    """Indices (b, i) of the rows of the pair sum to compute, packed over the batch.

    Padded entities never count, and when the gate is an exact 0/1 mask (demos, generation)
    neither do unattended ones ('sparse' computes only rows with weight 1): exact, and
    several times faster, since most concepts attend one or two entities of up to eight."""
    if ROW_MODE not in ROW_MODES:
        raise ValueError(f"ROW_MODE must be one of {ROW_MODES}, got {ROW_MODE!r}")
    if ROW_MODE == "all":
        b, n = valid.shape
        rows = torch.arange(b * n, device=valid.device)
        return rows // n, rows % n
    return (row_w > 0).nonzero(as_tuple=True)


class EntityEnergy(EnergyNet):
    """The paper's 'no RN' ablation: E = f(sum_{s,i} gate_i g(x_i^s, w), w)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.pair_distance:
            raise ValueError("pair_distance needs pairs: set relational true, or leave it off")
        if cfg.figure_input:
            raise ValueError("figure_input is the relation network's: set relational true")
        self.g = _mlp(entity_features(cfg) + cfg.code_dim, cfg.hidden, cfg.hidden)

    def forward(self, x, gate, w, valid, figure=True):
        self.check(x, gate, w, valid)
        return self._gate_energy(x, w, valid, figure)(gate)

    def _gate_energy(self, x, w, valid, figure):
        """gate -> energy with the per-entity terms g(x_i, w) computed once (linear in the
        gate, so any gate is exact); figure is the relation network's (figure_input)."""
        feats = self._feats(x, w)
        b, s, n, _ = feats.shape
        inp = torch.cat([feats, w[:, None, None].expand(b, s, n, w.shape[-1])], -1)
        per = self.g[3:](self.modulate(self.g[:3](inp), w)).sum(1)  # [B, N, H]
        vf = valid.to(x.dtype)
        return lambda gate: self.head(torch.einsum("bih,bi->bh", per, gate.to(x.dtype) * vf), w)


def build_energy(cfg: ModelConfig) -> EnergyNet:
    return RelationEnergy(cfg) if cfg.relational else EntityEnergy(cfg)
