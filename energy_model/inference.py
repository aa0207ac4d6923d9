"""Few-shot inference API, batched: codes from demos, then generation and identification.

Arrays may be numpy or torch; results are detached torch tensors on the model's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from energy_model.model import ConceptModel
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


def with_test_time(model: ConceptModel, **overrides) -> ConceptModel:
    """The model with test-time inference settings (restarts, generation_restarts,
    identification, code_likelihood, generation_likelihood) overridden where given (not
    None)."""
    for name, value in overrides.items():
        if value is not None:
            setattr(model.inference_cfg, name, value)
    return model


def _finite(name: str, t: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(t).all():
        raise ValueError(
            f"{name} holds {int((~torch.isfinite(t)).sum())} NaN or inf values: check the "
            "scene or demo file it came from"
        )
    return t


def _checked(model: ConceptModel, x, attention, valid, w) -> tuple:
    """x as a trajectory [B, T+1, N, D] (with attention [B, N]) or, without attention, a
    scene [B, N, D]; valid [B, N]; codes w [1 or B, C], broadcast to B. Tensors on the
    model's device, checked before any chain runs: NaN or inf in the scene, and the shapes
    the energy network checks (EnergyNet.check), which model.generate would otherwise
    meet first as a broadcasting error."""
    x = _finite("x" if attention is not None else "x0", as_tensor(model, x))
    valid, w = as_tensor(model, valid, torch.bool), as_tensor(model, w)
    att = as_tensor(model, attention) if attention is not None else valid.to(x.dtype)
    if w.shape == (1, model.model_cfg.code_dim):
        w = w.expand(x.shape[0], -1)
    states = x if attention is not None or x.dim() != 3 else x[:, None]  # a scene: one state
    model.net.check(states, att, w, valid)
    return x, att, valid, w


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
