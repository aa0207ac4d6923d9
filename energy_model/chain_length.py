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

from collections.abc import Sequence

import torch

from energy_model.model import ConceptModel, generation_mask

Events = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""traj [B, K, T+1, N, D], attention [B, K, N], valid [B, K, N]."""


def _check(lengths: Sequence[int]) -> list[int]:
    lengths = sorted(set(int(n) for n in lengths))
    if not lengths or lengths[0] < 1:
        raise ValueError(f"chain lengths must be positive integers, got {lengths}")
    return lengths


def _by_demos(chain, error, demos: Events, queries: Events, w: torch.Tensor, lengths):
    """Queries' samples [B*Kq, ...] at each task's best length on its demos, and those
    lengths [B]. chain(traj, attention, valid, w, n, record) runs n steps on flat events;
    error(states [L, B*Kd, ...], traj, attention, valid) scores them against the demos."""
    lengths = _check(lengths)

    def run(events: Events) -> torch.Tensor:
        """[L, ...]: the chain's state after each candidate length, from one chain."""
        flat = tuple(t.flatten(0, 1) for t in events)
        w_each = w.repeat_interleave(events[0].shape[1], 0)
        record: list[torch.Tensor] = []
        chain(*flat, w_each, lengths[-1], record)
        return torch.stack([record[n - 1] for n in lengths])

    on_queries = run(queries)  # first: its random start is the one a plain chain would draw
    b, kd = demos[0].shape[:2]
    flat_demos = tuple(t.flatten(0, 1) for t in demos)
    demo_error = error(run(demos), *flat_demos).view(len(lengths), b, kd).mean(-1)  # [L, B]
    best = demo_error.argmin(0)  # [B]
    rows = torch.arange(on_queries.shape[1], device=on_queries.device)
    chosen = torch.as_tensor(lengths, device=best.device)[best]
    return on_queries[best.repeat_interleave(queries[0].shape[1]), rows], chosen


def generate(model: ConceptModel, demos: Events, queries: Events, w_x: torch.Tensor, lengths):
    """Generated query trajectories [B*Kq, T+1, N, D] and the length picked per task [B];
    w_x [B, C] the tasks' codes."""

    def chain(traj, att, valid, w, n, record):
        model.generate(traj, att, w, valid, steps=n, record=record)

    def error(states, traj, att, valid):  # squared error of what generation moves
        return ((states - traj).square() * generation_mask(traj, att)).flatten(2).sum(-1)

    return _by_demos(chain, error, demos, queries, w_x, lengths)


def identify(model: ConceptModel, demos: Events, queries: Events, w_a: torch.Tensor, lengths):
    """Attention logits of the query start states [B*Kq, N] and the length picked per task
    [B]; w_a [B, C] the tasks' codes."""
    if model.inference_cfg.identification == "search":
        raise ValueError(
            "identification 'search' runs no chain, so it has no length to pick: give one "
            "--steps value, or --identification langevin"
        )

    def chain(traj, att, valid, w, n, record):
        model.identify(traj[:, 0], w, valid, steps=n, record=record)

    def error(states, traj, att, valid):  # mean |sigmoid(a) - a| over valid entities
        vf = valid.to(att.dtype)
        return ((torch.sigmoid(states) - att).abs() * vf).sum(-1) / vf.sum(-1).clamp(min=1)

    return _by_demos(chain, error, demos, queries, w_a, lengths)
