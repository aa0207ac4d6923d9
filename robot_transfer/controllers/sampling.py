"""Sampling-based planners: predictive sampling, MPPI and CEM.

They share the loop (sample knots around the nominal, roll out, score, update, shift the
nominal forward in time) and differ only in how scored samples update the nominal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from robot_transfer.controllers.base import Planner, PlannerConfig
from robot_transfer.objective import Objective
from robot_transfer.rollouts import RolloutEngine, Spline


class SamplingPlanner(Planner, ABC):
    """Receding-horizon planner over spline knots; subclasses define `update`."""

    def __init__(
        self,
        engine: RolloutEngine,
        objective: Objective,
        ctrl_range: np.ndarray,
        config: PlannerConfig,
    ):
        super().__init__(engine, objective, ctrl_range, config)
        dt = engine.model.opt.timestep
        self.spline = Spline(max(2, round(config.horizon / dt)), config.knots, dt, config.spline)
        self.sigma0 = config.noise * (self.hi - self.lo) / 2  # [nu]
        levels = np.arange(config.samples) % max(1, config.noise_levels)
        self.scales = 0.25 ** levels[:, None, None]  # [S, 1, 1]
        self.reset()

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.config.seed)
        self.nominal = np.clip(np.zeros((self.config.knots, len(self.lo))), self.lo, self.hi)
        self.sigma = np.broadcast_to(self.sigma0, self.nominal.shape).copy()  # [K, nu]
        self.t0 = 0.0

    def center(self) -> np.ndarray:
        """Knots [K, nu] the samples are drawn around."""
        return self.nominal

    def shift(self, dt: float) -> None:
        """Move the plan's start `dt` seconds later (the warm start)."""
        self.nominal = self.spline.shift(self.nominal, dt)

    def sample(self) -> np.ndarray:
        """Knots [S, K, nu] around the center; sample 0 is the nominal itself."""
        noise = self.rng.standard_normal((self.config.samples, *self.nominal.shape))
        knots = np.clip(self.center() + noise * self.scales * self.sigma, self.lo, self.hi)
        knots[0] = self.nominal
        return knots

    @abstractmethod
    def update(self, knots: np.ndarray, costs: np.ndarray) -> None:
        """New nominal (and spread) from sampled knots [S, K, nu] and their costs [S]."""

    def plan(self, state: np.ndarray, time: float) -> float:
        if time != self.t0:
            self.shift(time - self.t0)
            self.t0 = time
        knots = self.sample()  # [S, K, nu]
        controls = self.spline.controls(knots)  # [S, H, nu]
        _, ee = self.engine.run(state, controls)
        costs = self.objective(ee, controls)  # [S]
        self.update(knots, costs)
        return float(costs.min())

    def action(self, time: float) -> np.ndarray:
        return self.spline.at(self.nominal, time - self.t0)


class PredictiveSampling(SamplingPlanner):
    """Keep the best sample (MuJoCo MPC's predictive sampling)."""

    def update(self, knots: np.ndarray, costs: np.ndarray) -> None:
        self.nominal = knots[int(np.argmin(costs))]


class MPPI(SamplingPlanner):
    """Exponentially weighted average of the samples, with the temperature relative to the
    spread of the sampled costs (median minus best, robust to a few wild samples) so that
    any cost scale works."""

    def update(self, knots: np.ndarray, costs: np.ndarray) -> None:
        spread = max(float(np.median(costs) - costs.min()), 1e-12)
        weights = np.exp(-(costs - costs.min()) / (self.config.temperature * spread))
        self.nominal = np.einsum("s,skn->kn", weights / weights.sum(), knots)


class CEM(SamplingPlanner):
    """Cross-entropy method: the sampling mean and spread refit to the elites, and the best
    sample is the executed plan. The spread never falls below 0.3 of the initial noise, so
    it can follow a moving plan and overcome joint friction: on the Jaco (frictionloss 2 N m)
    a floor of 0.1, or executing the never rolled-out elite mean, left the arm stuck."""

    def reset(self) -> None:
        super().reset()
        self.mean = self.nominal.copy()

    def center(self) -> np.ndarray:
        return self.mean

    def shift(self, dt: float) -> None:
        super().shift(dt)
        self.mean = self.spline.shift(self.mean, dt)

    def update(self, knots: np.ndarray, costs: np.ndarray) -> None:
        n = max(2, int(np.ceil(self.config.elite * len(costs))))
        order = np.argsort(costs)
        elites = knots[order[:n]]  # [n, K, nu]
        self.mean = elites.mean(0)
        self.sigma = np.clip(elites.std(0), 0.3 * self.sigma0, self.sigma0)
        self.nominal = knots[order[0]]
