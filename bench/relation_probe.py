"""Can the relation network represent a placement when it is supervised directly?

Trains a fresh model's energy (the default RelationEnergy, its code held at zero: one
concept needs no code) as a plain discriminator on one family's queries, with no Langevin
chain and no demos: softplus(E(truth) - E(negative)) + 0.1 (E(truth)^2 + E(negative)^2),
Adam at a constant learning rate. The negative is either
- transplant: the outcome of another query of the task moved into this query's scene
  (energy_model.algorithm.transplanted_outcomes), wrong only in how it relates to the scene;
- uniform: what generation moves drawn uniformly within the world;
- bent: the truth with Gaussian noise (--bent-scale per coordinate, 0.3 by default) on
  one attended entity drawn at random, a near miss (a line bent, a figure skewed); at
  0.3 a third of line's and north's bent outcomes fail their family's scorer, at 0.1 one
  in 200, so 0.1 asks whether the energy ranks the exact truth first among right answers.
It reports the held-out pairwise accuracy, how often E(truth) < E(negative), by step. High
accuracy says the architecture can hold the relation, so where Algorithm 1 does not learn
it the training signal is to blame, not the network.

    python bench/relation_probe.py [--concept north] [--negatives transplant uniform bent]
                                   [--steps 600] [--batch-size 32] [--eval-every 100]
                                   [--bent-scale 0.3] [--pair-distance] [--seed 0]
                                   [--json FILE]
    python bench/relation_probe.py --concept line --negatives bent --wrong-only
        (no training: how many held-out negatives fail the family's own scorer)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from energy_model.algorithm import transplanted_outcomes
from energy_model.config import InferenceConfig, ModelConfig
from energy_model.data import TaskStream, collate
from energy_model.evaluation import held_out_tasks
from energy_model.model import ConceptModel, generation_mask, uniform_features
from particle_world.io import write_json

NEGATIVES = ("transplant", "uniform", "bent")
BENT_SCALE = 0.3
"""The bent negatives' default noise (per coordinate, world units)."""


def negatives(kind: str, query_x, query_att, gen: torch.Generator, bent_scale: float = BENT_SCALE):
    """([B*Kq, T+1, N, D] negatives, ok [B*Kq]) for the flattened queries."""
    traj, att = query_x.flatten(0, 1), query_att.flatten(0, 1)
    if kind == "transplant":
        return transplanted_outcomes(query_x, query_att)
    mask = generation_mask(traj, att)
    ok = torch.ones(len(traj), dtype=torch.bool)
    if kind == "uniform":
        return uniform_features(traj, mask, gen), ok
    one = torch.multinomial(att, 1, generator=gen).squeeze(1)  # an attended entity per query
    mask = mask * F.one_hot(one, att.shape[1]).to(mask.dtype)[:, None, :, None]
    return traj + bent_scale * torch.randn(traj.shape, generator=gen) * mask, ok


def pair_energies(model, batch, kind: str, gen: torch.Generator, bent_scale: float = BENT_SCALE):
    """Energies of the truths and of their negatives, on the queries that have one."""
    x_neg, ok = negatives(kind, batch.query_x, batch.query_att, gen, bent_scale)
    traj, att, valid = (t.flatten(0, 1) for t in (batch.query_x, batch.query_att,
                                                  batch.query_valid))  # fmt: skip
    w = torch.zeros(len(traj), model.net.cfg.code_dim)
    e_pos = model.generation_energy(traj[ok], att[ok], w[ok], valid[ok])
    e_neg = model.generation_energy(x_neg[ok], att[ok], w[ok], valid[ok])
    return e_pos, e_neg


def wrong_fraction(concept: str, kind: str, seed: int, bent_scale: float) -> float:
    """The fraction of the held-out negatives (the probe's own) that fail the family's
    scorer: how many of them are wrong answers, not only different ones."""
    held_out = collate(held_out_tasks(concept, "action", 40, seed + 1))
    gen = torch.Generator().manual_seed(seed)
    x_neg, ok = negatives(kind, held_out.query_x, held_out.query_att, gen, bent_scale)
    att = held_out.query_att.flatten(0, 1)
    kq = held_out.query_x.shape[1]
    wrong = [
        not held_out.instances[q // kq].generation_success(x_neg[q].numpy(), att[q].numpy())
        for q in ok.nonzero().squeeze(1).tolist()
    ]
    return sum(wrong) / max(len(wrong), 1)


def probe(concept: str, kind: str, steps: int, batch_size: int, every: int, seed: int,
          pair_distance: bool = False, bent_scale: float = BENT_SCALE):  # fmt: skip
    """{step: held-out pairwise accuracy} of one discriminator run."""
    torch.manual_seed(seed)
    model = ConceptModel(ModelConfig(pair_distance=pair_distance), InferenceConfig())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    stream = TaskStream([(concept, "action")], batch_size, seed)
    held_out = collate(held_out_tasks(concept, "action", 40, seed + 1))
    gen = torch.Generator().manual_seed(seed)
    accuracy = {}
    for step in range(1, steps + 1):
        e_pos, e_neg = pair_energies(model, stream.batch(step), kind, gen, bent_scale)
        loss = F.softplus(e_pos - e_neg).mean() + 0.1 * (e_pos.square() + e_neg.square()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            with torch.no_grad():
                e_pos, e_neg = pair_energies(model, held_out, kind, gen, bent_scale)
            accuracy[step] = float((e_pos < e_neg).float().mean())
            print(
                f"{concept} {kind:>10s} step {step:5d}: accuracy {accuracy[step]:.3f}", flush=True
            )
    return accuracy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--concept", default="north", help="a family with an action role")
    p.add_argument("--negatives", nargs="+", choices=NEGATIVES, default=list(NEGATIVES))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32, help="tasks a step (5 queries each)")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="training stream; held-out: seed + 1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pair-distance", action="store_true", help="g also reads pair distances")
    p.add_argument("--bent-scale", type=float, default=BENT_SCALE, help="the bent negatives' noise")
    p.add_argument("--json", type=Path, help="write the accuracies here")
    p.add_argument("--wrong-only", action="store_true", help="only report wrong_fraction")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.wrong_only:
        for kind in args.negatives:
            frac = wrong_fraction(args.concept, kind, args.seed, args.bent_scale)
            print(f"{args.concept} {kind}: {frac:.3f} of held-out negatives fail the scorer")
        return 0
    try:
        rows = {
            kind: probe(
                args.concept,
                kind,
                args.steps,
                args.batch_size,
                args.eval_every,
                args.seed,
                args.pair_distance,
                args.bent_scale,
            )
            for kind in args.negatives
        }
    except (KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        meta = {"concept": args.concept, "steps": args.steps, "batch_size": args.batch_size,
                "seed": args.seed, "pair_distance": args.pair_distance,
                "bent_scale": args.bent_scale}  # fmt: skip
        write_json(args.json, meta | {"accuracy": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
