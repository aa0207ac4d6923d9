"""Do the generation codes w_x carry the direction of north / south / east / west?

For n held-out tasks of each direction family: the codes inferred from their demos, and the
queries' generated moves along the family's axis (positive: the demonstrated direction)
with the task's own code and with the code of the opposite family's task (north <-> south,
east <-> west). A model whose codes carry the direction moves the entity forward with its
own code and backward with the opposite one. Code distances compare tasks that share the
direction but not the mover's color with tasks that share the color but not the direction.

    python bench/direction_codes.py [--checkpoint assets/checkpoints/default.pt] [--n 10]
                                    [--seed 1] [--json bench/direction_codes.json]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

from energy_model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_model
from energy_model.inference import generate, infer_codes
from particle_world import entities as E
from particle_world import sample_task
from particle_world.io import write_json

AXES = {"north": (1, 1.0), "south": (1, -1.0), "east": (0, 1.0), "west": (0, -1.0)}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}


def forward_move(model, task, w_x, family: str) -> float:
    """Mean move of the attended query entities along the family's direction."""
    q = task.queries
    x = torch.as_tensor(q.x, dtype=torch.float32)
    att = torch.as_tensor(q.attention, dtype=torch.float32)
    out = generate(model, x, att, w_x, torch.as_tensor(q.valid))
    axis, sign = AXES[family]
    move = (out[:, -1, :, E.POS.start + axis] - x[:, 0, :, E.POS.start + axis]) * sign
    return float(move[att.bool()].mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--n", type=int, default=10, help="tasks per family")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("bench/direction_codes.json"))
    args = p.parse_args(argv)
    try:
        model = load_model(args.checkpoint)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    torch.manual_seed(args.seed)
    tasks = {
        f: [sample_task(f, np.random.default_rng([args.seed, k, i]), role="action")
            for i in range(args.n)]
        for k, f in enumerate(AXES)
    }  # fmt: skip
    codes = {f: [infer_codes(model, t.demos).w_x for t in ts] for f, ts in tasks.items()}
    rows = {}
    for f in AXES:
        own = [forward_move(model, t, w, f) for t, w in zip(tasks[f], codes[f], strict=True)]
        opp = [forward_move(model, t, w, f)
               for t, w in zip(tasks[f], codes[OPPOSITE[f]], strict=True)]  # fmt: skip
        rows[f] = {"move_own_code": float(np.mean(own)), "move_opposite_code": float(np.mean(opp))}
    flat = [(f, t.instance.argument_params.get("color"), w.flatten())
            for f in AXES for t, w in zip(tasks[f], codes[f], strict=True)]  # fmt: skip
    same_dir, same_color = [], []
    for (fa, ca, wa), (fb, cb, wb) in itertools.combinations(flat, 2):
        d = float((wa - wb).norm())
        if fa == fb and ca != cb:
            same_dir.append(d)
        elif fa != fb and ca == cb:
            same_color.append(d)
    dist = {"same_direction_other_color": float(np.mean(same_dir)),
            "same_color_other_direction": float(np.mean(same_color))}  # fmt: skip
    print(f"{'family':8s} {'move, own code':>15s} {'move, opposite code':>20s}")
    for f, r in rows.items():
        print(f"{f:8s} {r['move_own_code']:15.3f} {r['move_opposite_code']:20.3f}")
    print(f"code distance: same direction, other color {dist['same_direction_other_color']:.3f}; "
          f"same color, other direction {dist['same_color_other_direction']:.3f}")  # fmt: skip
    out = {"checkpoint": str(args.checkpoint), "n": args.n, "seed": args.seed,
           "moves": rows, "code_distance": dist}  # fmt: skip
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
