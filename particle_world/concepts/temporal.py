"""Temporal: over T steps, the attended entity moves to the reference cross only after the
cross starts moving. Action only."""

from __future__ import annotations

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import Action, Family, register
from particle_world.scene import Reject, inside, refs_of

HORIZON = 4


class After(Action):
    """The cross starts moving at step s (1 or 2) and glides to a new place by step T; the
    attended entity stays put through step s and reaches the cross by step T.

    Error: distance to the cross at step T plus any displacement up to the step the cross
    starts moving (moving first is wrong)."""

    counts = (1,)
    n_refs = 1
    horizon = HORIZON

    def apply(self, rng, x0, attention, params):
        r = refs_of(x0)[0]
        (i,) = np.flatnonzero(attention > 0.5)
        start = int(rng.integers(1, 3))
        goal = x0[r, E.POS] + rng.uniform(-0.5, 0.5, 2)
        if not inside(goal, 0.9):
            raise Reject("reference would leave the world")
        x = np.repeat(x0[None], HORIZON + 1, axis=0)  # [T+1, N, D]
        for t in range(start, HORIZON + 1):
            frac = (t - start + 1) / (HORIZON - start + 1)
            x[t, r, E.POS] = x0[r, E.POS] + frac * (goal - x0[r, E.POS])
        for t in range(start + 1, HORIZON + 1):
            frac = (t - start) / (HORIZON - start)
            x[t, i, E.POS] = x0[i, E.POS] + frac * (goal - x0[i, E.POS])
        return x

    def generation_error(self, x, attention, params):
        r = refs_of(x[0])[0]
        (i,) = np.flatnonzero(attention > 0.5)
        ref_moved = np.linalg.norm(x[1:, r, E.POS] - x[0, r, E.POS], axis=1) > 1e-3
        start = int(np.argmax(ref_moved)) + 1 if ref_moved.any() else len(x)
        early = np.linalg.norm(x[1 : start + 1, i, E.POS] - x[0, i, E.POS], axis=1).sum()
        return float(np.linalg.norm(x[-1, i, E.POS] - x[-1, r, E.POS]) + early)


register(Family("after", "move to the cross only after it starts moving", action=After()))
