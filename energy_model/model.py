"""The concept model: an energy network plus its three samplers and the code initialiser.

Contexts (the paper's eq. 6-8):
- generation scores what happens: E(x^1, a, w_x) for one-step events; for trajectories
  (T > 1) the whole trajectory x^0..x^T, so that order in time can matter;
- identification scores the start: E(x^0, a, w_a).
Generation moves only the changeable features (particle_world.entities) of the attended
entities at steps t >= 1; identification moves attention logits of valid entities.
"""

from __future__ import annotations

import torch
from torch import nn

from energy_model.config import IDENTIFICATIONS, InferenceConfig, ModelConfig
from energy_model.encoder import DemoEncoder
from energy_model.langevin import Langevin
from energy_model.mask_search import lowest_energy_masks, neighbor_masks
from energy_model.network import build_energy
from particle_world import entities as E

CODE_CONTEXTS = ("generation", "identification")
"""The contexts that infer a code: w_x for generation, w_a for identification."""


def feature_bounds(device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds [D] of every feature: positions in the world square, colors in
    [0, 1]. Generation samples are clamped to them: outside, an energy learned from demos
    means nothing and a linear head could fall forever."""
    lo = torch.full((E.DIM,), -float("inf"), device=device, dtype=dtype)
    hi = torch.full((E.DIM,), float("inf"), device=device, dtype=dtype)
    lo[E.POS], hi[E.POS] = -E.WORLD_BOUND, E.WORLD_BOUND
    lo[E.COLOR], hi[E.COLOR] = 0.0, 1.0
    return lo, hi


def uniform_features(traj: torch.Tensor, mask: torch.Tensor, generator=None) -> torch.Tensor:
    """traj with the features where mask > 0 drawn uniformly within feature_bounds (features
    bounded on one side only, none of the layout's, would draw 0)."""
    lo, hi = feature_bounds(traj.device, traj.dtype)
    noise = torch.rand(traj.shape, generator=generator, device=traj.device, dtype=traj.dtype)
    return torch.where(mask > 0, lo.nan_to_num() + (hi - lo).nan_to_num() * noise, traj)


def scored_states(traj: torch.Tensor) -> torch.Tensor:
    """The states the generation energy scores: x^1 for T = 1, else the whole trajectory."""
    return traj[:, 1:] if traj.shape[1] == 2 else traj


def generation_mask(traj: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """[B, T+1, N, D] 1 where generation may change the trajectory."""
    changeable = torch.as_tensor(E.changeable_mask(), device=traj.device, dtype=traj.dtype)
    steps = torch.ones(traj.shape[1], device=traj.device, dtype=traj.dtype)
    steps[0] = 0.0
    return steps[None, :, None, None] * attention[:, None, :, None] * changeable


def generation_start(traj: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """The trajectory with the attended entities held at their start state (x~ = x^0);
    the others keep their given trajectory."""
    att = attention[:, None, :, None] > 0.5
    return torch.where(att, traj[:, :1].expand_as(traj), traj)


GENERATION_LIKELIHOOD_NOISE = (0.05, 0.1, 0.2, 0.4)
"""Noise scales of the noised outcomes generation_likelihood contrasts a demo with: from
within a join's radius to most of the world."""


def noised(traj: torch.Tensor, att: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """(traj + sigma * eps, eps): Gaussian noise eps on what generation moves, of scale sigma
    (a float, or a tensor that broadcasts against traj)."""
    eps = torch.randn_like(traj) * generation_mask(traj, att)
    return traj + sigma * eps, eps


def contrast_outcomes(traj: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """[M, B, T+1, N, D]: what a demonstrated trajectory is told apart from in its
    likelihood (InferenceConfig.generation_likelihood): the trajectory held at its start,
    and noised at each of GENERATION_LIKELIHOOD_NOISE, clamped to the world."""
    lo, hi = feature_bounds(traj.device, traj.dtype)
    noisy = [torch.clamp(noised(traj, att, s)[0], lo, hi) for s in GENERATION_LIKELIHOOD_NOISE]
    return torch.stack([generation_start(traj, att), *noisy])


def first_candidate_nll(e: torch.Tensor, dim: int) -> torch.Tensor:
    """-log p of the first candidate along dim, p proportional to exp(-e) over the
    candidates: what the code likelihoods minimise."""
    return e.select(dim, 0) + torch.logsumexp(-e, dim)


class ConceptModel(nn.Module):
    def __init__(self, model_cfg: ModelConfig, inference_cfg: InferenceConfig):
        super().__init__()
        if inference_cfg.identification not in IDENTIFICATIONS:
            raise ValueError(
                f"inference.identification must be one of {IDENTIFICATIONS}, "
                f"got {inference_cfg.identification!r}"
            )
        self.model_cfg = model_cfg
        self.inference_cfg = inference_cfg
        self.net = build_energy(model_cfg)
        self.net_a = build_energy(model_cfg) if model_cfg.context_nets else None
        self.sample_x = Langevin(inference_cfg.x, E.DIM)
        self.sample_a = Langevin(inference_cfg.a, 1)
        # Code inference is per context (w_x for generation, w_a for identification): its own
        # learned start and step sizes. Both contexts score one state with the same network,
        # so a shared start would hand the two opposite targets on the same input.
        self.sample_w = nn.ModuleDict(
            {c: Langevin(inference_cfg.w, model_cfg.code_dim) for c in CODE_CONTEXTS}
        )
        self.code_init = nn.Parameter(
            torch.zeros(len(CODE_CONTEXTS), model_cfg.code_dim),
            requires_grad=inference_cfg.learned_code_init,
        )
        self.encoder = (
            DemoEncoder(model_cfg.code_dim, model_cfg.hidden, len(CODE_CONTEXTS))
            if inference_cfg.code_encoder
            else None
        )

    def energy(self, x, gate, w, valid) -> torch.Tensor:
        """E(x [B, S, N, D], gate [B, N], w [B, C], valid [B, N]) -> [B], the generation
        context's energy (what a robot's cost scores states with)."""
        return self.net(x, gate, w, valid)

    def context_net(self, context: str) -> nn.Module:
        """The energy network a context scores with (one for both unless context_nets)."""
        return self.net_a if context == "identification" and self.net_a is not None else self.net

    def frozen_params(self, context: str) -> dict[str, torch.Tensor]:
        """That network's parameters, detached: L_KL scores samples with them, so that only
        the sampler's path carries its gradient."""
        return {k: v.detach() for k, v in self.context_net(context).named_parameters()}

    def generation_energy(self, traj, gate, w, valid, params=None) -> torch.Tensor:
        return self._call("generation", params, scored_states(traj), gate, w, valid)

    def identification_energy(self, x0, gate, w, valid, params=None) -> torch.Tensor:
        return self._call("identification", params, x0[:, None], gate, w, valid)

    def identification_energy_fn(self, x0, w, valid):
        """gate [B, N] -> E(x0, gate, w) [B] at fixed scenes x0 [B, N, D] and codes w [B, C],
        for chains and sweeps over the gate (g runs once: EnergyNet.gate_energy)."""
        return self.context_net("identification").gate_energy(x0[:, None], w, valid)

    def _call(self, context, params, *args):
        """The context's network on args; only generation's reads the figure input."""
        net, kwargs = self.context_net(context), {"figure": context == "generation"}
        if params is None:
            return net(*args, **kwargs)
        return torch.func.functional_call(net, params, args, kwargs)

    def initial_codes(self, n_tasks: int, context: str, offsets=None) -> torch.Tensor:
        """Where code inference starts: the learned start (or a unit Gaussian), plus the
        encoder's per-task offsets [n_contexts, B, C] when given."""
        c = CODE_CONTEXTS.index(context)
        if self.inference_cfg.learned_code_init:
            start = self.code_init[c].expand(n_tasks, -1)
        else:
            start = torch.randn(n_tasks, self.model_cfg.code_dim, device=self.code_init.device)
        return start if offsets is None else start + offsets[c]

    def infer_codes(self, traj, attention, valid, create_graph=False, steps=None, contexts="both"):
        """Codes (w_x, w_a), each [B, C], from demos traj [B, K, T+1, N, D] (eq. 8).

        A context not asked for gets None."""
        b, k = traj.shape[:2]
        flat = traj.flatten(0, 1)
        att, val = attention.flatten(0, 1), valid.flatten(0, 1)
        offsets = None if self.encoder is None else self.encoder(traj, attention, valid)

        def per_task(context, energy_of):
            def fn(w):
                return energy_of(w.repeat_interleave(k, dim=0)).view(b, k).sum(1)

            start = self.initial_codes(b, context, offsets)
            return self.sample_w[context](fn, start, None, create_graph, steps)

        w_x = w_a = None
        if contexts in ("both", "generation"):
            w_x = per_task(
                "generation",
                self.demo_outcome_nll_fn(flat, att, val)
                if self.inference_cfg.generation_likelihood
                else lambda w: self.generation_energy(flat, att, w, val),
            )
        if contexts in ("both", "identification"):
            x0 = flat[:, 0]
            of_demos = (
                self.demo_nll_fn(x0, att, val)
                if self.inference_cfg.code_likelihood
                else lambda w: self.identification_energy(x0, att, w, val)
            )
            w_a = per_task("identification", of_demos)
        return w_x, w_a

    def demo_nll_fn(self, x0, att, valid):
        """w [R, C] -> [R]: -log p(att | x0, w) with p proportional to exp(-E) over att and
        its neighbor_masks (InferenceConfig.code_likelihood). The candidate masks are
        listed once, here, for every code step; each call scores them in one pass."""
        masks, ok = neighbor_masks(att, valid)
        cands = torch.cat([att[:, None], masks], 1)  # slot 0: the demonstrated mask
        ok = torch.cat([ok.new_ones(len(att), 1), ok], 1)
        rows, slots = ok.nonzero(as_tuple=True)
        x_rows, masks_rows, valid_rows = x0[rows], cands[rows, slots], valid[rows]

        def nll(w):
            e = self.identification_energy(x_rows, masks_rows, w[rows], valid_rows)
            dense = e.new_full(ok.shape, torch.inf).index_put((rows, slots), e)
            return first_candidate_nll(dense, 1)

        return nll

    def demo_outcome_nll_fn(self, traj, att, valid):
        """w [R, C] -> [R]: -log p(traj | x0, w) with p proportional to exp(-E) over traj and
        its contrast_outcomes (InferenceConfig.generation_likelihood), drawn once, here,
        for every code step; each call scores them in one pass."""
        cands = torch.cat([traj[None], contrast_outcomes(traj, att)])  # slot 0: the demo
        m = cands.shape[0]
        x_all, att_all, valid_all = cands.flatten(0, 1), att.repeat(m, 1), valid.repeat(m, 1)

        def nll(w):
            e = self.generation_energy(x_all, att_all, w.repeat(m, 1), valid_all).view(m, -1)
            return first_candidate_nll(e, 0)

        return nll

    def generate(
        self, traj, attention, w_x, valid, create_graph=False, steps=None, record=None,
        graph_steps=None, restarts=None,
    ):  # fmt: skip
        """x~: the trajectory [B, T+1, N, D] after Langevin from the generation start
        (graph_steps: Langevin's). Of `restarts` chains per query (default
        inference_cfg.generation_restarts), the first starts at x^0 (as in training), the
        others with what generation moves drawn uniformly within the feature bounds; the one
        that ends at the lowest energy is kept, eq. 3's argmin over x approached from
        several starts. With record, each recorded step keeps its own lowest-energy chain."""
        r = self.inference_cfg.generation_restarts if restarts is None else restarts
        _check_restarts(r, create_graph)
        b = traj.shape[0]
        lo, hi = feature_bounds(traj.device, traj.dtype)
        start = generation_start(traj, attention).repeat(r, 1, 1, 1)
        mask = generation_mask(traj, attention).repeat(r, 1, 1, 1)
        if r > 1:
            restarted = (torch.arange(r * b, device=traj.device) >= b)[:, None, None, None]
            start = uniform_features(start, mask * restarted)
        att, w, val = attention.repeat(r, 1), w_x.repeat(r, 1), valid.repeat(r, 1)

        def energy(x):
            return self.generation_energy(x, att, w, val)

        chains: list[torch.Tensor] | None = None if record is None or r == 1 else []
        out = self.sample_x(
            energy, start, mask, create_graph, steps, bounds=(lo, hi),
            record=record if r == 1 else chains, graph_steps=graph_steps,
        )  # fmt: skip
        if r == 1:
            return out
        if record is not None:
            record.extend(_lowest(state, energy, r) for state in chains)
        return _lowest(out, energy, r)

    def identify(self, x0, w_a, valid, create_graph=False, steps=None, record=None, restarts=None):
        """Attention logits [B, N], eq. 3's argmin over a. Under inference_cfg.identification
        'search' (the default): the lowest-energy binary mask (search_attention, `restarts`
        descents per scene beyond the exhaustive size) as logits of +-SEARCH_LOGIT; steps
        does not apply, record gets the one result. Under 'langevin': Langevin from a unit
        Gaussian, of `restarts` chains per scene (default inference_cfg.restarts) the one
        that ends at the lowest energy; with record, each recorded step keeps its own
        lowest-energy chain."""
        r = self.inference_cfg.restarts if restarts is None else restarts
        if self.inference_cfg.identification == "search":
            if create_graph:
                raise ValueError("identification 'search' has no gradient to keep")
            logits = (2 * self.search_attention(x0, w_a, valid, r) - 1) * SEARCH_LOGIT
            if record is not None:
                record.append(logits)
            return logits
        _check_restarts(r, create_graph)
        if r == 1:
            energy_of_gate = self.identification_energy_fn(x0, w_a, valid)
            return self.sample_attention(energy_of_gate, valid, create_graph, steps, record)
        energy_of_gate = self.identification_energy_fn(
            x0.repeat(r, 1, 1), w_a.repeat(r, 1), valid.repeat(r, 1)
        )

        def energy(logits):
            return energy_of_gate(torch.sigmoid(logits))

        chains: list[torch.Tensor] | None = None if record is None else []
        logits = self.sample_attention(energy_of_gate, valid.repeat(r, 1), False, steps, chains)
        if record is not None:
            record.extend(_lowest(state, energy, r) for state in chains)
        return _lowest(logits, energy, r)

    def search_attention(self, x0, w_a, valid, starts=8) -> torch.Tensor:
        """[B, N] 0/1: the binary mask of valid entities of lowest identification energy
        (energy_model.mask_search; `starts` descents per scene beyond its exhaustive size)."""
        x0, w_a = x0.detach(), w_a.detach()

        def energy(rows, masks):
            return self.identification_energy(x0[rows], masks, w_a[rows], valid[rows])

        return lowest_energy_masks(energy, valid.bool(), starts)

    def sample_attention(
        self, energy_of_gate, valid, create_graph=False, steps=None, record=None,
        graph_steps=None,
    ):  # fmt: skip
        """identify's chain on a given gate -> energy function (identification_energy_fn),
        so a caller that scores other gates of the same scenes computes g once for all
        (graph_steps: Langevin's)."""
        logits = torch.randn(valid.shape, device=valid.device, dtype=self.code_init.dtype)
        return self.sample_a(
            lambda a: energy_of_gate(torch.sigmoid(a)),
            logits,
            valid.to(logits.dtype),
            create_graph,
            steps,
            record=record,
            graph_steps=graph_steps,
        )


SEARCH_LOGIT = 20.0
"""The logit a searched mask is returned as: sigmoid(+-20) is 1 or 0 to float32 rounding."""


def _check_restarts(r: int, create_graph: bool) -> None:
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"restarts must be a positive integer, got {r!r}")
    if r > 1 and create_graph:
        raise ValueError("restarts > 1 pick a chain by its energy: a test-time choice only")


def _lowest(states: torch.Tensor, energy, r: int) -> torch.Tensor:
    """states [r*B, ...] of r chains per row (chain-major) -> [B, ...]: each row's chain
    whose state has the lowest energy(states) [r*B]."""
    b = states.shape[0] // r
    with torch.no_grad():
        e = energy(states).view(r, b)
    return states.view(r, b, *states.shape[1:])[e.argmin(0), torch.arange(b, device=e.device)]
