"""Pictures: sizes, and entities drawn in their colors where they are."""

import imageio.v3 as iio
import numpy as np
import pytest

from particle_world import Event, sample_task
from particle_world import entities as E
from particle_world.render import (
    EVENT_INCHES,
    describe,
    energy_heatmap,
    error_landscape,
    new_figure,
    render_event,
    render_task_grid,
    render_trajectory_gif,
)

SIDE = int(EVENT_INCHES * 100)


def test_event_png_size(tmp_path):
    task = sample_task("between", 0)
    path = render_event(task.demos.event(0), tmp_path / "e.png", describe(task.instance))
    assert iio.imread(path).shape[:2] == (SIDE, SIDE)
    assert [p.name for p in tmp_path.iterdir()] == ["e.png"]


def test_task_grid_size(tmp_path):
    task = sample_task("color", 0, n_demos=3, n_queries=4)
    image = iio.imread(render_task_grid(task, tmp_path / "grid.png"))
    assert image.shape[:2] == (int((2 * 2.2 + 0.4) * 100), int(4 * 2.2 * 100))


def test_gif_has_a_frame_per_state(tmp_path):
    event = sample_task("after", 0).demos.event(0)
    frames = iio.imread(render_trajectory_gif(event, tmp_path / "a.gif"), index=None)
    assert frames.shape == (event.horizon + 1, SIDE, SIDE, 3)


def pixel(fig, ax, xy):
    """RGB in [0, 1] of the rendered figure at world point xy."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0  # [H, W, 3]
    col, row = ax.transData.transform(xy)
    return image[image.shape[0] - int(round(row)), int(round(col))]


def test_entities_drawn_in_their_color_where_they_end_and_start():
    start, end = np.array([[-0.5, 0.4]]), np.array([[0.5, -0.3]])
    x0 = E.make_entities(start, [E.color_index("red")], [E.shape_index("square")])
    x1 = E.make_entities(end, [E.color_index("blue")], [E.shape_index("square")])
    fig = new_figure(EVENT_INCHES, EVENT_INCHES)
    ax = fig.add_axes((0, 0, 1, 1))
    render_event(Event(np.stack([x0, x1]), np.ones(1)), ax)
    np.testing.assert_allclose(pixel(fig, ax, end[0]), E.PALETTE["blue"], atol=0.02)
    faded = 1 - 0.45 * (1 - np.array(E.PALETTE["red"]))  # the start marker, alpha 0.45 on white
    np.testing.assert_allclose(pixel(fig, ax, start[0]), faded, atol=0.02)
    np.testing.assert_allclose(pixel(fig, ax, (0.0, 0.8)), 1.0)  # empty world: white


def test_energy_heatmap_orientation_and_checks():
    fig = new_figure(2, 2)
    ax = fig.add_axes((0, 0, 1, 1))
    seen = {}

    def energy(points):
        seen["shape"] = points.shape
        return points[:, 0] + 10 * points[:, 1]  # grows to the right and much more upward

    grid = energy_heatmap(ax, energy, resolution=20).get_array()  # [R, R], row 0 at y = -1
    assert seen["shape"] == (400, 2) and grid.shape == (20, 20)
    assert grid[0, 0] == pytest.approx(-11) and grid[-1, -1] == pytest.approx(11)
    assert grid[0, -1] == pytest.approx(-9)
    with pytest.raises(ValueError, match=r"to \[M\]"):
        energy_heatmap(ax, lambda p: p)


def test_error_landscape_of_a_point_is_the_distance_to_it():
    task = sample_task("region-point", 3)
    event = task.demos.event(0)
    points = np.random.default_rng(0).uniform(-1, 1, (50, 2)).astype(np.float32)
    target = np.array(task.instance.action_params["point"])
    expected = np.linalg.norm(points - target, axis=1)
    np.testing.assert_allclose(error_landscape(task.instance, event)(points), expected, atol=1e-6)
