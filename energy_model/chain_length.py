"""Test-time chain length, chosen per task on its own demos.

Chains are trained with K Langevin steps; at test time they can run longer (the last
learned step size reused), which helps concepts that settle and hurts those that overshoot
(bench/test_steps.py: no one length suits every concept). A task's demos hold the right
answer for their own start states, so each task also runs its chain from its demos' starts
and keeps the candidate length whose samples there come closest to the demos: squared error
of the changeable features generation moves, or mean |sigmoid(a) - a| for identification.
Test-time chains carry no noise by default, so one chain of the longest length passes
through every shorter one: the cost is one extra chain over the demos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from energy_model.model import ConceptModel, generation_mask

Events = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""traj [B, K, T+1, N, D], attention [B, K, N], valid [B, K, N]."""


def _check(lengths: Sequence[int]) -> list[int]:
    lengths = sorted(set(int(n) for n in lengths))
    if not lengths or lengths[0] < 1:
        raise ValueError(f"chain lengths must be positive integers, got {lengths}")
    return lengths


def _states(run: Callable[[int, list], torch.Tensor], lengths: list[int]) -> torch.Tensor:
    """[L, ...]: the chain's state after each candidate length, from one chain."""
    record: list[torch.Tensor] = []
    run(lengths[-1], record)
    return torch.stack([record[n - 1] for n in lengths])


def _flat(events: Events):
    return tuple(t.flatten(0, 1) for t in events)


def _pick(per_length: torch.Tensor, demo_error: torch.Tensor, per_task: int, lengths):
    """Each task's samples [B*Kq, ...] at its best length, and those lengths [B]."""
    best = demo_error.argmin(0)  # [B]
    rows = torch.arange(per_length.shape[1], device=per_length.device)
    chosen = torch.as_tensor(lengths, device=best.device)[best]
    return per_length[best.repeat_interleave(per_task), rows], chosen


def generate(model: ConceptModel, demos: Events, queries: Events, w_x: torch.Tensor, lengths):
    """Generated query trajectories [B*Kq, T+1, N, D] and the length picked per task [B];
    w_x [B, C] the tasks' codes."""
    lengths = _check(lengths)

    def run(events: Events):
        traj, att, valid = _flat(events)
        w = w_x.repeat_interleave(events[0].shape[1], 0)
        return _states(
            lambda n, rec: model.generate(traj, att, w, valid, steps=n, record=rec), lengths
        )

    on_queries = run(queries)
    traj, att, _ = _flat(demos)
    sq = (run(demos) - traj).square() * generation_mask(traj, att)  # [L, B*Kd, T+1, N, D]
    b, kd = demos[0].shape[:2]
    demo_error = sq.flatten(2).sum(-1).view(len(lengths), b, kd).mean(-1)  # [L, B]
    return _pick(on_queries, demo_error, queries[0].shape[1], lengths)


def identify(model: ConceptModel, demos: Events, queries: Events, w_a: torch.Tensor, lengths):
    """Attention logits of the query start states [B*Kq, N] and the length picked per task
    [B]; w_a [B, C] the tasks' codes."""
    lengths = _check(lengths)

    def run(events: Events):
        traj, _, valid = _flat(events)
        w = w_a.repeat_interleave(events[0].shape[1], 0)
        return _states(
            lambda n, rec: model.identify(traj[:, 0], w, valid, steps=n, record=rec), lengths
        )

    on_queries = run(queries)  # first: its random start is the one a plain chain would draw
    _, att, valid = _flat(demos)
    vf = valid.to(att.dtype)
    miss = (torch.sigmoid(run(demos)) - att).abs() * vf  # [L, B*Kd, N]
    b, kd = demos[0].shape[:2]
    demo_error = (miss.sum(-1) / vf.sum(-1).clamp(min=1)).view(len(lengths), b, kd).mean(-1)
    return _pick(on_queries, demo_error, queries[0].shape[1], lengths)
