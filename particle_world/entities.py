"""The one entity layout of the project: what a feature vector of an entity holds.

Every package reads feature slices from here, never by magic index:

    [ x, y | r, g, b | circle, square, triangle, cross ]
      POS     COLOR            SHAPE (one-hot)

Positions live in the world square [-1, 1]^2. Generation may change position and
color (``CHANGEABLE``); the shape of an entity never changes.
"""

from __future__ import annotations

import numpy as np

POS = slice(0, 2)
COLOR = slice(2, 5)
SHAPE = slice(5, 9)
DIM = 9

WORLD_BOUND = 1.0

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
REFERENCE_SHAPE = "cross"
"""Reference entities of relational concepts (north of, between, closest to, ...) are
the crosses of a scene; ordinary entities are never crosses in those scenes."""

PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.85, 0.2, 0.85),
    "cyan": (0.1, 0.8, 0.85),
}
COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)
PALETTE_RGB = np.array([PALETTE[c] for c in COLOR_NAMES], dtype=np.float32)  # [C, 3]


def changeable_mask() -> np.ndarray:
    """[DIM] float mask, 1 on features that generation may change (position, color)."""
    mask = np.zeros(DIM, dtype=np.float32)
    mask[POS] = 1.0
    mask[COLOR] = 1.0
    return mask


def shape_index(name: str) -> int:
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    return SHAPES.index(name)


def color_index(name: str) -> int:
    if name not in PALETTE:
        raise ValueError(f"unknown color {name!r}; choose one of {', '.join(COLOR_NAMES)}")
    return COLOR_NAMES.index(name)


def make_entities(positions: np.ndarray, colors: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """Entities [N, DIM] from positions [N, 2], palette indices [N] and shape indices [N]."""
    positions = np.asarray(positions, dtype=np.float32)
    n = positions.shape[0]
    ents = np.zeros((n, DIM), dtype=np.float32)
    ents[:, POS] = positions
    ents[:, COLOR] = PALETTE_RGB[np.asarray(colors, dtype=int)]
    ents[np.arange(n), SHAPE.start + np.asarray(shapes, dtype=int)] = 1.0
    return ents


def nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Palette index of the nearest palette color for RGB values [..., 3]."""
    d = ((np.asarray(rgb)[..., None, :] - PALETTE_RGB) ** 2).sum(-1)
    return d.argmin(-1)


def shape_of(entities: np.ndarray) -> np.ndarray:
    """Shape index [...] of entities [..., DIM]."""
    return np.asarray(entities)[..., SHAPE].argmax(-1)
