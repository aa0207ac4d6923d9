"""The objective controllers minimise: a cost on mapped entities plus the robot's own terms.

Controllers hand over end-effector trajectories and raw controls; the objective maps them to
entities (`EntityMap`) and torque-scaled controls, calls the cost, and adds two robot-side
residuals, both zero where the end-effector behaves:
- hover: the end-effector height outside the spec's band above the table. Concepts see only
  the table plane; without it the end-effector drags on the table or wanders up. A band, not
  one height: holding a height couples every joint and made the sampling planners wander
  2-10 cm around the goal of a reach;
- bound: the mover's entity position outside the world square [-1, 1]^2, where the demos
  never were and a learned energy means nothing.
For iLQR it also gives per-step derivatives with respect to the end-effector position and
the controls.
"""

from __future__ import annotations

import numpy as np
import torch

from particle_world.entities import WORLD_BOUND
from robot_transfer.costs import Cost
from robot_transfer.entity_map import EntityMap


class Objective:
    """cost(entity_map(ee), u / limit) + weight * mean_t |r_t|^2, r_t the robot residuals."""

    def __init__(
        self,
        entity_map: EntityMap,
        cost: Cost,
        ctrl_range: np.ndarray,
        height_band: tuple[float, float],
        weight: float = 10.0,
    ):
        self.entity_map = entity_map
        self.cost = cost
        self._scale = torch.as_tensor(np.abs(ctrl_range).max(1), dtype=torch.float32)  # [nu]
        lo, hi = height_band
        half = entity_map.half
        # the box the end-effector should stay in: the world square times the height band
        self._box_center = torch.tensor([*entity_map.center, (lo + hi) / 2], dtype=torch.float32)
        self._box_half = torch.tensor([half * WORLD_BOUND] * 2 + [(hi - lo) / 2])
        self.weight = weight

    def _robot_residuals(self, ee: torch.Tensor) -> torch.Tensor:
        """[S, H, 3] residuals: how far the end-effector is outside the box of the world
        square times the height band, in world units (the workspace half side)."""
        outside = ((ee.to(torch.float32) - self._box_center).abs() - self._box_half).clamp_min(0)
        return outside * (np.sqrt(self.weight / ee.shape[1]) / self.entity_map.half)

    def value(self, ee: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """Differentiable objective [S] of end-effector positions [S, H, 3] and controls."""
        u = controls.to(torch.float32) / self._scale
        robot = self._robot_residuals(ee).square().sum((1, 2))  # [S]
        return self.cost(self.entity_map(ee), u) + robot

    def __call__(self, ee: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Objective [S] (numpy) of rollouts: end-effector positions [S, H, 3], controls
        [S, H, nu]."""
        with torch.no_grad():
            return self.value(torch.from_numpy(ee), torch.from_numpy(controls)).numpy()

    def _residuals(self, z: torch.Tensor) -> torch.Tensor | None:
        """All residuals [1, H, R] of per-step variables z [1, H, 3 + nu], or None."""
        fn = getattr(self.cost, "residuals", None)
        ee, u = z[..., :3], z[..., 3:] / self._scale
        res = fn(self.entity_map(ee), u) if fn is not None else None
        return None if res is None else torch.cat([res, self._robot_residuals(ee)], -1)

    def derivatives(
        self, ee: np.ndarray, controls: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Value, gradient [H, 3 + nu] and positive semi-definite per-step Hessian blocks
        [H, 3 + nu, 3 + nu] with respect to (end-effector position, control) of each step.

        Cross-step curvature is dropped (the objective is a sum of per-step terms). The
        blocks are Gauss-Newton, 2 J^T J, where the cost gives residuals, else the Hessian
        projected onto the PSD cone (negative eigenvalues clipped to zero).
        """
        z = torch.from_numpy(np.concatenate([ee, controls], -1)[None]).to(torch.float32)
        z.requires_grad_(True)  # [1, H, M], M = 3 + nu
        res = self._residuals(z)  # [1, H, R] or None
        if res is not None:
            value = res.square().sum()
            rows = [  # row r of every step's residual Jacobian (steps do not couple)
                torch.autograd.grad(res[..., r].sum(), z, retain_graph=True)[0][0]
                for r in range(res.shape[-1])
            ]
            jac = torch.stack(rows, 1)  # [H, R, M]
            grad = 2 * (jac.transpose(1, 2) @ res[0, :, :, None])[None, ..., 0]  # [1, H, M]
            hess = 2 * jac.transpose(1, 2) @ jac
        else:
            value = self.value(z[..., :3], z[..., 3:]).sum()
            grad = torch.autograd.grad(value, z, create_graph=True)[0]  # [1, H, M]
            m = z.shape[-1]
            cols = [  # column k of every step's Hessian block (steps do not couple)
                torch.autograd.grad(grad[..., k].sum(), z, retain_graph=True)[0][0]
                for k in range(m)
            ]
            hess = torch.stack(cols, -1)  # [H, M, M]
            hess = 0.5 * (hess + hess.transpose(1, 2))
            evals, evecs = torch.linalg.eigh(hess)
            hess = evecs @ torch.diag_embed(evals.clamp_min(0)) @ evecs.transpose(1, 2)
        grad, hess = grad[0].detach().double().numpy(), hess.detach().double().numpy()
        return float(value.detach()), grad, hess
