"""Pictures of events and tasks: scenes (PNG), trajectories (GIF) and energy heat maps.

An entity is drawn as its shape in its color at its last state; where it started is a
faded, larger marker of its first color (so a color change shows as a halo), joined to
the end by an arrow along its path. Attended entities wear a thick black ring. Uses
matplotlib's object API on the Agg canvas: no pyplot state, works headless.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import FancyArrowPatch, Rectangle

from particle_world import entities as E
from particle_world.events import Event
from particle_world.io import atomic_path
from particle_world.tasks import Instance, Task

MARKERS = {"circle": "o", "square": "s", "triangle": "^", "cross": "X"}
"""Matplotlib marker of each shape in entities.SHAPES."""
DPI = 100
EVENT_INCHES = 4.0
"""A single event picture is EVENT_INCHES * DPI pixels square."""
TITLE_CHARS = 62
"""Titles of single-event pictures wrap at this many characters."""
CELL_INCHES = 2.2
"""Side of one event in a task grid."""
VIEW = 1.1 * E.WORLD_BOUND
"""Axes limits: a margin so that markers on the world's edge show whole."""
MARKER_AREA = 130.0  # points^2 at EVENT_INCHES; scaled with the axes' size
GHOST_AREA = 2.6  # start markers, relative to MARKER_AREA
RING_AREA = 3.6  # attention rings, relative to MARKER_AREA
CROSS_AREA = 1.4  # crosses look thin: draw them larger
MOVE_EPS = 1e-4


def describe(instance: Instance) -> str:
    """One line naming an instance: family, role, argument and action with parameters."""
    argument = _call(instance.argument, instance.argument_params)
    action = _call(instance.action, instance.action_params)
    return f"{instance.family} ({instance.role}): attend {argument} -> {action}"


def _call(name: str, params: dict) -> str:
    if not params:
        return name
    return f"{name}({', '.join(f'{k}={_fmt(v)}' for k, v in params.items())})"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return f"({', '.join(_fmt(v) for v in value)})"
    return str(value)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot), DPI pixels per inch."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write a figure atomically, its format from the suffix of path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    return path


def frame_world(ax: Axes) -> None:
    """Limits, equal aspect, no ticks, and the world square [-1, 1]^2 drawn once."""
    ax.set_xlim(-VIEW, VIEW)
    ax.set_ylim(-VIEW, VIEW)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("0.88")
    if not any(p.get_gid() == "world" for p in ax.patches):
        b = E.WORLD_BOUND
        for fill, z in ((True, -10), (False, 1)):  # white ground under everything, frame above
            rect = Rectangle((-b, -b), 2 * b, 2 * b, fill=fill, fc="white", ec="0.3", zorder=z)
            rect.set_gid("world")
            ax.add_patch(rect)


def draw_event(ax: Axes, event: Event, t: int | None = None) -> None:
    """Draw an event on ax as it stands at step t (default: the last), with its paths."""
    t = event.horizon if t is None else t
    x = event.x[: t + 1]  # [t+1, N, D]
    pos = x[..., E.POS]  # [t+1, N, 2]
    rgb = np.clip(x[..., E.COLOR], 0.0, 1.0)  # [t+1, N, 3]
    shapes = E.shape_of(event.x[0])  # [N]
    attended = event.attention > 0.5  # [N]
    moved = np.linalg.norm(pos - pos[0], axis=-1).max(0) > MOVE_EPS  # [N]
    changed = moved | (np.abs(rgb - rgb[0]).max(axis=(0, 2)) > MOVE_EPS)  # [N]
    area = MARKER_AREA * (_axes_inches(ax) / EVENT_INCHES) ** 2

    frame_world(ax)
    for s, name in enumerate(E.SHAPES):
        size = area * (CROSS_AREA if name == E.REFERENCE_SHAPE else 1.0)
        ghost = changed & (shapes == s)
        ax.scatter(
            *pos[0, ghost].T,
            s=GHOST_AREA * size,
            c=rgb[0, ghost],
            marker=MARKERS[name],
            alpha=0.45,
            linewidths=0,
            zorder=2,
        )
        now = shapes == s
        ax.scatter(
            *pos[-1, now].T,
            s=size,
            c=rgb[-1, now],
            marker=MARKERS[name],
            edgecolors="black",
            linewidths=0.8,
            zorder=4,
        )
    for i in np.flatnonzero(moved):
        _draw_path(ax, pos[:, i], np.sqrt(area), attended[i])
    ax.scatter(
        *pos[-1, attended].T,
        s=RING_AREA * area,
        marker="o",
        facecolors="none",
        edgecolors="black",
        linewidths=2.0,
        zorder=5,
    )


def _draw_path(ax: Axes, points: np.ndarray, marker_pt: float, ringed: bool) -> None:
    """A line along points [t+1, 2] (repeated points dropped) with an arrow head on its
    last leg, stopping short of the end marker (and its ring); dots at inner steps."""
    keep = np.r_[True, np.linalg.norm(np.diff(points, axis=0), axis=1) > MOVE_EPS]
    pts = points[keep]  # [K, 2]
    if len(pts) < 2:  # moved, but by small steps each: draw start to end
        pts = points[[0, -1]]
    style = {"color": "0.15", "linewidth": 1.5, "zorder": 3}
    if len(pts) > 2:
        ax.plot(*pts[:-1].T, **style)
        ax.scatter(*pts[1:-1].T, s=0.1 * marker_pt**2, c="0.15", zorder=3)
    arrow = FancyArrowPatch(
        pts[-2],
        pts[-1],
        arrowstyle="-|>",
        mutation_scale=1.3 * marker_pt,
        shrinkA=0.5 * marker_pt if len(pts) == 2 else 0.0,
        shrinkB=(0.5 * np.sqrt(RING_AREA) + 0.1 if ringed else 0.6) * marker_pt,
        **style,
    )
    ax.add_patch(arrow)


def _axes_inches(ax: Axes) -> float:
    """Side of the axes box in inches (the smaller one), for sizing markers."""
    bbox = ax.get_position()
    w, h = ax.figure.get_size_inches()
    return min(bbox.width * w, bbox.height * h)


def event_figure(title: str | None = None) -> tuple[Figure, Axes]:
    """A square figure for one event, its axes leaving room for the title (wrapped)."""
    fig = new_figure(EVENT_INCHES, EVENT_INCHES)
    lines = textwrap.wrap(title or "", TITLE_CHARS, break_on_hyphens=False)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.035 * len(lines)))
    if lines:
        ax.set_title("\n".join(lines), fontsize=8)
    return fig, ax


def render_event(
    event: Event,
    path_or_ax: str | os.PathLike | Axes,
    title: str | None = None,
    energy_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    **heatmap_kwargs,
) -> Path | Axes:
    """Draw an event on an Axes (returned), or into a PNG of EVENT_INCHES * DPI pixels;
    with energy_fn, over its heat map (see energy_heatmap, which takes heatmap_kwargs)."""
    if isinstance(path_or_ax, Axes):
        if energy_fn is not None:
            energy_heatmap(path_or_ax, energy_fn, **heatmap_kwargs)
        draw_event(path_or_ax, event)
        if title:
            path_or_ax.set_title(title, fontsize=8)
        return path_or_ax
    fig, ax = event_figure(title)
    render_event(event, ax, None, energy_fn, **heatmap_kwargs)
    return save_figure(fig, path_or_ax)


def render_trajectory_gif(
    event: Event, path: str | os.PathLike, title: str | None = None, fps: float = 2.0
) -> Path:
    """A GIF with one frame per state x^0 .. x^T, the last one held three times as long."""
    fig, ax = event_figure(title)
    frames = []
    for t in range(event.horizon + 1):
        for artist in [*ax.patches, *ax.collections, *ax.lines, *ax.texts]:
            artist.remove()
        draw_event(ax, event, t)
        ax.text(
            0.06,
            0.94,
            f"t = {t}/{event.horizon}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"fc": "white", "ec": "0.6"},
            zorder=6,
        )
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())  # [H, W, 3]
    durations = [1000 / fps] * event.horizon + [3000 / fps]  # ms per frame
    path = Path(path)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=durations, loop=0)
    return path


def render_task_grid(task: Task, path: str | os.PathLike) -> Path:
    """Demos on the first row, queries on the second, titled with the instance."""
    rows = {"demo": task.demos.events(), "query": task.queries.events()}
    cols = max(len(r) for r in rows.values())
    fig = new_figure(cols * CELL_INCHES, len(rows) * CELL_INCHES + 0.4)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.04, hspace=0.15)
    for r, (label, events) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            if c < len(events):
                render_event(events[c], ax, f"{label} {c}")
            else:
                ax.set_axis_off()
    fig.suptitle(describe(task.instance), fontsize=9)
    return save_figure(fig, path)


def energy_heatmap(
    ax: Axes,
    energy_fn: Callable[[np.ndarray], np.ndarray],
    resolution: int = 100,
    bound: float = E.WORLD_BOUND,
    **imshow_kwargs,
) -> AxesImage:
    """Draw energy_fn over the plane as an image under the scene (zorder 0).

    energy_fn maps points [M, 2] (float32, world coordinates) to energies [M]; it is
    called once on a resolution x resolution grid over [-bound, bound]^2. Keyword
    arguments go to imshow (cmap, norm, alpha, ...). Returns the image, for a colorbar.
    """
    if resolution < 2:
        raise ValueError(f"a heat map needs a resolution of at least 2, got {resolution}")
    g = np.linspace(-bound, bound, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)  # [R, R], rows along y
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)  # [R*R, 2]
    energy = np.asarray(energy_fn(points), dtype=np.float64)
    if energy.shape != (len(points),):
        raise ValueError(
            f"energy_fn must map points [M, 2] to [M], got {list(energy.shape)} for M={len(points)}"
        )
    half = bound / (resolution - 1)  # the grid points are the pixel centres
    kwargs = {"cmap": "viridis", "alpha": 0.8, "interpolation": "bilinear"} | imshow_kwargs
    image = ax.imshow(
        energy.reshape(resolution, resolution),  # [R, R]
        origin="lower",
        extent=(-bound - half, bound + half, -bound - half, bound + half),
        zorder=0,
        **kwargs,
    )
    frame_world(ax)
    return image


def error_landscape(instance: Instance, event: Event) -> Callable[[np.ndarray], np.ndarray]:
    """The instance's generation error as a function of where the first attended entity
    ends (everything else as in the event): an energy_fn for energy_heatmap that shows
    the scorer's idea of the concept, e.g. the target region of a placement."""
    attended = np.flatnonzero(event.attention > 0.5)
    if len(attended) == 0:
        raise ValueError("an error landscape needs an attended entity to move")
    i = int(attended[0])

    def error(points: np.ndarray) -> np.ndarray:
        x = event.x.copy()  # [T+1, N, D]
        out = np.empty(len(points))
        for m, p in enumerate(points):
            x[-1, i, E.POS] = p
            out[m] = instance.generation_error(x, event.attention)
        return out

    return error
