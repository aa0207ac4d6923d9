"""MPC speed and reach: planning iterations against raw mujoco.rollout, closed-loop reaching,
and the real-time factor of closed-loop control.

    python bench/mpc.py [--robots arm jaco reacher] [--controllers ps mppi cem ilqr]
                        [--samples 64 256] [--repeats 20] [--checkpoint PATH]
                        [--json bench/mpc.json]

1. Overhead: one planning iteration from a fixed state against the raw `mujoco.rollout`
   of the same batch (controls drawn as the planner draws them, same state, same engine),
   interleaved in one run, median ratio; with the hand-written goal cost and with the
   learned energy (the checkpoint's, or an untrained network of the default architecture:
   the same compute). iLQR rolls out one trajectory per iteration, then linearises it: its
   raw rollout is that batch of one, and its ratio measures the linearisation, the
   derivatives, the Riccati pass and the line search, not a rollout overhead.
2. Reach: final end-effector error after 2 s of simulated closed-loop control towards a
   point, three goals per robot and controller, goal cost.
3. Real-time factor: simulated seconds per wall-clock second of closed-loop control
   (planning and simulation, no rendering) on the default arm, default controller.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from energy_model.config import InferenceConfig, ModelConfig  # noqa: E402
from energy_model.model import ConceptModel  # noqa: E402
from particle_world.entities import make_entities  # noqa: E402
from particle_world.io import write_json  # noqa: E402
from robot_transfer.controllers import CONTROLLERS, PlannerConfig, make_controller  # noqa: E402
from robot_transfer.costs import GoalDistanceCost, LearnedEnergyCost  # noqa: E402
from robot_transfer.mpc import run_closed_loop  # noqa: E402
from robot_transfer.robots import ROBOTS  # noqa: E402
from robot_transfer.rollouts import RolloutEngine  # noqa: E402
from robot_transfer.scene import build_scene  # noqa: E402

MOVER = 4
GOALS = np.array([[0.6, 0.5], [-0.5, 0.6], [0.3, -0.6]])


def arrangement() -> np.ndarray:
    """Two crosses, two distractors and the mover (entity 4) at (-0.6, -0.6)."""
    pos = np.array([[0.5, 0.5], [-0.5, -0.3], [0.2, -0.8], [0.7, -0.2], [-0.6, -0.6]])
    return make_entities(pos, [2, 2, 0, 3, 1], [3, 3, 1, 2, 0])


def energy_model(checkpoint: str | None) -> torch.nn.Module:
    if checkpoint:
        from energy_model.checkpoint import load_model

        return load_model(checkpoint)
    torch.manual_seed(0)
    return ConceptModel(ModelConfig(), InferenceConfig()).eval()


def overhead(scene, cost, controller: str, samples: int, repeats: int) -> dict:
    """Median time of one planning iteration and of the raw rollout of the same batch."""
    objective = scene.objective(cost)
    config = PlannerConfig.for_robot(scene.spec.planner, samples=samples)
    data = mujoco.MjData(scene.model)
    scene.reset(data)
    state = scene.state(data)
    with RolloutEngine(scene.plan_model, scene.ee_sensor, nthread=2) as engine:
        ctrl = make_controller(controller, engine, objective, scene.ctrl_range, config)
        plan, raw = [], []
        for i in range(repeats + 3):
            t = time.perf_counter()
            ctrl.plan(state, 0.0)
            t_plan = time.perf_counter() - t
            controls = batch_of(ctrl)  # what the planner rolls out, drawn afresh
            t = time.perf_counter()
            engine.run(state, controls)
            t_raw = time.perf_counter() - t
            if i >= 3:  # warm-up
                plan.append(t_plan)
                raw.append(t_raw)
    ratios = [p / r for p, r in zip(plan, raw, strict=True)]
    return {
        "plan_ms": 1e3 * statistics.median(plan),
        "raw_ms": 1e3 * statistics.median(raw),
        "ratio": statistics.median(ratios),
        "batch": controls.shape[0],
        "horizon_steps": controls.shape[1],
    }


def batch_of(ctrl) -> np.ndarray:
    """Controls [S, H, nu] of one batch the planner rolls out: its samples, or for iLQR its
    nominal (the line search and the linearisation step the model on their own)."""
    if hasattr(ctrl, "sample"):
        return ctrl.spline.controls(ctrl.sample())
    return ctrl.controls[None]


def closed_loop(scene, cost, controller: str, duration: float, **planner):
    objective = scene.objective(cost)
    config = PlannerConfig.for_robot(scene.spec.planner, **planner)
    with RolloutEngine(scene.plan_model, scene.ee_sensor, nthread=2) as engine:
        ctrl = make_controller(controller, engine, objective, scene.ctrl_range, config)
        return run_closed_loop(scene, ctrl, duration, config.control_period, config.iterations)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--robots", nargs="+", default=list(ROBOTS), choices=list(ROBOTS))
    p.add_argument("--controllers", nargs="+", default=list(CONTROLLERS), choices=list(CONTROLLERS))
    p.add_argument("--samples", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--duration", type=float, default=2.0, help="closed-loop reach, seconds")
    p.add_argument("--checkpoint", default=None, help="energy model (default: untrained)")
    p.add_argument("--json", default="bench/mpc.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = energy_model(args.checkpoint)
    w = torch.randn(1, model.model_cfg.code_dim)
    result = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "load_average_start": os.getloadavg(),
        "overhead": [],
        "reach": [],
    }
    print(f"{'robot':8} {'ctrl':5} {'S':>4} {'cost':7} {'plan ms':>8} {'raw ms':>8} {'ratio':>6}")
    for robot in args.robots:
        scene = build_scene(ROBOTS[robot], arrangement(), MOVER)
        n = len(arrangement())
        costs = {
            "goal": GoalDistanceCost(GOALS[0], MOVER),
            "energy": LearnedEnergyCost(model, w, MOVER, n),
        }
        for controller in args.controllers:
            for samples in [args.samples[0]] if controller == "ilqr" else args.samples:
                for name, cost in costs.items():
                    row = overhead(scene, cost, controller, samples, args.repeats)
                    row.update(robot=robot, controller=controller, samples=samples, cost=name)
                    result["overhead"].append(row)
                    print(f"{robot:8} {controller:5} {samples:4} {name:7} {row['plan_ms']:8.2f} "
                          f"{row['raw_ms']:8.2f} {row['ratio']:6.3f}")  # fmt: skip
    print(f"\n{'robot':8} {'ctrl':5} final error after {args.duration:g} s (mm), per goal")
    for robot in args.robots:
        scene = build_scene(ROBOTS[robot], arrangement(), MOVER)
        for controller in args.controllers:
            errors = []
            for goal in GOALS:
                ep = closed_loop(scene, GoalDistanceCost(goal, MOVER), controller, args.duration)
                target = scene.entity_map.to_world(goal)
                errors.append(1e3 * float(np.linalg.norm(ep.ee[-1, :2] - target)))
            result["reach"].append({"robot": robot, "controller": controller, "error_mm": errors})
            print(f"{robot:8} {controller:5} " + " ".join(f"{e:7.2f}" for e in errors))
    scene = build_scene(ROBOTS["arm"], arrangement(), MOVER)
    rtf = {}
    for name, cost in (
        ("goal", GoalDistanceCost(GOALS[0], MOVER)),
        ("energy", LearnedEnergyCost(model, w, MOVER, len(arrangement()))),
    ):
        ep = closed_loop(scene, cost, "mppi", 3.0)
        rtf[name] = ep.real_time_factor
    result["real_time_factor_arm_mppi"] = rtf
    result["load_average_end"] = os.getloadavg()
    print(f"\nreal-time factor, arm, mppi, 3 s: goal cost {rtf['goal']:.2f}, "
          f"learned energy {rtf['energy']:.2f}")  # fmt: skip
    print(f"load average at start {result['load_average_start']}, end {os.getloadavg()}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
