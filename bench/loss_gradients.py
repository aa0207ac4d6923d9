"""How much of the energy's gradient does each term of Algorithm 1 bring?

For one training batch of a concept, the norm of the gradient that each loss term (L_ML and
L_KL of each context, and the rest: the energy^2 regulariser and any optional term), under
the loss config the checkpoint was trained with, gives the energy network's parameters,
taken apart before they are summed, clipped and handed to Adam; and the cosine between the
generation terms. A term whose gradient is orders of magnitude below the others' moves the
shared weights hardly at all once the sum is clipped.

    python bench/loss_gradients.py [--checkpoint CKPT | --untrained] [--concept square]
                                   [--tasks 32] [--seed 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from energy_model.algorithm import meta_loss
from energy_model.checkpoint import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    load_model,
    read_checkpoint,
)
from energy_model.config import LossConfig, TrainConfig, from_dict
from energy_model.data import TaskStream
from energy_model.model import CODE_CONTEXTS
from energy_model.train import build_model
from particle_world.io import write_json

TERMS = ("ml_x", "kl_x", "ml_a", "kl_a")


def training_loss(path) -> LossConfig:
    """The loss config a checkpoint was trained with."""
    try:
        return from_dict(LossConfig, read_checkpoint(path)["train_config"]["loss"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: no loss config this code can read ({exc})") from exc


def loss_gradients(model, cfg: LossConfig, concept: str, n_tasks: int, seed: int) -> dict:
    """Per-term gradient norms on the energy networks' parameters (both contexts' with
    context_nets) for one batch."""
    model.train()
    batch = TaskStream([(concept, "action")], n_tasks, seed=seed).batch(0)
    out = meta_loss(model, batch, cfg)
    reg = out["loss"] - sum(out[t] for t in TERMS if t in out)  # energy^2 (and extra) terms
    nets = dict.fromkeys(model.context_net(c) for c in CODE_CONTEXTS)  # one when shared
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    grads = {}
    for name, term in [*((t, out[t]) for t in TERMS if t in out), ("rest", reg)]:
        g = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        grads[name] = torch.cat(
            [
                (x if x is not None else torch.zeros_like(p)).flatten()
                for x, p in zip(g, params, strict=True)
            ]
        )
    norms = {k: v.norm().item() for k, v in grads.items()}
    cosine = torch.nn.functional.cosine_similarity(grads["ml_x"], grads["kl_x"], dim=0).item()
    values = {t: out[t].item() for t in TERMS if t in out}
    return {"grad_norm": norms, "cosine_ml_x_kl_x": cosine, "value": values}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--untrained", action="store_true", help="a fresh network (seed --seed)")
    p.add_argument("--concept", default="square", help="an action family")
    p.add_argument("--tasks", type=int, default=32, help="tasks in the batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch (and fresh weights)")
    p.add_argument("--json", type=Path, help="write the table here too")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    try:
        if args.untrained:
            model, cfg = build_model(TrainConfig(seed=args.seed)), LossConfig()
        else:
            model, cfg = load_model(args.checkpoint), training_loss(args.checkpoint)
        result = loss_gradients(model, cfg, args.concept, args.tasks, args.seed)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{'term':>10s} {'value':>8s} {'|grad|':>10s}")
    for k, n in result["grad_norm"].items():
        v = result["value"].get(k)
        print(f"{k:>10s} {'' if v is None else f'{v:8.4f}':>8s} {n:10.4g}")
    print(f"cosine(ml_x, kl_x) = {result['cosine_ml_x_kl_x']:+.3f}")
    if args.json:
        source = "untrained" if args.untrained else str(args.checkpoint)
        meta = {"checkpoint": source, "concept": args.concept, "tasks": args.tasks,
                "seed": args.seed}  # fmt: skip
        write_json(args.json, meta | result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
