"""Controllers by name: one interface (`Controller`), one registry."""

from __future__ import annotations

import numpy as np

from robot_transfer.controllers.base import Controller, PlannerConfig
from robot_transfer.controllers.ilqr import ILQR
from robot_transfer.controllers.sampling import CEM, MPPI, PredictiveSampling
from robot_transfer.objective import Objective
from robot_transfer.rollouts import RolloutEngine

CONTROLLERS = {"ps": PredictiveSampling, "mppi": MPPI, "cem": CEM, "ilqr": ILQR}


def controller_class(name: str) -> type:
    """The controller class registered as `name`."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; choose one of {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name]


def make_controller(
    name: str,
    engine: RolloutEngine,
    objective: Objective,
    ctrl_range: np.ndarray,
    config: PlannerConfig,
) -> Controller:
    """The controller registered as `name`."""
    return controller_class(name)(engine, objective, ctrl_range, config)


__all__ = ["CONTROLLERS", "Controller", "PlannerConfig", "controller_class", "make_controller"]
