"""State to entities: the end-effector and the table objects as particle-world entities.

The correspondence is declared, not learned: the end-effector is the mover (the attended
entity) and wears the mover's color and shape; table objects keep the features of the entity
they were placed for and never move (they are static scene markers). A table square of half
side `half` around `center` maps affinely onto the world square [-1, 1]^2, so the whole map is
affine in the end-effector position and autograd composes through it for free.
"""

from __future__ import annotations

import numpy as np
import torch

from particle_world.entities import POS


class EntityMap:
    """Batched map from end-effector positions [..., 3] (metres) to entities [..., N, D]."""

    def __init__(self, entities: np.ndarray, mover: int, workspace: tuple[float, float, float]):
        self.mover = mover
        self.center = np.asarray(workspace[:2], dtype=np.float64)  # [2]
        self.half = float(workspace[2])
        self._fixed = torch.as_tensor(np.asarray(entities, dtype=np.float32)).clone()  # [N, D]
        self._center = torch.as_tensor(self.center, dtype=torch.float32)

    @property
    def n(self) -> int:
        return self._fixed.shape[0]

    def __call__(self, ee: torch.Tensor) -> torch.Tensor:
        """Entities [..., N, D] from end-effector positions [..., 3] (float32 out)."""
        pos = (ee[..., :2].to(torch.float32) - self._center) / self.half  # [..., 2]
        ents = self._fixed.expand(*pos.shape[:-1], *self._fixed.shape).clone()  # [..., N, D]
        ents[..., self.mover, POS] = pos
        return ents

    def to_world(self, pos: np.ndarray) -> np.ndarray:
        """Table coordinates [..., 2] (metres) of world-square positions [..., 2]."""
        return self.center + self.half * np.asarray(pos, dtype=np.float64)

    def to_entity(self, xy: np.ndarray) -> np.ndarray:
        """World-square positions [..., 2] of table coordinates [..., 2] (metres)."""
        return (np.asarray(xy, dtype=np.float64)[..., :2] - self.center) / self.half

    def entities(self, ee: np.ndarray) -> np.ndarray:
        """Numpy convenience: entities [..., N, D] for end-effector positions [..., 3]."""
        with torch.no_grad():
            return self(torch.as_tensor(np.asarray(ee))).numpy()
