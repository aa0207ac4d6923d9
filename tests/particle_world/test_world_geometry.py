"""The scorers' planar geometry against analytic answers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from particle_world.concepts.placement import MIN_OFFSET, Side
from particle_world.geometry import (
    distance_to_halfplanes,
    distance_to_segment,
    line_fit,
    regular_polygon,
    rotation,
    similarity_fit,
)

coord = st.floats(-3, 3, allow_nan=False)
SLACK = 1e-6  # distance_to_halfplanes treats points within ~1e-7 of the region as inside
QUADRANT = (np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))  # x >= 0, y >= 0
BOX = (np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]), -np.ones(4))  # |x| <= 1, |y| <= 1


@given(coord, coord)
def test_distance_to_quadrant(x, y):
    expected = np.hypot(min(x, 0.0), min(y, 0.0))
    assert distance_to_halfplanes(np.array([x, y]), *QUADRANT) == pytest.approx(expected, abs=SLACK)


@given(coord, coord)
def test_distance_to_box(x, y):
    expected = np.linalg.norm(np.maximum(np.abs([x, y]) - 1.0, 0.0))
    assert distance_to_halfplanes(np.array([x, y]), *BOX) == pytest.approx(expected, abs=SLACK)


def test_distance_to_north_cone():
    """North of the origin: y >= |x| and y >= MIN_OFFSET."""
    region = Side((0, 1)).region()
    assert distance_to_halfplanes(np.array([0.0, 0.5]), *region) == 0.0
    assert distance_to_halfplanes(np.array([0.0, -1.0]), *region) == pytest.approx(1 + MIN_OFFSET)
    # (2, 0) projects onto the edge y = x at (1, 1): distance sqrt(2).
    assert distance_to_halfplanes(np.array([2.0, 0.0]), *region) == pytest.approx(np.sqrt(2))


def test_distance_to_segment():
    a, b = np.array([0.0, 0.0]), np.array([2.0, 0.0])
    assert distance_to_segment(np.array([1.0, 0.5]), a, b) == pytest.approx(0.5)
    assert distance_to_segment(np.array([-3.0, 4.0]), a, b) == pytest.approx(5.0)
    assert distance_to_segment(np.array([5.0, 4.0]), a, b) == pytest.approx(5.0)
    assert distance_to_segment(np.array([1.0, 1.0]), a, a) == pytest.approx(np.sqrt(2))


@settings(max_examples=50, deadline=None)
@given(
    k=st.sampled_from([3, 4]),
    scale=st.floats(0.05, 2.0),
    angle=st.floats(0, 2 * np.pi),
    shift=st.tuples(coord, coord),
    reflect=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_similarity_fit_recovers_regular_polygons(k, scale, angle, shift, reflect, seed):
    template = regular_polygon(k)
    points = scale * template @ rotation(angle).T * ([1, -1] if reflect else 1) + shift
    points = points[np.random.default_rng(seed).permutation(k)]
    rms, fitted = similarity_fit(points, template)
    assert rms < 1e-9
    assert fitted == pytest.approx(scale, rel=1e-9)


def test_similarity_fit_rejects_a_flat_triangle():
    rms, _ = similarity_fit(np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.1]]), regular_polygon(3))
    assert rms > 0.1


def test_line_fit():
    points = np.array([[0.0, 1.0], [1.0, 2.0], [3.0, 4.0]])
    rms, extent = line_fit(points)
    assert rms == pytest.approx(0.0, abs=1e-9)
    assert extent == pytest.approx(3 * np.sqrt(2))
    rms, _ = line_fit(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert rms == pytest.approx(0.5)  # a unit square: every corner 0.5 from the best line
