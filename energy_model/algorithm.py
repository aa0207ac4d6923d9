"""Algorithm 1: one meta-training loss on a batch of few-shot tasks.

codes  w_x, w_a  <- Langevin on the demos' energies (eq. 8), graph kept
x~ <- Langevin from x^0 on the queries (generation),  a~ <- from N(0, 1) (identification)
L_ML = softplus(E(x^1, a, w_x) - E(x_bar, a, w_x)) + softplus(E(x^0, a, w_a) - E(x^0, a_bar, w_a))
L_KL = E_bar(x~, a, w_bar_x) + E_bar(x^0, a~, w_bar_a)     (parameters frozen: only the
                                                        sampler path carries gradient)
(with identification_negative 'search', a~ is the lowest-energy binary mask: no chain,
so no identification L_KL and no identification target)
+ energy_reg * (E_pos^2 + E_neg^2 [+ E_other^2])       (keeps a linear head bounded)
+ target * (|x~ - x^1|^2 + BCE(a~, a))                  (optional: the chains' outputs
                                                        supervised, codes and all)
+ code_contrast * softplus(E(x, a, w) - E(x, a, w'))    (optional: w' the partner task's
                                                        code, a sibling concept's when the
                                                        batch is drawn in sibling pairs)
+ perturbed * softplus(E(truth) - E(near miss))         (optional: near misses without a
                                                        chain: noisy outcome and x^0; one
                                                        attention entry flipped)
+ transplant * softplus(E(truth) - E(transplant))       (optional: the outcome of another
                                                        query of the task moved into this
                                                        query's scene; generation only)
+ score_match * |sigma grad E(x^1 + sigma eps) / kappa - eps|^2
                                                       (optional: denoising score matching
                                                        of generation's energy)
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from energy_model.config import LossConfig
from energy_model.data import TaskBatch
from energy_model.model import (
    ConceptModel,
    feature_bounds,
    generation_mask,
    generation_start,
    noised,
)
from particle_world.concepts import REGISTRY

CONTEXTS = ("both", "generation", "identification")
NEGATIVES = ("chain", "search")


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1)


def scheduled(cfg: LossConfig, step: int, steps: int) -> LossConfig:
    """The loss config at a training step: the target weight after its decay (target_decay),
    score matching off before its start (score_match_start)."""
    if step < cfg.score_match_start * steps:
        cfg = replace(cfg, score_match=0.0)
    if cfg.target_decay <= 0:
        return cfg
    progress = min(step / (cfg.target_decay * steps), 1.0)
    return replace(cfg, target=cfg.target * 0.5 * (1 + math.cos(math.pi * progress)))


def _partner_codes(w: torch.Tensor, batch: TaskBatch, kq: int) -> torch.Tensor:
    """Per query, the code inferred for its task's partner (TaskBatch.partner)."""
    return w[batch.partner.to(w.device)].repeat_interleave(kq, dim=0)


def _code_contrast(out: dict, var: str, e_pos, e_other, cfg: LossConfig) -> torch.Tensor:
    """The weighted code-contrast term, logged as cc_<var>, plus the energy^2 regulariser on
    the partner-code energies: unregularised, the term drives them up without bound (mean
    2.5 to 5.8, max 53, against 0.1 to 0.5 under the own code) and training blew up after
    500 steps (gradient norm 1 to 1,000)."""
    out[f"cc_{var}"], out[f"e_other_{var}"] = F.softplus(e_pos - e_other).mean(), e_other.mean()
    return cfg.code_contrast * out[f"cc_{var}"] + cfg.energy_reg * e_other.square().mean()


def noised_outcomes(traj, att, scale: float):
    """Each demonstrated trajectory [B, T+1, N, D] with Gaussian noise on what generation
    moves, one scale per event, log-uniform in [scale / 10, scale] (scale a float or [B]):
    (noisy, the unit noise eps where it was added, the scales sigma [B])."""
    sigma = scale * 10 ** -torch.rand(traj.shape[0], device=traj.device, dtype=traj.dtype)
    noisy, eps = noised(traj, att, sigma[:, None, None, None])
    return noisy, eps, sigma


def perturbed_outcomes(traj, att, scale: float) -> torch.Tensor:
    """[2B, T+1, N, D]: the noised outcomes clamped to the world, then each trajectory held
    at its start (x~'s starting point)."""
    lo, hi = feature_bounds(traj.device, traj.dtype)
    noisy = torch.clamp(noised_outcomes(traj, att, scale)[0], lo, hi)
    return torch.cat([noisy, generation_start(traj, att)])


def family_score_scales(cfg: LossConfig) -> dict[str, float]:
    """cfg.score_scales (FAMILY=SCALE strings) as a dict, refusing unknown families and
    scales that are not numbers >= 0 (0: the family is left out of score matching)."""
    scales = {}
    for item in cfg.score_scales:
        family, sep, text = item.partition("=")
        try:
            scale = float(text) if sep else math.nan
        except ValueError:
            scale = math.nan
        if not scale >= 0:
            raise ValueError(
                f"--loss.score-scales takes FAMILY=SCALE, SCALE >= 0 (0: no score matching "
                f"for that family); got {item!r}"
            )
        if family not in REGISTRY:
            raise ValueError(
                f"--loss.score-scales: unknown family {family!r}; one of {', '.join(REGISTRY)}"
            )
        scales[family] = scale
    return scales


def task_score_scales(batch: TaskBatch, cfg: LossConfig) -> torch.Tensor:
    """[B]: the largest score-matching noise scale of each task, by the family of its action."""
    scales = family_score_scales(cfg)
    return torch.tensor(
        [scales.get(inst.action, cfg.score_scale) for inst in batch.instances],
        dtype=batch.query_x.dtype,
        device=batch.query_x.device,
    )


def score_matching(model: ConceptModel, traj, att, wq, valid, cfg: LossConfig, scale=None):
    """Denoising score matching (Vincent 2011) on generation's energy, per coordinate that
    generation moves: |sigma grad E(x^1 + sigma eps) / kappa - eps|^2, kappa =
    score_temperature. Its minimum makes exp(-E / kappa) the demonstrated outcomes' density
    smoothed by the noise, so the energy slopes down to the demonstrated outcome from every
    side and every scale in [score_scale / 10, score_scale], not only where the chain ends.
    scale: the largest noise scale per event [B] (default cfg.score_scale for all).
    Differentiated into the network and, through w, the code inference."""
    scale = cfg.score_scale if scale is None else scale
    noisy, eps, sigma = noised_outcomes(traj, att, scale)
    noisy = noisy.detach().requires_grad_()
    energy = model.generation_energy(noisy, att, wq, valid)
    (grad,) = torch.autograd.grad(energy.sum(), noisy, create_graph=True)
    mask = generation_mask(traj, att)
    resid = (sigma[:, None, None, None] * grad / cfg.score_temperature - eps) * mask
    per_event = resid.square().flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)
    shaped = (sigma > 0).to(per_event.dtype)  # a scale of 0 leaves its family out
    return (per_event * shaped).sum() / shaped.sum().clamp(min=1)


def flipped_attention(att, valid) -> torch.Tensor:
    """[B, N]: the true attention with one valid entity, drawn uniformly, flipped."""
    pick = torch.multinomial(valid.to(att.dtype), 1).squeeze(1)
    flip = F.one_hot(pick, att.shape[1]).to(att.dtype)
    return att + flip * (1 - 2 * att)


def transplanted_outcomes(query_x, query_att) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries [B, Kq, T+1, N, D] -> ([B*Kq, T+1, N, D], ok [B*Kq]): each query's trajectory
    with what generation moves of its k-th attended entity taken from the k-th attended
    entity of the task's next query; ok where the two attend as many entities (Kq > 1)."""
    kq, n = query_x.shape[1], query_x.shape[3]
    src_x, src_att = _flat(query_x.roll(1, 1)), _flat(query_att.roll(1, 1))
    traj, att = _flat(query_x), _flat(query_att)
    order = torch.arange(n, device=att.device)
    src_sorted = torch.argsort((src_att <= 0.5) * n + order, dim=1)  # attended first, in order
    rank = (torch.cumsum(att > 0.5, dim=1) - 1).clamp(min=0)
    src_index = src_sorted.gather(1, rank)  # [B*Kq, N]
    moved = src_x.gather(2, src_index[:, None, :, None].expand_as(src_x))
    x = torch.where(generation_mask(traj, att) > 0, moved, traj)
    ok = ((att > 0.5).sum(1) == (src_att > 0.5).sum(1)) & (kq > 1)
    return x, ok


def _perturbed(out: dict, var: str, e_pos, e_near, cfg: LossConfig) -> torch.Tensor:
    """The weighted near-miss term, logged as near_<var>, with the energy^2 regulariser on
    the near misses' energies (as on every negative)."""
    reps = e_near.shape[0] // e_pos.shape[0]
    out[f"near_{var}"] = F.softplus(e_pos.repeat(reps) - e_near).mean()
    return cfg.perturbed * out[f"near_{var}"] + cfg.energy_reg * e_near.square().mean()


def meta_loss(model: ConceptModel, batch: TaskBatch, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The loss terms of Algorithm 1 for a batch: 'loss' is their weighted sum, 'loss_x' and
    'loss_a' its generation and identification parts (zero for a context not trained)."""
    if cfg.contexts not in CONTEXTS:
        raise ValueError(f"contexts must be one of {CONTEXTS}, got {cfg.contexts!r}")
    if cfg.identification_negative not in NEGATIVES:
        raise ValueError(
            f"identification_negative must be one of {NEGATIVES}, "
            f"got {cfg.identification_negative!r}"
        )
    if cfg.unroll < 0:
        raise ValueError(f"unroll must be >= 0 (0: every step), got {cfg.unroll}")
    if not 0 <= cfg.target_decay <= 1:
        raise ValueError(f"target_decay must be in [0, 1], got {cfg.target_decay}")
    if not 0 <= cfg.score_match_start < 1:
        raise ValueError(f"score_match_start must be in [0, 1), got {cfg.score_match_start}")
    w_x, w_a = model.infer_codes(
        batch.demo_x, batch.demo_att, batch.demo_valid, create_graph=True, contexts=cfg.contexts
    )
    kq = batch.query_x.shape[1]
    traj, att, valid = _flat(batch.query_x), _flat(batch.query_att), _flat(batch.query_valid)
    search = cfg.identification_negative == "search"
    kl_x, kl_a = cfg.kl and cfg.kl_generation, cfg.kl and cfg.kl_identification and not search
    out: dict[str, torch.Tensor] = {}
    loss_x = loss_a = traj.new_zeros(())

    if w_x is not None:
        wq = w_x.repeat_interleave(kq, dim=0)
        through = kl_x or cfg.target > 0
        x_tilde = model.generate(  # one chain from x^0: restarts are a test-time choice
            traj, att, wq, valid, create_graph=through, graph_steps=cfg.unroll or None,
            restarts=1,
        )  # fmt: skip
        e_pos = model.generation_energy(traj, att, wq, valid)
        e_neg = model.generation_energy(x_tilde.detach(), att, wq, valid)
        out["ml_x"] = F.softplus(e_pos - e_neg).mean()
        out["e_pos_x"], out["e_neg_x"] = e_pos.mean(), e_neg.mean()
        loss_x = loss_x + out["ml_x"] + cfg.energy_reg * (e_pos.square() + e_neg.square()).mean()
        if kl_x:
            frozen = model.frozen_params("generation")
            out["kl_x"] = model.generation_energy(x_tilde, att, wq.detach(), valid, frozen).mean()
            loss_x = loss_x + out["kl_x"]
        if cfg.code_contrast > 0:
            e_other = model.generation_energy(traj, att, _partner_codes(w_x, batch, kq), valid)
            loss_x = loss_x + _code_contrast(out, "x", e_pos, e_other, cfg)
        if cfg.perturbed > 0:
            near = perturbed_outcomes(traj, att, cfg.perturb_scale)
            e_near = model.generation_energy(
                near, att.repeat(2, 1), wq.repeat(2, 1), valid.repeat(2, 1)
            )
            loss_x = loss_x + _perturbed(out, "x", e_pos, e_near, cfg)
        if cfg.transplant > 0:
            x_t, ok = transplanted_outcomes(batch.query_x, batch.query_att)
            e_t = model.generation_energy(x_t, att, wq, valid)
            weight = ok.to(e_t.dtype) / ok.sum().clamp(min=1)  # a mean over the usable queries
            out["tp_x"] = (F.softplus(e_pos - e_t) * weight).sum()
            reg = (e_t.square() * weight).sum()
            loss_x = loss_x + cfg.transplant * out["tp_x"] + cfg.energy_reg * reg
        if cfg.score_match > 0:
            scale = task_score_scales(batch, cfg).repeat_interleave(kq)
            out["sm_x"] = score_matching(model, traj, att, wq, valid, cfg, scale)
            loss_x = loss_x + cfg.score_match * out["sm_x"]
        if cfg.target > 0:
            sq = (x_tilde - traj).square() * generation_mask(traj, att)
            out["target_x"] = sq.flatten(1).sum(1).mean()
            loss_x = loss_x + cfg.target * out["target_x"]

    if w_a is not None:
        if cfg.energy_reg_identification is not None:
            cfg = replace(cfg, energy_reg=cfg.energy_reg_identification)
        wq = w_a.repeat_interleave(kq, dim=0)
        x0 = traj[:, 0]
        e_pos = model.identification_energy(x0, att, wq, valid)
        if search:  # the negative: the lowest-energy mask, no chain to differentiate
            masks = model.search_attention(x0, wq, valid)
            e_neg = model.identification_energy(x0, masks, wq, valid)
        else:
            energy_of_gate = model.identification_energy_fn(x0, wq, valid)
            a_tilde = model.sample_attention(
                energy_of_gate, valid, kl_a or cfg.target > 0, graph_steps=cfg.unroll or None
            )
            gate_tilde = torch.sigmoid(a_tilde)
            e_neg = energy_of_gate(gate_tilde.detach())
        out["ml_a"] = F.softplus(e_pos - e_neg).mean()
        out["e_pos_a"], out["e_neg_a"] = e_pos.mean(), e_neg.mean()
        loss_a = loss_a + out["ml_a"] + cfg.energy_reg * (e_pos.square() + e_neg.square()).mean()
        if kl_a:
            frozen = model.frozen_params("identification")
            out["kl_a"] = model.identification_energy(
                x0, gate_tilde, wq.detach(), valid, frozen
            ).mean()
            loss_a = loss_a + out["kl_a"]
        if cfg.code_contrast > 0:
            e_other = model.identification_energy(x0, att, _partner_codes(w_a, batch, kq), valid)
            loss_a = loss_a + _code_contrast(out, "a", e_pos, e_other, cfg)
        if cfg.perturbed > 0:
            e_near = model.identification_energy(x0, flipped_attention(att, valid), wq, valid)
            loss_a = loss_a + _perturbed(out, "a", e_pos, e_near, cfg)
        if cfg.target > 0 and not search:
            bce = F.binary_cross_entropy_with_logits(a_tilde, att, reduction="none")
            out["target_a"] = (bce * valid).sum(1).mean()
            loss_a = loss_a + cfg.target * out["target_a"]

    out["loss_x"], out["loss_a"] = loss_x, loss_a
    out["loss"] = loss_x + loss_a
    return out
