"""iLQR on the planning model: finite-difference dynamics, autograd cost derivatives.

Per iteration: roll out the nominal controls, linearise every step with
`mujoco.mjd_transitionFD` (A, B and the end-effector sensor Jacobian C), take the objective's
per-step gradient and PSD Hessian blocks in (end-effector position, control) and chain them
through C into state space, run the Riccati backward pass with Levenberg-Marquardt
regularisation, then a feedback forward pass with a backtracking line search. Controls are
clamped to the torque limits in the forward pass, and feedback is cut on clamped controls.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_transfer.controllers.base import Planner, PlannerConfig
from robot_transfer.objective import Objective
from robot_transfer.rollouts import RolloutEngine, Spline

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
STEP_SIZES = (1.0, 0.5, 0.25, 0.1, 0.03)


class ILQR(Planner):
    """Iterative LQR over per-step controls of the planning model."""

    def __init__(
        self,
        engine: RolloutEngine,
        objective: Objective,
        ctrl_range: np.ndarray,
        config: PlannerConfig,
    ):
        super().__init__(engine, objective, ctrl_range, config)
        self.model = model = engine.model
        dt = model.opt.timestep
        steps = max(2, round(config.horizon / dt))
        self.spline = Spline(steps, steps, dt, "zero")
        self.data = mujoco.MjData(model)
        self._ref = mujoco.MjData(model)
        nx, nu, ns = 2 * model.nv + model.na, model.nu, model.nsensordata
        self.A = np.zeros((steps, nx, nx))
        self.B = np.zeros((steps, nx, nu))
        self.C = np.zeros((steps, ns, nx))
        self.D = np.zeros((steps, ns, nu))
        self.reset()

    def reset(self) -> None:
        self.controls = np.clip(np.zeros((self.spline.steps, self.model.nu)), self.lo, self.hi)
        self.mu = self.config.regularization
        self.t0 = 0.0

    def _linearise(self, states: np.ndarray) -> None:
        """A, B, C, D at pre-step states [H, nstate] under the nominal controls."""
        m, d = self.model, self.data
        for t, x in enumerate(states):
            mujoco.mj_setState(m, d, x, FULLPHYSICS)
            d.ctrl[:] = self.controls[t]
            mujoco.mjd_transitionFD(m, d, 1e-6, False, self.A[t], self.B[t], self.C[t], self.D[t])

    def _backward(self, grad: np.ndarray, hess: np.ndarray):
        """Feedforward [H, nu] and feedback [H, nu, nx] gains, or None if Q_uu is not PD."""
        adr = self.engine.ee_sensor
        horizon, nu = self.controls.shape
        nx = self.A.shape[1]
        k, K = np.zeros((horizon, nu)), np.zeros((horizon, nu, nx))
        vx, vxx = np.zeros(nx), np.zeros((nx, nx))
        for t in reversed(range(horizon)):
            a, b, c = self.A[t], self.B[t], self.C[t, adr : adr + 3]  # c: [3, nx]
            g, h = grad[t], hess[t]  # [3 + nu], [3 + nu, 3 + nu]
            qx = c.T @ g[:3] + a.T @ vx
            qu = g[3:] + b.T @ vx
            qxx = c.T @ h[:3, :3] @ c + a.T @ vxx @ a
            quu = h[3:, 3:] + b.T @ vxx @ b
            qux = h[3:, :3] @ c + b.T @ vxx @ a
            try:
                chol = np.linalg.cholesky(quu + self.mu * np.eye(nu))
            except np.linalg.LinAlgError:
                return None
            gains = -np.linalg.solve(chol.T, np.linalg.solve(chol, np.c_[qu, qux]))
            k[t], K[t] = gains[:, 0], gains[:, 1:]
            vx = qx + K[t].T @ quu @ k[t] + K[t].T @ qu + qux.T @ k[t]
            vxx = qxx + K[t].T @ quu @ K[t] + K[t].T @ qux + qux.T @ K[t]
            vxx = 0.5 * (vxx + vxx.T)
        return k, K

    def _forward(self, state: np.ndarray, states: np.ndarray, k, K, alpha: float):
        """Closed-loop rollout of u = clip(u_bar + alpha k + K dx); controls and positions."""
        m, d = self.model, self.data
        horizon, nu = self.controls.shape
        controls, ee = np.empty_like(self.controls), np.empty((horizon, 3))
        dq = np.empty(m.nv)
        ref = self._ref
        mujoco.mj_setState(m, d, state, FULLPHYSICS)
        for t in range(horizon):
            mujoco.mj_setState(m, ref, states[t], FULLPHYSICS)
            mujoco.mj_differentiatePos(m, dq, 1.0, ref.qpos, d.qpos)
            dx = np.concatenate([dq, d.qvel - ref.qvel, d.act - ref.act])
            u = self.controls[t] + alpha * k[t] + K[t] @ dx
            controls[t] = d.ctrl[:] = np.clip(u, self.lo, self.hi)
            mujoco.mj_step(m, d)
            ee[t] = d.sensordata[self.engine.ee_sensor : self.engine.ee_sensor + 3]
        return controls, ee

    def plan(self, state: np.ndarray, time: float) -> float:
        if time != self.t0:
            self.controls = self.spline.shift(self.controls, time - self.t0)
            self.t0 = time
        rolled, ee = self.engine.run(state, self.controls[None])
        states = np.concatenate([state[None], rolled[0, :-1]])  # [H, nstate] pre-step states
        ee = ee[0].copy()
        self._linearise(states)
        value, grad, hess = self.objective.derivatives(ee, self.controls)
        gains = self._backward(grad, hess)
        while gains is None:
            self.mu *= 10.0
            gains = self._backward(grad, hess)
        k, K = gains
        saturated = (self.controls <= self.lo) | (self.controls >= self.hi)  # [H, nu]
        K[saturated] = 0.0
        for alpha in STEP_SIZES:
            controls, ee_new = self._forward(state, states, k, K, alpha)
            new = float(self.objective(ee_new[None], controls[None])[0])
            if new < value:
                self.controls = controls
                self.mu = max(self.mu / 3.0, 1e-6)
                return new
        self.mu = min(self.mu * 10.0, 1e6)
        return value

    def action(self, time: float) -> np.ndarray:
        return self.spline.at(self.controls, time - self.t0)
