"""Every controller drives the own arm's end-effector to a goal under a distance cost."""

import numpy as np
import pytest
import torch
from robot_helpers import GOAL, MOVER, PointEnergy, reach

from robot_transfer.controllers import CONTROLLERS, PlannerConfig, make_controller
from robot_transfer.costs import GoalDistanceCost, LearnedEnergyCost
from robot_transfer.rollouts import RolloutEngine

TOLERANCE = 0.02
"""Metres; the start is 0.36 m from the goal."""


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_controller_reaches_goal(arm_scene, controller):
    dist = reach(arm_scene, GoalDistanceCost(GOAL, MOVER), controller)
    assert dist[0] > 0.3
    assert dist[-1] < TOLERANCE


@pytest.mark.parametrize("controller", ["mppi", "ilqr"])
def test_learned_energy_cost_reaches_its_minimum(arm_scene, controller):
    w = torch.tensor([[GOAL[0], GOAL[1], 0.0]])
    cost = LearnedEnergyCost(PointEnergy(), w, MOVER, 4, running=1.0, square_head=True)
    assert reach(arm_scene, cost, controller)[-1] < TOLERANCE


def test_torque_limits_hold(arm_scene):
    objective = arm_scene.objective(GoalDistanceCost(GOAL, MOVER))
    config = PlannerConfig(noise=2.0)  # samples far outside the limits before clipping
    with RolloutEngine(arm_scene.plan_model, arm_scene.ee_sensor, nthread=1) as engine:
        for name in CONTROLLERS:
            ctrl = make_controller(name, engine, objective, arm_scene.ctrl_range, config)
            state = np.zeros(engine.nstate)
            state[1 : 1 + arm_scene.model.nq] = arm_scene.qpos0
            for step in range(3):
                ctrl.plan(state, step * 0.02)
                u = ctrl.action(step * 0.02)
                assert np.all(u >= arm_scene.ctrl_range[:, 0] - 1e-9)
                assert np.all(u <= arm_scene.ctrl_range[:, 1] + 1e-9)
