"""Placement relations: the attended entity moves north, south, east or west of the
reference cross, or onto the segment between two reference crosses. Action only."""

from __future__ import annotations

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import Action, Family, moved, register
from particle_world.geometry import distance_to_halfplanes, distance_to_segment
from particle_world.scene import Reject, inside, refs_of

MIN_OFFSET = 0.1
"""How far past the reference, along the direction, counts as being on that side."""
BETWEEN_SPAN = (0.15, 0.85)
"""The part of the segment between the references that counts as between them."""


class Side(Action):
    """The attended entity ends within 45 degrees of a direction from the reference,
    at least MIN_OFFSET along it."""

    counts = (1,)
    n_refs = 1

    def __init__(self, direction: tuple[float, float]):
        self.u = np.array(direction, dtype=np.float64)
        self.perp = np.array([-self.u[1], self.u[0]])

    def region(self):
        """Half-planes {q : n @ q >= o} of the admissible offsets from the reference."""
        s = np.sqrt(0.5)
        normals = np.stack([self.u, s * (self.u + self.perp), s * (self.u - self.perp)])
        return normals, np.array([MIN_OFFSET, 0.0, 0.0])

    def apply(self, rng, x0, attention, params):
        ref = x0[refs_of(x0)[0], E.POS]
        (i,) = np.flatnonzero(attention > 0.5)
        ang = rng.uniform(-np.pi / 6, np.pi / 6)
        dist = rng.uniform(0.2, 0.45)
        target = ref + dist * (np.cos(ang) * self.u + np.sin(ang) * self.perp)
        if not inside(target, 0.95):
            raise Reject("target off the world")
        return moved(x0, {i: target})

    def generation_error(self, x, attention, params):
        ref = x[-1, refs_of(x[0])[0], E.POS]
        (i,) = np.flatnonzero(attention > 0.5)
        normals, offsets = self.region()
        return distance_to_halfplanes(x[-1, i, E.POS] - ref, normals, offsets)


class Between(Action):
    """The attended entity ends on the middle of the segment joining the two references."""

    counts = (1,)
    n_refs = 2

    def apply(self, rng, x0, attention, params):
        r0, r1 = x0[refs_of(x0), E.POS]
        if np.linalg.norm(r1 - r0) < 0.4:
            raise Reject("references too close together")
        (i,) = np.flatnonzero(attention > 0.5)
        return moved(x0, {i: r0 + rng.uniform(0.3, 0.7) * (r1 - r0)})

    def generation_error(self, x, attention, params):
        r0, r1 = x[-1, refs_of(x[0]), E.POS].astype(np.float64)
        (i,) = np.flatnonzero(attention > 0.5)
        a, b = r0 + BETWEEN_SPAN[0] * (r1 - r0), r0 + BETWEEN_SPAN[1] * (r1 - r0)
        return distance_to_segment(x[-1, i, E.POS].astype(np.float64), a, b)


for _name, _dir in (("north", (0, 1)), ("south", (0, -1)), ("east", (1, 0)), ("west", (-1, 0))):
    register(Family(_name, f"the attended entity moves {_name} of the cross", action=Side(_dir)))
register(Family("between", "the attended entity moves between the two crosses", action=Between()))
