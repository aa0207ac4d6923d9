"""Few-shot inference API, batched: codes from demos, then generation and identification.

Arrays may be numpy or torch; results are detached torch tensors on the model's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from energy_model.model import ConceptModel
from particle_world import entities as E
from particle_world.events import EventBatch


@dataclass
class Codes:
    """Concept codes inferred from demos: w_x (the action), w_a (the argument), [B, C]."""

    w_x: torch.Tensor
    w_a: torch.Tensor


def _device(model: ConceptModel) -> torch.device:
    return model.code_init.device


def as_tensor(model: ConceptModel, array, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array) if not torch.is_tensor(array) else array).to(
        _device(model), dtype
    )


def _finite(name: str, t: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(t).all():
        raise ValueError(
            f"{name} holds {int((~torch.isfinite(t)).sum())} NaN or inf values: check the "
            "scene or demo file it came from"
        )
    return t


def _checked(model: ConceptModel, x, attention, valid, w) -> tuple:
    """x as a trajectory [B, T+1, N, D] (attention [B, N]) or, without attention, a scene
    [B, N, D]; valid [B, N]; codes w [1 or B, C], broadcast to B. Tensors on the model's
    device, or a clear error for what callers get wrong: disagreeing shapes, a code of
    another model, NaN or inf in the scene."""
    name, want = ("x", "[B, T+1, N, D]") if attention is not None else ("x0", "[B, N, D]")
    x = _finite(name, as_tensor(model, x))
    if x.dim() != len(want.split(",")) or x.shape[-1] != E.DIM:
        raise ValueError(f"{name} must be {want} with D = {E.DIM}, got {list(x.shape)}")
    b, n = x.shape[0], x.shape[-2]
    given = {"valid": as_tensor(model, valid, torch.bool)}
    if attention is not None:
        given["attention"] = as_tensor(model, attention)
    for label, t in given.items():
        if t.shape != (b, n):
            raise ValueError(f"{label} must be [B={b}, N={n}] like {name}, got {list(t.shape)}")
    w, c = as_tensor(model, w), model.model_cfg.code_dim
    if w.dim() != 2 or w.shape[0] not in (1, b) or w.shape[1] != c:
        raise ValueError(f"codes must be [1 or {b}, {c}] for this model, got {list(w.shape)}")
    return x, given.get("attention"), given["valid"], w.expand(b, -1)


def infer_codes(model: ConceptModel, demos: EventBatch, steps: int | None = None) -> Codes:
    """Codes [1, C] from the demos of one task (an EventBatch of K events)."""
    with torch.enable_grad():
        w_x, w_a = model.infer_codes(
            _finite("demos", as_tensor(model, demos.x))[None],
            as_tensor(model, demos.attention)[None],
            as_tensor(model, demos.valid, torch.bool)[None],
            steps=steps,
        )
    return Codes(w_x.detach(), w_a.detach())


def generate(
    model, x, attention, w_x, valid, steps=None, record=None, restarts=None
) -> torch.Tensor:
    """Trajectory [B, T+1, N, D]: x's attended entities moved to minimise the energy.

    x gives the start state x^0 (and, for trajectories, the other entities' motion);
    restarts: chains per query, the lowest-energy one kept (default: the model's config)."""
    x, att, valid, w_x = _checked(model, x, attention, valid, w_x)
    with torch.enable_grad():
        out = model.generate(x, att, w_x, valid, steps=steps, record=record, restarts=restarts)
    return out.detach()


def identify(model, x0, w_a, valid, steps=None, record=None, restarts=None) -> torch.Tensor:
    """Attention probabilities [B, N] (sigmoid of the sampled logits) for scenes x0 [B, N, D];
    restarts: chains per scene, the lowest-energy one kept (default: the model's config)."""
    x0, _, valid, w_a = _checked(model, x0, None, valid, w_a)
    with torch.enable_grad():
        logits = model.identify(x0, w_a, valid, steps=steps, record=record, restarts=restarts)
    return torch.sigmoid(logits.detach()) * valid
