"""Do the inferred codes carry the concept? Held-out errors and success with each task's own
codes against codes inferred from another task's demos (the previous task of the batch).

If swapping codes changes nothing, the model ignores its codes and only learned what all
instances share; a large gap means the codes hold the instance (the place, the color).

    python bench/code_swap.py [--checkpoint runs/transfer-both/final.pt] [--concept region-point]
                              [--tasks 20] [--seed 1] [--json bench/code_swap.json]

The default checkpoint is the transfer table's both-contexts model
(`python -m energy_model.evaluate --transfer-table --train-steps 400`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from energy_model.checkpoint import load_model
from energy_model.evaluation import evaluate_unit
from particle_world.io import write_json

CONTEXTS = ("generation", "identification")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=Path("runs/transfer-both/final.pt"))
    p.add_argument("--concept", default="region-point", help="an action family")
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("bench/code_swap.json"))
    args = p.parse_args(argv)
    model = load_model(args.checkpoint)
    rows = {
        name: {
            c: evaluate_unit(
                model, args.concept, "action", args.tasks, args.seed, context=c, code_shift=shift
            )
            for c in CONTEXTS
        }  # fmt: skip
        for name, shift in (("own codes", 0), ("another task's codes", 1))
    }
    print(f"{'codes':22s} {'gen_err':>8s} {'gen_ok':>7s} {'att_err':>8s} {'att_ok':>7s}")
    for name, r in rows.items():
        g, a = r["generation"], r["identification"]
        print(f"{name:22s} {g['error']:8.4f} {g['success_rate']:7.0%} "
              f"{a['error']:8.4f} {a['success_rate']:7.0%}")  # fmt: skip
    out = {"checkpoint": str(args.checkpoint), "concept": args.concept, "tasks": args.tasks,
           "seed": args.seed, "rows": rows}  # fmt: skip
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
