"""Random scenes: entities scattered over the world square, with reference crosses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particle_world import entities as E

SCENE_BOUND = 0.9
"""Entities of a fresh scene lie in [-SCENE_BOUND, SCENE_BOUND]^2."""
MIN_SEPARATION = 0.15
MAX_ENTITIES = 64
"""The most entities a scene holds: random placement MIN_SEPARATION apart jams near 115
entities, and concepts that move one entity clear of all others slow down well before."""


class Reject(Exception):
    """Raised by a sampler whose random draw cannot satisfy its concept; the caller redraws."""


@dataclass
class Scene:
    """A scene being built: positions [N, 2], palette indices [N], shape indices [N]."""

    positions: np.ndarray
    colors: np.ndarray
    shapes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.positions)

    @property
    def refs(self) -> np.ndarray:
        """Indices of the reference entities (the crosses)."""
        return np.flatnonzero(self.shapes == E.shape_index(E.REFERENCE_SHAPE))

    @property
    def ordinary(self) -> np.ndarray:
        """Indices of the entities that are not references."""
        return np.flatnonzero(self.shapes != E.shape_index(E.REFERENCE_SHAPE))

    def entities(self) -> np.ndarray:
        return E.make_entities(self.positions, self.colors, self.shapes)  # [N, D]


def scatter(rng: np.random.Generator, n: int, bound: float = SCENE_BOUND) -> np.ndarray:
    """n positions [n, 2] in the square, at least MIN_SEPARATION apart (by rejection).

    Whole scenes are drawn first (the usual 3 to 8 entities take one or two draws); crowded
    scenes, which whole draws almost never separate, are placed one entity at a time."""
    for _ in range(200):
        pos = rng.uniform(-bound, bound, size=(n, 2))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(n) * 10
        if d.min() >= MIN_SEPARATION:
            return pos.astype(np.float32)
    return scatter_one_by_one(rng, n, bound)


def scatter_one_by_one(rng: np.random.Generator, n: int, bound: float) -> np.ndarray:
    """n positions [n, 2] apart, each drawn until it clears those placed before it."""
    pos = np.empty((0, 2))
    for _ in range(n):
        for _ in range(200):
            p = rng.uniform(-bound, bound, size=2)
            if np.all(np.linalg.norm(pos - p, axis=-1) >= MIN_SEPARATION):
                pos = np.vstack([pos, p])
                break
        else:
            raise Reject("could not scatter entities apart")
    return pos.astype(np.float32)


def sample_scene(rng: np.random.Generator, n: int, n_refs: int) -> Scene:
    """A scene of n entities: n_refs crosses, the rest circles, squares or triangles."""
    cross = E.shape_index(E.REFERENCE_SHAPE)
    ordinary_shapes = [i for i in range(len(E.SHAPES)) if i != cross]
    shapes = np.concatenate([np.full(n_refs, cross), rng.choice(ordinary_shapes, n - n_refs)])
    colors = rng.integers(0, len(E.COLOR_NAMES), size=n)
    return Scene(scatter(rng, n), colors, shapes.astype(int))


def inside(points: np.ndarray, bound: float = 0.95) -> bool:
    """True when every point [..., 2] lies in [-bound, bound]^2."""
    return bool(np.all(np.abs(points) <= bound))


def refs_of(x0: np.ndarray) -> np.ndarray:
    """Indices of the reference crosses among entities [N, D]."""
    return np.flatnonzero(E.shape_of(x0) == E.shape_index(E.REFERENCE_SHAPE))
