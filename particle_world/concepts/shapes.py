"""Shape relations: the attended entities join together, or form a line, an equilateral
triangle or a square, at any position, orientation and scale within bounds. Action only."""

from __future__ import annotations

import numpy as np

from particle_world import entities as E
from particle_world.concepts.base import Action, Family, moved, register
from particle_world.geometry import line_fit, regular_polygon, rotation, similarity_fit
from particle_world.scene import Reject, inside

JOIN_RADIUS = 0.06
MIN_LINE_EXTENT = 0.4
MIN_POLYGON_RADIUS = 0.15


def _place(rng, x0, attention, local: np.ndarray, scale: float) -> np.ndarray:
    """Move the attended entities onto local points [K, 2], rotated, scaled and placed at
    random (the assignment of entities to points is random too)."""
    idx = np.flatnonzero(attention > 0.5)
    if len(idx) != len(local):
        raise Reject("wrong number of attended entities for the shape")
    pts = scale * local @ rotation(rng.uniform(0, 2 * np.pi)).T + rng.uniform(-0.5, 0.5, 2)
    if not inside(pts, 0.95):
        raise Reject("shape off the world")
    return moved(x0, dict(zip(idx, pts[rng.permutation(len(idx))], strict=True)))


def _attended(x, attention) -> np.ndarray:
    return x[-1, attention > 0.5, E.POS].astype(np.float64)


class Join(Action):
    """The attended entities gather within JOIN_RADIUS of their centroid."""

    counts = (2, 3)

    def apply(self, rng, x0, attention, params):
        k = int((attention > 0.5).sum())
        local = rng.uniform(-1, 1, (k, 2)) / (2 * np.sqrt(2))  # within 0.5 of the origin
        local -= local.mean(0)  # so within 1 of the centroid
        return _place(rng, x0, attention, local, JOIN_RADIUS)

    def generation_error(self, x, attention, params):
        """Mean distance of the attended entities beyond JOIN_RADIUS from their centroid."""
        p = _attended(x, attention)
        return float(np.maximum(np.linalg.norm(p - p.mean(0), axis=1) - JOIN_RADIUS, 0).mean())


class Line(Action):
    """The attended entities lie on one straight line spanning at least MIN_LINE_EXTENT."""

    counts = (3, 4)

    def apply(self, rng, x0, attention, params):
        k = int((attention > 0.5).sum())
        local = np.stack([np.linspace(-0.5, 0.5, k), np.zeros(k)], 1)
        return _place(rng, x0, attention, local, rng.uniform(0.6, 1.2))

    def generation_error(self, x, attention, params):
        rms, extent = line_fit(_attended(x, attention))
        return rms + max(0.0, MIN_LINE_EXTENT - extent)


class Polygon(Action):
    """The attended entities are the corners of a regular polygon (triangle or square) with
    circumradius at least MIN_POLYGON_RADIUS."""

    def __init__(self, k: int):
        self.counts = (k,)
        self.template = regular_polygon(k)

    def apply(self, rng, x0, attention, params):
        return _place(rng, x0, attention, self.template, rng.uniform(0.25, 0.45))

    def generation_error(self, x, attention, params):
        p = _attended(x, attention)
        if len(p) != len(self.template):
            return float("inf")
        rms, scale = similarity_fit(p, self.template)
        return rms + max(0.0, MIN_POLYGON_RADIUS - scale)


register(Family("join", "the attended entities gather together", action=Join()))
register(Family("line", "the attended entities form a line", action=Line()))
register(Family("triangle", "the attended entities form a triangle", action=Polygon(3)))
register(Family("square", "the attended entities form a square", action=Polygon(4)))
