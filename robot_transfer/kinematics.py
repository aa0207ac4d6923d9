"""Inverse kinematics of the end-effector site, for initial poses and reachable workspaces."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_transfer.robots import motor_actuators

IK_TOLERANCE = 0.003
"""Largest horizontal end-effector error (metres) of a pose counted as reaching a point."""


@dataclass
class ArmJoints:
    """The motor-driven joints of a model (hinges and slides, one qpos each)."""

    qadr: np.ndarray
    """[n] qpos addresses."""
    dadr: np.ndarray
    """[n] dof addresses."""
    ranges: np.ndarray
    """[n, 2] joint ranges; [-pi, pi] for unlimited joints (used for sampling only)."""
    limited: np.ndarray
    """[n] bool, whether inverse kinematics must respect the range."""

    def starts(self, home, rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
        """IK starts: `home` (or the middle of the ranges), then n random poses."""
        yield np.asarray(home) if home is not None else self.ranges.mean(1)
        for _ in range(n):
            yield rng.uniform(self.ranges[:, 0], self.ranges[:, 1])


def arm_joints(model: mujoco.MjModel) -> ArmJoints:
    joints = model.actuator_trnid[motor_actuators(model), 0]
    limited = model.jnt_limited[joints].astype(bool)
    ranges = np.where(limited[:, None], model.jnt_range[joints], np.array([-np.pi, np.pi]))
    return ArmJoints(model.jnt_qposadr[joints], model.jnt_dofadr[joints], ranges, limited)


def solve_ik(
    model: mujoco.MjModel, data: mujoco.MjData, site: int, target: np.ndarray, q0: np.ndarray
) -> float:
    """Damped least squares on the motor joints from `q0` (written into data.qpos) towards
    the site at `target` [3]; returns the final horizontal error (metres). A height the
    robot cannot reach (a planar arm) leaves the horizontal solution unaffected."""
    joints = arm_joints(model)
    lo = np.where(joints.limited, joints.ranges[:, 0], -np.inf)
    hi = np.where(joints.limited, joints.ranges[:, 1], np.inf)
    data.qpos[joints.qadr] = q0
    jac = np.zeros((3, model.nv))
    for _ in range(100):
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err = target - data.site_xpos[site]
        if np.linalg.norm(err) < 1e-4:
            break
        mujoco.mj_jacSite(model, data, jac, None, site)
        j = jac[:, joints.dadr]  # [3, n]
        dq = j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(3), err)
        dq *= min(1.0, 0.5 / (np.abs(dq).max() + 1e-12))  # at most 0.5 rad a step
        q = data.qpos[joints.qadr].copy()
        data.qpos[joints.qadr] = np.clip(q + dq, lo, hi)
        if np.abs(data.qpos[joints.qadr] - q).max() < 1e-7:  # converged, or stuck at a limit
            break
    mujoco.mj_kinematics(model, data)
    return float(np.linalg.norm(target[:2] - data.site_xpos[site][:2]))


def reach(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    site: int,
    target: np.ndarray,
    starts: Iterable[np.ndarray],
) -> float:
    """IK from each start in turn until a collision-free pose reaches `target`; leaves the
    best collision-free pose in `data` and returns its error (infinite when all collide)."""
    best, best_q = np.inf, data.qpos.copy()
    for q0 in starts:
        err = solve_ik(model, data, site, target, q0)
        mujoco.mj_fwdPosition(model, data)
        if data.ncon == 0 and err < best:
            best, best_q = err, data.qpos.copy()
        if best < IK_TOLERANCE:
            break
    data.qpos[:] = best_q
    mujoco.mj_kinematics(model, data)
    return best


def largest_square(ok: np.ndarray) -> tuple[int, tuple[int, int]]:
    """Side and first corner index of the largest all-True square of a boolean grid."""
    side = np.zeros((ok.shape[0] + 1, ok.shape[1] + 1), dtype=int)
    best, at = 0, (0, 0)
    for i in range(ok.shape[0]):
        for j in range(ok.shape[1]):
            if ok[i, j]:
                side[i + 1, j + 1] = 1 + min(side[i, j], side[i, j + 1], side[i + 1, j])
                if side[i + 1, j + 1] > best:
                    best = side[i + 1, j + 1]
                    at = (i - best + 1, j - best + 1)
    return best, at
