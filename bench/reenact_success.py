"""Success of reenactments over random arrangements, per concept, controller and robot.

    python bench/reenact_success.py [--concepts region-point between north south east west]
        [--controllers ps mppi cem ilqr] [--robots arm jaco reacher] [--n 20]
        [--duration 3] [--checkpoint assets/checkpoints/default.pt] [--cost energy]
        [--json bench/reenact_success.json]

Arrangement i is `reenact.py --seed i` without the video: demos and codes of task i, a fresh
arrangement of its instance, closed-loop MPC, particle_world's success on the mapped start
and end states. `--cost oracle` swaps the learned energy for the distance to the ground-truth
end position: the gap between the two tables is what the energy (not the control) loses.
The JSON is rewritten after every cell, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from particle_world.io import write_json  # noqa: E402
from robot_transfer.controllers import CONTROLLERS  # noqa: E402
from robot_transfer.reenact import DEFAULT_CHECKPOINT, ReenactConfig, reenact  # noqa: E402
from robot_transfer.robots import ROBOTS  # noqa: E402
from robot_transfer.transfer import COSTS  # noqa: E402

CONCEPTS = ("region-point", "between", "north", "south", "east", "west")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concepts", nargs="+", default=list(CONCEPTS))
    p.add_argument("--controllers", nargs="+", default=list(CONTROLLERS), choices=list(CONTROLLERS))
    p.add_argument("--robots", nargs="+", default=list(ROBOTS), choices=list(ROBOTS))
    p.add_argument("--n", type=int, default=20, help="arrangements per cell")
    p.add_argument("--duration", type=float, default=3.0, help="simulated seconds")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--cost", default="energy", choices=COSTS)
    p.add_argument("--json", default="bench/reenact_success.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cells = []
    result = {"args": vars(args), "cells": cells}
    print(f"{'robot':8} {'ctrl':5} {'concept':13} {'success':>8} {'mean err':>9} {'id ee':>6} "
          f"{'2d err':>7}")  # fmt: skip
    for robot in args.robots:
        for controller in args.controllers:
            for concept in args.concepts:
                cells.append(cell(robot, controller, concept, args))
                c = cells[-1]
                ident, err2d = c["identified_ee_rate"], c["mean_generation_error_2d"]
                print(f"{robot:8} {controller:5} {concept:13} {c['success_rate']:8.2f} "
                      f"{c['mean_generation_error']:9.4f} "
                      f"{'     -' if ident is None else f'{ident:6.2f}'} "
                      f"{'      -' if err2d is None else f'{err2d:7.4f}'}")  # fmt: skip
                write_json(args.json, result, default=str)  # paths as text


def cell(robot: str, controller: str, concept: str, args) -> dict:
    """Reenactments of seeds 0 .. n-1 and their success rate."""
    start, runs = time.perf_counter(), []
    for seed in range(args.n):
        cfg = ReenactConfig(
            concept=concept, checkpoint=args.checkpoint, robot=robot, controller=controller,
            cost=args.cost, seed=seed, duration=args.duration, out=None,
        )  # fmt: skip
        runs.append(reenact(cfg, progress=False))
    ident = [r["identified_ee"] for r in runs if "identified_ee" in r]
    errors_2d = [r["generation_error_2d"] for r in runs if "generation_error_2d" in r]
    return {
        "robot": robot,
        "controller": controller,
        "concept": concept,
        "success_rate": float(np.mean([r["success"] for r in runs])),
        "mean_generation_error": float(np.mean([r["generation_error"] for r in runs])),
        "identified_ee_rate": float(np.mean(ident)) if ident else None,
        "mean_generation_error_2d": float(np.mean(errors_2d)) if errors_2d else None,
        "wall_s": time.perf_counter() - start,
        "runs": runs,
    }


if __name__ == "__main__":
    main()
