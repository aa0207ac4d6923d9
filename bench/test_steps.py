"""How does the length of the test-time Langevin chains change held-out success?

The model is trained with K steps per chain (10); at test time the chains for x and a can
run longer, the learned step size of the last step reused. This evaluates one checkpoint
at several chain lengths on the same held-out tasks and prints success per family, and in a
last column ('demos') with the length picked per task among them on its own demos
(energy_model.chain_length).

    python bench/test_steps.py [--checkpoint assets/checkpoints/default.pt] [--steps 10 20 30]
                               [--tasks 20] [--seed 1] [--json bench/test_steps.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from energy_model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_model
from energy_model.data import concept_list, units
from energy_model.evaluation import evaluate
from particle_world.io import write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 30])
    p.add_argument("--concepts", help="comma-separated families (default: all)")
    p.add_argument("--tasks", type=int, default=20, help="held-out tasks per family and role")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out tasks")
    p.add_argument("--json", type=Path, default=Path("bench/test_steps.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    concepts = concept_list(args.concepts)
    try:
        model = load_model(args.checkpoint)
        n_units = len(units(concepts))
    except (CheckpointError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    columns = {f"K={k}": k for k in args.steps} | {"demos": args.steps}
    success: dict[str, dict[str, float]] = {}
    with tqdm(total=n_units * len(columns), ncols=100) as bar:
        for name, steps in columns.items():
            result = evaluate(model, concepts, args.tasks, args.seed, steps, progress=bar)
            success[name] = {c: r["success_rate"] for c, r in result["concepts"].items()}
    families = list(success["demos"])
    print(f"{'concept':16s}" + "".join(f"{name:>8s}" for name in columns))
    for c in families:
        print(f"{c:16s}" + "".join(f"{100 * success[name][c]:7.0f}%" for name in columns))
    means = {name: float(np.mean(list(success[name].values()))) for name in columns}
    print(f"{'mean':16s}" + "".join(f"{100 * means[name]:7.1f}%" for name in columns))
    write_json(
        args.json,
        {
            "checkpoint": str(args.checkpoint),
            "tasks": args.tasks,
            "seed": args.seed,
            "success": {name.removeprefix("K="): success[name] for name in columns},
            "mean_success": {name.removeprefix("K="): means[name] for name in columns},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
