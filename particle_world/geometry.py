"""Small planar geometry used by the scorers: distances to regions and shape fits."""

from __future__ import annotations

import itertools

import numpy as np


def distance_to_halfplanes(p: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> float:
    """Distance from point p [2] to the convex region {q : normals @ q >= offsets}.

    normals [H, 2] are unit vectors. The region may be unbounded (a cone); the closest
    point is either p itself, a projection onto one boundary line, or a corner.
    """
    p = np.asarray(p, dtype=np.float64)
    normals = np.asarray(normals, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    if np.all(normals @ p >= offsets - 1e-9):
        return 0.0
    candidates = [p - (normals[h] @ p - offsets[h]) * normals[h] for h in range(len(normals))]
    for h, k in itertools.combinations(range(len(normals)), 2):
        m = np.stack([normals[h], normals[k]])
        if abs(np.linalg.det(m)) > 1e-9:
            candidates.append(np.linalg.solve(m, np.array([offsets[h], offsets[k]])))
    best = np.inf
    for c in candidates:
        if np.all(normals @ c >= offsets - 1e-7):
            best = min(best, float(np.linalg.norm(p - c)))
    return best


def distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point p [2] to the segment from a to b."""
    ab = b - a
    s = np.clip((p - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + s * ab)))


def similarity_fit(points: np.ndarray, template: np.ndarray) -> tuple[float, float]:
    """Best similarity transform of a template onto points, over all correspondences.

    Returns (rms residual per point, scale) for points [K, 2] and template [K, 2]
    (the template centred, unit scale). Reflections are allowed, so any ordering
    and orientation of the shape fits.
    """
    p = points - points.mean(0)
    best = (np.inf, 0.0)
    for perm in itertools.permutations(range(len(template))):
        t = template[list(perm)]
        t = t - t.mean(0)
        # Orthogonal Procrustes with scale: p ~ s * t @ R.
        u, sig, vt = np.linalg.svd(t.T @ p)
        scale = sig.sum() / (t * t).sum()
        resid = p - scale * t @ (u @ vt)
        rms = float(np.sqrt((resid**2).sum(1).mean()))
        if rms < best[0]:
            best = (rms, float(scale))
    return best


def line_fit(points: np.ndarray) -> tuple[float, float]:
    """RMS distance of points [K, 2] to their best-fit line, and their extent along it."""
    p = points - points.mean(0)
    _, sig, vt = np.linalg.svd(p, full_matrices=False)
    along = p @ vt[0]
    rms = float(sig[-1] / np.sqrt(len(points))) if len(sig) > 1 else 0.0
    return rms, float(along.max() - along.min())


def regular_polygon(k: int) -> np.ndarray:
    """Vertices [k, 2] of a regular k-gon with circumradius 1, centred at the origin."""
    ang = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(ang), np.sin(ang)], 1)


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])
