"""The entity map against forward kinematics; rollouts, splines and cost derivatives."""

import mujoco
import numpy as np
import torch
from robot_helpers import GOAL, MOVER, START, PointEnergy, arrangement

from particle_world.entities import POS
from robot_transfer.costs import GoalDistanceCost, LearnedEnergyCost
from robot_transfer.rollouts import RolloutEngine, Spline

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


def test_entity_map_matches_forward_kinematics(arm_scene):
    model, emap = arm_scene.model, arm_scene.entity_map
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    configs = [np.zeros(model.nq), arm_scene.qpos0, *rng.uniform(-1, 1, (5, model.nq))]
    base = arrangement()
    for q in configs:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        site = data.site_xpos[arm_scene.ee_site]
        ents = emap.entities(site)  # [N, D]
        half, (cx, cy) = emap.half, emap.center
        assert np.allclose(ents[MOVER, POS], [(site[0] - cx) / half, (site[1] - cy) / half])
        others = np.arange(len(base)) != MOVER
        assert np.array_equal(ents[others], base[others])
        assert np.allclose(emap.to_world(ents[MOVER, POS]), site[:2], atol=1e-6)


def test_initial_pose_puts_the_end_effector_on_the_mover(arm_scene):
    data = mujoco.MjData(arm_scene.model)
    arm_scene.reset(data)
    ee = arm_scene.ee(data)
    assert np.allclose(arm_scene.entity_map.to_entity(ee), START, atol=0.02)
    assert abs(ee[2] - arm_scene.spec.hover_height) < 0.01


def test_rollout_sensor_is_the_pre_step_site_position(arm_scene):
    model = arm_scene.plan_model
    data = mujoco.MjData(model)
    arm_scene.reset(data)
    state0 = arm_scene.state(data)
    controls = np.random.default_rng(1).uniform(-3, 3, (2, 4, model.nu))
    with RolloutEngine(model, arm_scene.ee_sensor, nthread=2) as engine:
        states, ee = engine.run(state0, controls)
        assert np.allclose(ee[:, 0], arm_scene.ee(data))
        for s in range(2):
            for t in range(1, 4):
                mujoco.mj_setState(model, data, states[s, t - 1], FULLPHYSICS)
                mujoco.mj_kinematics(model, data)
                assert np.allclose(ee[s, t], data.site_xpos[arm_scene.ee_site])


def test_spline_interpolates_and_shifts():
    spline = Spline(steps=11, knots=3, dt=0.1, kind="linear")  # knots at 0, 0.5, 1.0 s
    knots = np.array([[0.0], [1.0], [3.0]])
    u = spline.controls(knots[None])[0, :, 0]
    assert np.allclose(u, [0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0])
    assert np.isclose(spline.at(knots, 0.25)[0], 0.4)  # held from the step at 0.2 s, as rolled out
    assert np.allclose([spline.at(knots, 0.1 * h)[0] for h in range(11)], u)
    assert np.allclose(spline.shift(knots, 0.5)[:, 0], [1.0, 3.0, 3.0])
    zero = Spline(steps=4, knots=2, dt=1.0, kind="zero")
    assert np.allclose(zero.controls(knots[None, :2])[0, :, 0], [0, 0, 0, 1])


def test_objective_derivatives(arm_scene):
    """Gradient against finite differences; Hessian blocks symmetric PSD, Gauss-Newton
    for residual costs equal to the exact Hessian of a linear-residual cost."""
    rng = np.random.default_rng(2)
    ee = np.c_[rng.uniform(-0.2, 0.2, (6, 2)), rng.uniform(0.0, 0.1, 6)]
    controls = rng.uniform(-5, 5, (6, arm_scene.model.nu))
    w = torch.tensor([[GOAL[0], GOAL[1]]])
    for cost in (
        GoalDistanceCost(GOAL, MOVER),
        LearnedEnergyCost(PointEnergy(), w, MOVER, 4, running=1.0, stride=1),
    ):
        obj = arm_scene.objective(cost)
        value, grad, hess = obj.derivatives(ee, controls)
        assert np.isclose(value, obj(ee[None], controls[None])[0], rtol=1e-5)
        z = np.concatenate([ee, controls], -1)
        eps = 1e-3
        for t, k in [(0, 0), (5, 1), (3, 2), (5, 4)]:
            zp, zm = z.copy(), z.copy()
            zp[t, k] += eps
            zm[t, k] -= eps
            fd = obj(zp[None, :, :3], zp[None, :, 3:]) - obj(zm[None, :, :3], zm[None, :, 3:])
            assert np.isclose(grad[t, k], fd[0] / (2 * eps), rtol=1e-2, atol=1e-4)
        assert np.allclose(hess, hess.transpose(0, 2, 1), atol=1e-6)
        assert np.linalg.eigvalsh(hess).min() > -1e-6
        step = np.array([eps, 0, 0])
        up, down = obj.derivatives(ee + step, controls), obj.derivatives(ee - step, controls)
        fd_hess = (up[1] - down[1]) / (2 * eps)
        assert np.allclose(hess[:, :, 0], fd_hess, rtol=1e-2, atol=1e-3)
