"""Proximity: attend the entity closest (farthest) to the reference cross (argument), or
move the attended entity to become the closest (farthest) one (action)."""

from __future__ import annotations

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import Action, Argument, Family, moved, register
from particle_world.scene import Reject, Scene, inside, refs_of

MARGIN = 0.05
"""The attended entity must beat every other by this much distance."""


def _distances(positions: np.ndarray, ordinary: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.linalg.norm(positions[ordinary] - ref, axis=1)


class Extreme(Argument):
    """Attend the ordinary entity closest (sign=+1) or farthest (sign=-1) to the cross."""

    counts = (1,)
    n_refs = 1

    def __init__(self, sign: int):
        self.sign = sign

    def sample_params(self, rng):
        return {}

    def pick(self, positions: np.ndarray, ordinary: np.ndarray, ref: np.ndarray) -> int:
        d = self.sign * _distances(positions, ordinary, ref)
        order = np.argsort(d)
        if len(d) > 1 and d[order[1]] - d[order[0]] < MARGIN:
            raise Reject("no clear closest/farthest entity")
        return int(ordinary[order[0]])

    def assign(self, rng, scene: Scene, k, params):
        i = self.pick(scene.positions, scene.ordinary, scene.positions[scene.refs[0]])
        attention = np.zeros(scene.n, dtype=np.float32)
        attention[i] = 1.0
        return attention

    def attended(self, x0, params):
        """The ordinary entity nearest to (farthest from) the first cross."""
        x0 = np.asarray(x0)
        refs = refs_of(x0)
        ordinary = np.setdiff1d(np.arange(len(x0)), refs)
        d = self.sign * _distances(x0[:, E.POS], ordinary, x0[refs[0], E.POS])
        attention = np.zeros(len(x0), dtype=np.float32)
        attention[ordinary[d.argmin()]] = 1.0
        return attention

    def valid_sets(self, x0, a_pred, a_true, params):
        return a_true


class BecomeExtreme(Action):
    """Move the attended entity so that it is the closest (sign=+1) or farthest (sign=-1)
    ordinary entity to the cross, by MARGIN."""

    counts = (1,)
    n_refs = 1
    n_others = 1

    def __init__(self, sign: int):
        self.sign = sign

    def _others(self, x, attention):
        ref = x[-1, refs_of(x[0])[0], E.POS]
        cross = E.shape_index(E.REFERENCE_SHAPE)
        others = (E.shape_of(x[0]) != cross) & (attention < 0.5)
        return ref, _distances(x[-1, :, E.POS], np.flatnonzero(others), ref)

    def apply(self, rng, x0, attention, params):
        (i,) = np.flatnonzero(attention > 0.5)
        ref, d = self._others(x0[None], attention)
        if len(d) == 0:
            raise Reject("no other entity to compare with")
        for _ in range(50):
            ang = rng.uniform(0, 2 * np.pi)
            if self.sign > 0:
                r = rng.uniform(0.1, max(0.1, d.min() - 2 * MARGIN))
            else:
                r = rng.uniform(d.max() + 2 * MARGIN, d.max() + 0.6)
            target = ref + r * np.array([np.cos(ang), np.sin(ang)])
            if inside(target, 0.95) and self.sign * (r - d).max(initial=-np.inf) <= -MARGIN:
                return moved(x0, {i: target})
        raise Reject("no room to become the closest/farthest")

    def generation_error(self, x, attention, params):
        (i,) = np.flatnonzero(attention > 0.5)
        ref, d = self._others(x, attention)
        mine = np.linalg.norm(x[-1, i, E.POS] - ref)
        if self.sign > 0:
            return float(max(0.0, mine - (d.min() - MARGIN)))
        return float(max(0.0, (d.max() + MARGIN) - mine))


register(
    Family(
        "closest",
        "attend the entity closest to the cross / move it to become the closest",
        argument=Extreme(+1),
        action=BecomeExtreme(+1),
    )
)
register(
    Family(
        "farthest",
        "attend the entity farthest from the cross / move it to become the farthest",
        argument=Extreme(-1),
        action=BecomeExtreme(-1),
    )
)
