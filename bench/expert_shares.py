"""Which network of a mixture (ModelConfig.experts) each family's codes choose.

For every family and role (all, or those named), infers the codes
of held-out tasks from their demos as the evaluation does (w_x for an action, w_a for an
argument) and reports the mixture's mean shares pi(w) and the mean of each task's largest
share: near 1/K the codes mix every network evenly, near 1 each task has one network.

    python bench/expert_shares.py --checkpoint CKPT [--concepts a,b] [--roles action]
                                  [--tasks 20] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys

import torch

from energy_model.checkpoint import load_model
from energy_model.config import ROLES
from energy_model.data import collate, concept_list, units
from energy_model.evaluation import held_out_tasks
from particle_world.io import write_json

CONTEXT_OF_ROLE = {"action": "generation", "argument": "identification"}


def shares(model, family: str, role: str, n_tasks: int, seed: int) -> torch.Tensor:
    """[n_tasks, K]: the shares of the codes inferred from each held-out task's demos."""
    context = CONTEXT_OF_ROLE[role]
    net = model.context_net(context)
    if not hasattr(net, "shares"):
        raise SystemExit(f"{context}'s network is no mixture: train with --model.experts 2+")
    batch = collate(held_out_tasks(family, role, n_tasks, seed))
    w_x, w_a = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid,
                                 contexts=context)  # fmt: skip
    with torch.no_grad():
        return net.shares(w_x if context == "generation" else w_a)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--concepts", default=None, help="comma-separated families (default: all)")
    p.add_argument("--roles", nargs="+", default=list(ROLES), choices=ROLES)
    p.add_argument("--tasks", type=int, default=20, help="held-out tasks per family and role")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out tasks")
    p.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_model(args.checkpoint)
    rows = {}
    print(f"{'family':16s} {'role':9s} mean shares{'':14s} largest share")
    for family, role in units(concept_list(args.concepts), tuple(args.roles)):
        pi = shares(model, family, role, args.tasks, args.seed)
        mean = [round(v, 3) for v in pi.mean(0).tolist()]
        largest = round(pi.max(1).values.mean().item(), 3)
        rows[f"{family}/{role}"] = {"mean_shares": mean, "largest_share": largest}
        print(f"{family:16s} {role:9s} {' '.join(f'{v:.2f}' for v in mean):25s} {largest:.2f}")
    if args.json:
        write_json(args.json, {"checkpoint": str(args.checkpoint), "seed": args.seed,
                               "tasks": args.tasks, "units": rows})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
