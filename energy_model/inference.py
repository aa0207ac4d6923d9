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


def infer_codes(model: ConceptModel, demos: EventBatch, steps: int | None = None) -> Codes:
    """Codes [1, C] from the demos of one task (an EventBatch of K events)."""
    with torch.enable_grad():
        w_x, w_a = model.infer_codes(
            as_tensor(model, demos.x)[None],
            as_tensor(model, demos.attention)[None],
            as_tensor(model, demos.valid, torch.bool)[None],
            steps=steps,
        )
    return Codes(w_x.detach(), w_a.detach())


def _expand(w: torch.Tensor, b: int) -> torch.Tensor:
    return w.expand(b, -1) if w.shape[0] == 1 else w


def generate(
    model, x, attention, w_x, valid, steps=None, record=None, restarts=None
) -> torch.Tensor:
    """Trajectory [B, T+1, N, D]: x's attended entities moved to minimise the energy.

    x gives the start state x^0 (and, for trajectories, the other entities' motion);
    restarts: chains per query, the lowest-energy one kept (default: the model's config)."""
    x, att = as_tensor(model, x), as_tensor(model, attention)
    with torch.enable_grad():
        out = model.generate(
            x, att, _expand(w_x, x.shape[0]), as_tensor(model, valid, torch.bool), steps=steps,
            record=record, restarts=restarts,
        )  # fmt: skip
    return out.detach()


def identify(model, x0, w_a, valid, steps=None, record=None, restarts=None) -> torch.Tensor:
    """Attention probabilities [B, N] (sigmoid of the sampled logits) for scenes x0 [B, N, D];
    restarts: chains per scene, the lowest-energy one kept (default: the model's config)."""
    x0 = as_tensor(model, x0)
    valid = as_tensor(model, valid, torch.bool)
    with torch.enable_grad():
        logits = model.identify(
            x0, _expand(w_a, x0.shape[0]), valid, steps=steps, record=record, restarts=restarts
        )
    return torch.sigmoid(logits.detach()) * valid
