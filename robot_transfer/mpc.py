"""Closed-loop model-predictive control of a scene: plan, act, simulate, repeat."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_transfer.controllers import Controller
from robot_transfer.scene import Scene


@dataclass
class Episode:
    """What a closed-loop run did."""

    ee: np.ndarray
    """[C + 1, 3] end-effector positions at the start and after each control period."""
    sim_time: float
    """Simulated seconds."""
    control_wall_s: float
    """Wall-clock seconds of planning and simulation (rendering excluded)."""
    best_costs: np.ndarray
    """[C] best objective value of the last planning iteration of each control period."""

    @property
    def real_time_factor(self) -> float:
        return self.sim_time / max(self.control_wall_s, 1e-9)


def run_closed_loop(
    scene: Scene,
    controller: Controller,
    duration: float,
    control_period: float,
    iterations: int = 1,
    on_step: Callable[[mujoco.MjData], None] | None = None,
) -> Episode:
    """Run `controller` on the simulation of `scene` for `duration` seconds, planning
    `iterations` times every `control_period` seconds and applying the plan's controls at
    every simulation step; `on_step(data)` after the reset and after each simulation step
    (not timed)."""
    model = scene.model
    data = mujoco.MjData(model)
    scene.reset(data)
    controller.reset()
    if on_step is not None:
        on_step(data)
    substeps = max(1, round(control_period / model.opt.timestep))
    periods = math.ceil(duration / (substeps * model.opt.timestep))
    ee, costs, untimed = [scene.ee(data)], [], 0.0
    start = time.perf_counter()
    for _ in range(periods):
        state = scene.state(data)
        for _ in range(iterations):
            best = controller.plan(state, data.time)
        costs.append(best)
        for _ in range(substeps):
            data.ctrl[:] = controller.action(data.time)
            mujoco.mj_step(model, data)
            if on_step is not None:
                tick = time.perf_counter()
                on_step(data)
                untimed += time.perf_counter() - tick
        mujoco.mj_kinematics(model, data)
        ee.append(scene.ee(data))
    return Episode(
        ee=np.array(ee),
        sim_time=float(data.time),
        control_wall_s=time.perf_counter() - start - untimed,
        best_costs=np.array(costs),
    )
