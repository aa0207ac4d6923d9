"""How consistent are inferred generation codes? Two demo sets of one instance against others.

For held-out tasks of each family, the code w_x is inferred twice: from the task's 5 demos
and from its 5 queries (5 more events of the same instance). Within: the mean distance
between the two codes of a task; across: the mean distance between codes of different
tasks. An oracle code (bench/oracle_codes.py) has within = 0. The same for the start of
code inference (the learned start plus the demo encoder's guess), and how far the Langevin
steps move the code from it (mean norm of code - start, beside the start's own norm).

    python bench/code_consistency.py --checkpoint CKPT [--concepts region-point ...]
                                     [--tasks 40] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from energy_model.checkpoint import DEFAULT_CHECKPOINT, load_model
from energy_model.data import collate
from energy_model.evaluation import held_out_tasks
from particle_world.io import write_json


def _within_across(a: torch.Tensor, b: torch.Tensor) -> dict:
    n = len(a)
    within = (a - b).norm(dim=1).mean().item()
    across = (torch.cdist(a, a).sum() / (n * (n - 1))).item()
    return {"within": within, "across": across, "ratio": within / across}


def consistency(model, family: str, n_tasks: int, seed: int) -> dict:
    batch = collate(held_out_tasks(family, "action", n_tasks, seed))
    sets = [(batch.demo_x, batch.demo_att, batch.demo_valid),
            (batch.query_x, batch.query_att, batch.query_valid)]  # fmt: skip
    with torch.enable_grad():
        codes = [model.infer_codes(*s, contexts="generation")[0].detach() for s in sets]
    with torch.no_grad():
        starts = [
            model.initial_codes(n_tasks, "generation", model.encoder and model.encoder(*s))
            for s in sets
        ]
    return {
        "code": _within_across(*codes),
        "start": _within_across(*starts),
        "start_norm": starts[0].norm(dim=1).mean().item(),
        "langevin_move": (codes[0] - starts[0]).norm(dim=1).mean().item(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument(
        "--concepts", nargs="+", default=["region-point", "region-hline", "region-circle"]
    )
    p.add_argument("--tasks", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    model = load_model(args.checkpoint)
    result = {c: consistency(model, c, args.tasks, args.seed) for c in args.concepts}
    print(f"{'concept':15s} {'what':6s} {'within':>7s} {'across':>7s} {'ratio':>6s}")
    for c, r in result.items():
        for what in ("code", "start"):
            q = r[what]
            print(f"{c:15s} {what:6s} {q['within']:7.3f} {q['across']:7.3f} {q['ratio']:6.2f}")
        print(f"{c:15s} start norm {r['start_norm']:.3f}, Langevin move {r['langevin_move']:.3f}")
    if args.json:
        write_json(args.json, {"checkpoint": args.checkpoint, **result})


if __name__ == "__main__":
    main()
