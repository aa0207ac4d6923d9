"""One rollout engine for every controller, and controls as knots over the horizon.

`RolloutEngine` runs batched open-loop rollouts of the planning model on a persistent
`mujoco.rollout.Rollout` thread pool, with preallocated buffers so a planning iteration
allocates nothing. Sensor data of step t is computed before that step's integration, so
`ee[:, t]` is the end-effector position of the state x_t, t = 0 .. H-1 (x_0 is the initial
state); costs therefore see states x_0 .. x_{H-1} and the controls u_0 .. u_{H-1}.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
from mujoco import rollout

SPLINES = ("zero", "linear")


class RolloutEngine:
    """Batched rollouts of `model` from one state; the end-effector read from sensor data."""

    def __init__(self, model: mujoco.MjModel, ee_sensor: int, nthread: int | None = None):
        self.model = model
        self.ee_sensor = ee_sensor
        self.nthread = nthread if nthread is not None else os.cpu_count() or 1
        self.nstate = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        self._pool = rollout.Rollout(nthread=self.nthread)
        self._datas = [mujoco.MjData(model) for _ in range(max(self.nthread, 1))]
        self._buffers: dict[tuple[int, int], tuple] = {}

    def run(self, state0: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States [S, H, nstate] after each step and end-effector positions [S, H, 3] before
        it, for controls [S, H, nu] from the full physics state `state0` [nstate].

        The arrays are buffers reused by the next call with the same shape; copy to keep them.
        """
        nbatch, nstep, _ = controls.shape
        key = (nbatch, nstep)
        if key not in self._buffers:
            self._buffers[key] = (
                [self.model] * nbatch,
                np.empty((nbatch, self.nstate)),
                np.empty((nbatch, nstep, self.nstate)),
                np.empty((nbatch, nstep, self.model.nsensordata)),
            )
        models, init, states, sensors = self._buffers[key]
        init[:] = state0
        self._pool.rollout(
            models,
            self._datas,
            init,
            np.ascontiguousarray(controls, dtype=np.float64),
            skip_checks=True,
            nstep=nstep,
            state=states,
            sensordata=sensors,
        )
        return states, sensors[..., self.ee_sensor : self.ee_sensor + 3]

    def close(self) -> None:
        """Stop the thread pool."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def interpolation(times: np.ndarray, knot_times: np.ndarray, kind: str) -> np.ndarray:
    """Basis [Q, K] that maps K knot values to Q query times (clamped at both ends)."""
    t = np.clip(times, knot_times[0], knot_times[-1])
    k = np.clip(np.searchsorted(knot_times, t, side="right") - 1, 0, len(knot_times) - 1)
    basis = np.zeros((len(t), len(knot_times)))
    if kind == "zero" or len(knot_times) == 1:
        basis[np.arange(len(t)), k] = 1.0
        return basis
    k = np.minimum(k, len(knot_times) - 2)
    frac = (t - knot_times[k]) / (knot_times[k + 1] - knot_times[k])
    basis[np.arange(len(t)), k] = 1.0 - frac
    basis[np.arange(len(t)), k + 1] = frac
    return basis


class Spline:
    """Controls over a horizon of `steps` steps of `dt` from `knots` knot values."""

    def __init__(self, steps: int, knots: int, dt: float, kind: str = "linear"):
        if kind not in SPLINES:
            raise ValueError(f"unknown spline {kind!r}; choose one of {', '.join(SPLINES)}")
        self.kind = kind
        self.dt = dt
        self.steps = steps
        self.knot_times = np.linspace(0.0, (steps - 1) * dt, knots)  # [K]
        self._basis = interpolation(np.arange(steps) * dt, self.knot_times, kind)  # [H, K]

    def controls(self, knots: np.ndarray) -> np.ndarray:
        """Per-step controls [S, H, nu] of knots [S, K, nu]."""
        return np.matmul(self._basis, knots)

    def at(self, knots: np.ndarray, t: float) -> np.ndarray:
        """Control [nu] of knots [K, nu] at time t after the horizon start, held over each
        step of `dt` as the rollouts hold it (so the plan is executed as it was predicted)."""
        step = np.floor(t / self.dt + 1e-6) * self.dt
        return (interpolation(np.array([step]), self.knot_times, self.kind) @ knots)[0]

    def shift(self, knots: np.ndarray, dt: float) -> np.ndarray:
        """Knots [K, nu] of the same controls with the horizon start moved `dt` later (the
        last knot is held): the warm start between planning steps."""
        return interpolation(self.knot_times + dt, self.knot_times, self.kind) @ knots
