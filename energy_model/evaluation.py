"""Held-out evaluation: per concept family, generation error, attention error, success."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from energy_model import chain_length
from energy_model.config import ROLES
from energy_model.data import collate, units
from energy_model.model import ConceptModel
from particle_world import get_family, sample_task
from particle_world.tasks import DEFAULT_ENTITIES

EVAL_STREAM = 7919
"""Evaluation tasks draw from np.random.default_rng([seed, EVAL_STREAM, i]), a stream that
training (default_rng([seed, step])) never uses."""


def held_out_tasks(family, role, n_tasks, seed, n_entities=DEFAULT_ENTITIES) -> list:
    """The held-out tasks 0..n_tasks-1 of a family and role (task i from its own stream
    [seed, EVAL_STREAM, i], so a task is the same whatever n_tasks)."""
    return [
        sample_task(family, np.random.default_rng([seed, EVAL_STREAM, i]), role=role,
                    n_entities=n_entities)
        for i in range(n_tasks)
    ]  # fmt: skip


def evaluate_unit(
    model: ConceptModel,
    family: str,
    role: str,
    n_tasks: int = 20,
    seed: int = 0,
    steps: int | Sequence[int] | None = None,
    n_entities: tuple[int, int] = DEFAULT_ENTITIES,
    context: str | None = None,
    code_shift: int = 0,
) -> dict:
    """Mean generation error / success (action role) or attention error / success (argument
    role) over n_tasks held-out tasks of a family, 5 demos and 5 queries each. context
    ('generation' or 'identification') overrides the role's: identification on an action
    family's tasks finds their argument (e.g. region-point's color). code_shift k gives each
    task the codes inferred from the demos of task i - k: with k != 0 the errors show how much
    the codes, not what all instances share, carry the concept (bench/code_swap.py).
    steps: the chains' length (None: as trained), or several candidate lengths, one picked
    per task on its own demos (energy_model.chain_length; identification by search has no
    chain and ignores them)."""
    device = model.code_init.device
    tasks = held_out_tasks(family, role, n_tasks, seed, n_entities)
    batch = collate(tasks).to(device)
    kq = batch.query_x.shape[1]
    traj, att, valid = (
        t.flatten(0, 1) for t in (batch.query_x, batch.query_att, batch.query_valid)
    )
    context = context or ("generation" if role == "action" else "identification")
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.enable_grad():
        torch.manual_seed(seed)  # identification's random start: same seed, same numbers
        w_x, w_a = model.infer_codes(
            batch.demo_x, batch.demo_att, batch.demo_valid, steps=None, contexts=context
        )
        w = (w_x if context == "generation" else w_a).roll(code_shift, 0)
        search = model.inference_cfg.identification == "search"
        if isinstance(steps, Sequence) and (context == "generation" or not search):
            demos = (batch.demo_x, batch.demo_att, batch.demo_valid)
            queries = (batch.query_x, batch.query_att, batch.query_valid)
            if context == "generation":
                out, _ = chain_length.generate(model, demos, queries, w, steps)
            else:
                logits, _ = chain_length.identify(model, demos, queries, w, steps)
        elif context == "generation":
            out = model.generate(traj, att, w.repeat_interleave(kq, 0), valid, steps=steps)
        else:  # a search has no chain length to pick
            length = None if isinstance(steps, Sequence) else steps
            logits = model.identify(traj[:, 0], w.repeat_interleave(kq, 0), valid, steps=length)
    errors, successes = [], []
    for q in range(traj.shape[0]):
        inst = tasks[q // kq].instance
        keep = valid[q].cpu().numpy()
        a_true = att[q].cpu().numpy()[keep]
        if context == "generation":
            x_pred = out[q].detach().cpu().numpy()[:, keep]
            errors.append(inst.generation_error(x_pred, a_true))
            successes.append(inst.generation_success(x_pred, a_true))
        else:
            x0 = traj[q, 0].cpu().numpy()[keep]
            prob = torch.sigmoid(logits[q]).detach().cpu().numpy()[keep]
            errors.append(inst.attention_error(x0, prob, a_true))
            successes.append(inst.attention_success(x0, prob, a_true))
    return {"error": float(np.mean(errors)), "success_rate": float(np.mean(successes))}


def evaluate(
    model: ConceptModel,
    concepts: list[str] | None = None,
    n_tasks: int = 20,
    seed: int = 0,
    steps: int | Sequence[int] | None = None,
    n_entities: tuple[int, int] = DEFAULT_ENTITIES,
    progress=None,
    roles: tuple[str, ...] = ROLES,
) -> dict:
    """{"concepts": {NAME: {generation_error, attention_error, success_rate}}}; a metric
    that does not apply to a family's roles is None; success_rate averages its roles."""
    result: dict = {}
    for family, role in units(concepts, roles):
        r = evaluate_unit(model, family, role, n_tasks, seed, steps, n_entities)
        entry = result.setdefault(
            family, {"generation_error": None, "attention_error": None, "success": {}}
        )
        entry["generation_error" if role == "action" else "attention_error"] = r["error"]
        entry["success"][role] = r["success_rate"]
        if progress is not None:
            progress.update(1)
    for family, entry in result.items():
        succ = entry.pop("success")
        entry["generation_success"] = succ.get("action")
        entry["attention_success"] = succ.get("argument")
        entry["success_rate"] = float(np.mean(list(succ.values())))
        entry["roles"] = list(get_family(family).roles)
    return {"concepts": result}
