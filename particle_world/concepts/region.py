"""Regional placement: the attended entities move onto a point, a line, a circle or the
corners of a square (one entity per corner). Action only."""

from __future__ import annotations

import itertools
from abc import abstractmethod

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import Action, Family, moved, register
from particle_world.scene import Reject


class _Region(Action):
    """A region given by its projection: each attended entity moves to its nearest point."""

    counts = (1, 2, 3)

    @abstractmethod
    def project(self, p: np.ndarray, params: dict, rng: np.random.Generator | None) -> np.ndarray:
        """The point of the region an entity at p [2] moves to."""

    def apply(self, rng, x0, attention, params):
        idx = np.flatnonzero(attention > 0.5)
        return moved(x0, {i: self.project(x0[i, E.POS], params, rng) for i in idx})

    def generation_error(self, x, attention, params):
        pts = x[-1, attention > 0.5, E.POS].astype(np.float64)
        return float(np.mean([np.linalg.norm(p - self.project(p, params, None)) for p in pts]))


class RegionPoint(_Region):
    counts = (1,)

    def sample_params(self, rng):
        return {"point": rng.uniform(-0.7, 0.7, 2).round(4).tolist()}

    def project(self, p, params, rng):
        return np.array(params["point"])


class RegionLine(_Region):
    """A horizontal (axis=1: y = c) or vertical (axis=0: x = c) line."""

    def __init__(self, axis: int):
        self.axis = axis

    def sample_params(self, rng):
        return {"offset": round(float(rng.uniform(-0.7, 0.7)), 4)}

    def project(self, p, params, rng):
        q = np.array(p, dtype=np.float64)
        q[self.axis] = params["offset"]
        return q


class RegionCircle(_Region):
    def sample_params(self, rng):
        return {
            "center": rng.uniform(-0.4, 0.4, 2).round(4).tolist(),
            "radius": round(float(rng.uniform(0.25, 0.5)), 4),
        }

    def project(self, p, params, rng):
        c = np.array(params["center"])
        d = p - c
        norm = np.linalg.norm(d)
        if norm < 1e-6:
            ang = rng.uniform(0, 2 * np.pi) if rng is not None else 0.0
            d, norm = np.array([np.cos(ang), np.sin(ang)]), 1.0
        return c + params["radius"] * d / norm


class RegionSquare(Action):
    """Four attended entities move to the four corners of an axis-aligned square."""

    counts = (4,)

    def sample_params(self, rng):
        return {
            "center": rng.uniform(-0.4, 0.4, 2).round(4).tolist(),
            "half_size": round(float(rng.uniform(0.2, 0.45)), 4),
        }

    @staticmethod
    def corners(params) -> np.ndarray:
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
        return np.array(params["center"]) + params["half_size"] * signs  # [4, 2]

    def apply(self, rng, x0, attention, params):
        idx = np.flatnonzero(attention > 0.5)
        if len(idx) != 4:
            raise Reject("region-square needs four attended entities")
        corners = self.corners(params)[rng.permutation(4)]
        return moved(x0, dict(zip(idx, corners, strict=True)))

    def generation_error(self, x, attention, params):
        pts = x[-1, attention > 0.5, E.POS].astype(np.float64)
        corners = self.corners(params)
        if len(pts) != 4:
            return float("inf")
        return min(
            float(np.linalg.norm(pts[list(perm)] - corners, axis=1).mean())
            for perm in itertools.permutations(range(4))
        )


register(Family("region-point", "the attended entity moves to a point", action=RegionPoint()))
register(
    Family("region-hline", "the attended entities move onto a line y = c", action=RegionLine(1))
)
register(
    Family("region-vline", "the attended entities move onto a line x = c", action=RegionLine(0))
)
register(Family("region-circle", "the attended entities move onto a circle", action=RegionCircle()))
register(
    Family(
        "region-square",
        "four attended entities move to the corners of a square",
        action=RegionSquare(),
    )
)
