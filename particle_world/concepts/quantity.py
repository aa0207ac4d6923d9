"""Quantity: attend any 1, 2, 3 or more than 3 entities; any set of that size is right.
Argument only."""

from __future__ import annotations

import numpy as np

from particle_world.concepts.base import Argument, Family, register
from particle_world.scene import Scene


class Quantity(Argument):
    def __init__(self, counts: tuple[int, ...], at_least: bool):
        self.counts = counts
        self.at_least = at_least

    def sample_params(self, rng):
        return {}

    def assign(self, rng, scene: Scene, k, params):
        attention = np.zeros(scene.n, dtype=np.float32)
        attention[rng.choice(scene.ordinary, size=k, replace=False)] = 1.0
        return attention

    def valid_sets(self, x0, a_pred, a_true, params):
        """The right set nearest a_pred: its top-k entries (at least min(counts) of them)."""
        a_pred = np.asarray(a_pred, dtype=np.float64)
        k = self.counts[0]
        if self.at_least:
            k = max(k, int((a_pred > 0.5).sum()))
        ref = np.zeros_like(a_pred)
        ref[np.argsort(-a_pred)[:k]] = 1.0
        return ref


for _k in (1, 2, 3):
    register(Family(f"quantity-{_k}", f"attend any {_k} entities", argument=Quantity((_k,), False)))
register(
    Family(
        "quantity-many", "attend any more than 3 entities", argument=Quantity((4, 5, 6, 7), True)
    )
)
