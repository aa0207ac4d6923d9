"""Do the inferred codes carry the concept? Held-out errors with each task's own codes
against codes inferred from another task's demos (the next task in the batch).

If swapping codes changes nothing, the model ignores its codes and only learned what all
instances share; a large gap means the codes hold the instance (the place, the color).

    python bench/code_swap.py [--checkpoint runs/transfer-both/final.pt] [--concept region-point]
                              [--tasks 20] [--seed 1] [--json bench/code_swap.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from energy_model.checkpoint import load_model
from energy_model.data import collate
from energy_model.evaluation import EVAL_STREAM
from particle_world import sample_task


def errors(model, tasks, batch, w_x, w_a) -> dict:
    """Mean generation error, attention error and misidentification rate over the queries."""
    kq = batch.query_x.shape[1]
    traj, att, valid = (
        t.flatten(0, 1) for t in (batch.query_x, batch.query_att, batch.query_valid)
    )
    with torch.enable_grad():
        x = model.generate(traj, att, w_x.repeat_interleave(kq, 0), valid).detach()
        logits = model.identify(traj[:, 0], w_a.repeat_interleave(kq, 0), valid).detach()
    prob = torch.sigmoid(logits) * valid
    gen, attn = [], []
    for q in range(traj.shape[0]):
        inst, keep = tasks[q // kq].instance, valid[q].numpy()
        a_true = att[q].numpy()[keep]
        gen.append(inst.generation_error(x[q].numpy()[:, keep], a_true))
        attn.append(inst.attention_error(traj[q, 0].numpy()[keep], prob[q].numpy()[keep], a_true))
    wrong = (prob - att).abs().gt(0.5).any(dim=1).float().mean().item()
    return {
        "generation_error": float(np.mean(gen)),
        "attention_error": float(np.mean(attn)),
        "misidentified": wrong,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=Path("runs/transfer-both/final.pt"))
    p.add_argument("--concept", default="region-point")
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("bench/code_swap.json"))
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_model(args.checkpoint)
    tasks = [
        sample_task(args.concept, np.random.default_rng([args.seed, EVAL_STREAM, i]))
        for i in range(args.tasks)
    ]
    batch = collate(tasks)
    with torch.enable_grad():
        w_x, w_a = (
            w.detach() for w in model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid)
        )
    rows = {
        "own codes": errors(model, tasks, batch, w_x, w_a),
        "another task's codes": errors(model, tasks, batch, w_x.roll(1, 0), w_a.roll(1, 0)),
    }
    print(f"{'codes':22s} {'gen_err':>8s} {'att_err':>8s} {'misidentified':>14s}")
    for name, r in rows.items():
        print(f"{name:22s} {r['generation_error']:8.4f} {r['attention_error']:8.4f} "
              f"{r['misidentified']:14.1%}")  # fmt: skip
    out = {"checkpoint": str(args.checkpoint), "concept": args.concept, "tasks": args.tasks,
           "seed": args.seed, "rows": rows}  # fmt: skip
    args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
