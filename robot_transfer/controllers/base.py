"""The controller interface and the parameters every controller reads a subset of.

A controller is built from a rollout engine (the planning model), an objective and the
torque limits. `reset()` forgets the plan; `plan(state, time)` runs one planning iteration
from the full physics state at that time, warm-started from the previous plan shifted to the
new time (receding horizon); `action(time)` reads the current plan's control at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from energy_model.cli_config import refuse_out_of_range
from robot_transfer.objective import Objective
from robot_transfer.rollouts import RolloutEngine


@dataclass
class PlannerConfig:
    """Planner parameters; robots override some defaults (RobotSpec.planner)."""

    samples: int = 64
    """Rollouts per planning iteration (ps, mppi, cem)."""
    horizon: float = 0.5
    """Planning horizon in seconds."""
    knots: int = 3
    """Spline knots over the horizon (ps, mppi, cem)."""
    spline: str = "linear"
    """Spline through the knots: linear or zero (order hold)."""
    noise: float = 0.1
    """Sampling noise, standard deviation as a fraction of the torque limit."""
    noise_levels: int = 3
    """Samples cycle through noise / 4^k, k < noise_levels: coarse moves and fine ones."""
    temperature: float = 0.1
    """MPPI temperature, relative to the spread of the sampled costs."""
    elite: float = 0.1
    """CEM elite fraction."""
    iterations: int = 1
    """Planning iterations per control step."""
    control_period: float = 0.02
    """Seconds of simulation between planning steps."""
    regularization: float = 1e-3
    """iLQR initial Levenberg-Marquardt regularisation of Q_uu."""
    seed: int = 0
    """Seed of the sampling noise."""

    def __post_init__(self):
        refuse_out_of_range(self, {
            "samples": (self.samples >= 1, "at least 1"),
            "horizon": (self.horizon > 0, "positive"),
            "knots": (self.knots >= 1, "at least 1"),
            "noise": (self.noise >= 0, "0 or more"),
            "noise_levels": (self.noise_levels >= 1, "at least 1"),
            "temperature": (self.temperature > 0, "positive"),
            "elite": (0 < self.elite <= 1, "in (0, 1]"),
            "iterations": (self.iterations >= 1, "at least 1"),
            "control_period": (self.control_period > 0, "positive"),
            "regularization": (self.regularization >= 0, "0 or more"),
        })  # fmt: skip

    @classmethod
    def for_robot(cls, overrides: dict[str, float], **given) -> PlannerConfig:
        """Defaults, then the robot's overrides, then explicitly given values (not None)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in overrides.items() if k in names}
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)


class Planner:
    """What every controller holds: the planning model's rollout engine, the objective, the
    torque limits and the config."""

    def __init__(
        self,
        engine: RolloutEngine,
        objective: Objective,
        ctrl_range: np.ndarray,
        config: PlannerConfig,
    ):
        self.engine, self.objective, self.config = engine, objective, config
        self.lo, self.hi = ctrl_range[:, 0], ctrl_range[:, 1]  # [nu]


class Controller(Protocol):
    def reset(self) -> None:
        """Forget the plan (zero torques over the horizon)."""
        ...

    def plan(self, state: np.ndarray, time: float) -> float:
        """One planning iteration from full physics state [nstate] at `time`; the best
        objective value seen."""
        ...

    def action(self, time: float) -> np.ndarray:
        """Control [nu] of the current plan at `time`."""
        ...
