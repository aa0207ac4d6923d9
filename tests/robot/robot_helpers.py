"""Shared pieces of the robot tests: a fixed arrangement, a tiny MJCF, a stand-in energy
model and a closed-loop reach helper."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from particle_world.entities import make_entities  # noqa: E402
from robot_transfer.controllers import PlannerConfig, make_controller  # noqa: E402
from robot_transfer.mpc import run_closed_loop  # noqa: E402
from robot_transfer.rollouts import RolloutEngine  # noqa: E402

MOVER = 3
START = np.array([-0.6, -0.6])
GOAL = np.array([0.6, 0.5])

TWO_LINK = """
<mujoco model="two_link">
  <compiler angle="radian"/>
  <default><joint type="hinge" axis="0 0 1" damping="0.3" armature="0.01"/></default>
  <worldbody>
    <body name="upper" pos="0 0 0.05">
      <joint name="shoulder"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.015" mass="0.2"/>
      <body name="lower" pos="0.2 0 0">
        <joint name="elbow" range="-2.6 2.6"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.012" mass="0.1"/>
        <site name="tip" pos="0.2 0 0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""
MOTORS = """<motor joint="shoulder" ctrlrange="-1 1"/><motor joint="elbow" ctrlrange="-1 1"/>"""


def arrangement() -> np.ndarray:
    """Entities [4, D]: two crosses, a square and the mover (a circle) at START."""
    pos = np.array([[0.5, 0.5], [-0.5, -0.3], [0.2, -0.8], START])
    return make_entities(pos, [2, 2, 0, 1], [3, 3, 1, 0])


class PointEnergy(torch.nn.Module):
    """Stand-in energy model: squared distance of the gated entity to the point w[:, :2]."""

    def energy(self, x, gate, w, valid):
        pos = (x[:, -1, :, :2] * (gate * valid)[..., None]).sum(1)  # [B, 2]
        return (pos - w[:, :2]).square().sum(-1)


def reach(scene, cost, controller, duration=1.5, **planner) -> np.ndarray:
    """Distances [C + 1] (metres) of the end-effector to GOAL over a closed-loop run."""
    objective = scene.objective(cost)
    config = PlannerConfig.for_robot(scene.spec.planner, **planner)
    with RolloutEngine(scene.plan_model, scene.ee_sensor, nthread=2) as engine:
        ctrl = make_controller(controller, engine, objective, scene.ctrl_range, config)
        episode = run_closed_loop(scene, ctrl, duration, config.control_period)
    goal = scene.entity_map.to_world(GOAL)
    return np.linalg.norm(episode.ee[:, :2] - goal, axis=1)
