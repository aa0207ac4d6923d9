"""Videos of a reenactment: offscreen MuJoCo frames with an inset of the 2D demo.

Frames are written as they are rendered to a temporary file beside the output, which
replaces the output only when the video is complete. GIF writers merge identical
consecutive frames (lengthening the first), MP4 keeps every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from particle_world.entities import COLOR, POS, SHAPES, shape_of  # noqa: E402
from particle_world.io import temp_beside  # noqa: E402
from robot_transfer.scene import CAMERA, Scene  # noqa: E402

MARKERS = {"circle": "o", "square": "s", "triangle": "^", "cross": "P"}
VIDEO_SUFFIXES = (".mp4", ".gif")


def demo_inset(x: np.ndarray, attention: np.ndarray, title: str, size: int = 200) -> np.ndarray:
    """RGB image [size, size, 3] of a demo event: entities at x^0 (faded) and where the
    attended ones end (x^T, solid, with an arrow). x [T+1, N, D] without padding."""
    fig = plt.figure(figsize=(2.0, 2.0), dpi=size / 2.0)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    for i, ent in enumerate(x[0]):
        marker = MARKERS[SHAPES[int(shape_of(ent))]]
        color = np.clip(ent[COLOR], 0, 1)
        moved = attention[i] > 0.5
        ax.scatter(*ent[POS], s=40, marker=marker, color=color, alpha=0.35 if moved else 1.0)
        if moved:
            end = x[-1, i, POS]
            ax.annotate("", end, ent[POS], arrowprops=dict(arrowstyle="->", color="0.3"))
            ax.scatter(*end, s=40, marker=marker, color=color, edgecolors="k")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xticks=[], yticks=[], aspect="equal")
    fig.suptitle(title, fontsize=8, y=0.98)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


class VideoRecorder:
    """Renders the scene's camera at `fps` (called with MjData after every step) into a
    video at `path`, with `inset` pasted in the top-left corner."""

    def __init__(
        self,
        scene: Scene,
        path: str | os.PathLike,
        fps: int = 30,
        width: int = 640,
        height: int = 480,
        inset: np.ndarray | None = None,
    ):
        self.path = Path(path)
        if self.path.suffix not in VIDEO_SUFFIXES:
            raise ValueError(f"video {path} must end in {' or '.join(VIDEO_SUFFIXES)}")
        self._renderer = mujoco.Renderer(scene.model, height, width)  # first: it checks the size
        self._tmp = temp_beside(self.path)
        if self.path.suffix == ".gif":
            self._writer = imageio.get_writer(self._tmp, duration=1000 / fps, loop=0)
        else:
            self._writer = imageio.get_writer(self._tmp, fps=fps, macro_block_size=1)
        self._inset = inset
        self._period = 1.0 / fps
        self._half_step = 0.5 * scene.model.opt.timestep
        self.frames = 0

    def __call__(self, data: mujoco.MjData) -> None:
        """Render a frame if the video's next frame time has come."""
        if data.time + self._half_step < self.frames * self._period:
            return
        self._renderer.update_scene(data, camera=CAMERA)
        frame = self._renderer.render()
        if self._inset is not None:
            h, w = self._inset.shape[:2]
            frame[4 : 4 + h, 4 : 4 + w] = self._inset
        self._writer.append_data(frame)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the file (moved into place when `keep`, else removed); free the renderer."""
        self._writer.close()
        self._renderer.close()
        if keep:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None)
