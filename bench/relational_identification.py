"""Closest / farthest identification: does the energy rank entities by their distance to the
cross, and can the network learn that ranking at all?

    python bench/relational_identification.py --checkpoint CKPT [--concepts closest farthest]
    python bench/relational_identification.py --supervised 500 [--concepts closest]
        [--negative softmax|hardest] [--pair-distance]

--checkpoint: on held-out argument tasks (20 x 5 queries, seed 1), the identification
energies of every single-entity mask of each query: their rank correlation with the
ordinary entities' distance to the cross (Spearman, mean over queries; closest is right
at +1, farthest at -1), how often the truth is the lowest, how often the cross itself
is (never right: it is not an ordinary entity), and how often the lowest ordinary entity
is the one closest to the cross, the one farthest from it, or the most isolated one (the
largest summed distance to every other entity; the farthest from the cross in about
three queries of four, the closest in one of twenty), whatever the family.
--supervised N: the same RelationEnergy with a fixed zero code, trained N steps directly on
each query's single-entity masks (32 tasks x 5 queries a step): the held-out share of
queries whose truth is lowest, every 100 steps. If it learns and the meta-trained model
does not, the relation is expressible and Algorithm 1's signal is what falls short
(docs/learning.md, "A softmax over neighboring masks"). --negative picks the loss: a
cross-entropy over all of them ('softmax'), or L_ML's form, softplus(E(truth) - E(wrong)),
against the lowest-energy wrong single mask ('hardest'), the one negative per query that
Algorithm 1 gives when its search or chain finds another entity. --pair-distance gives g
each pair's distance as an input (ModelConfig.pair_distance): with it the one negative
learns closest in 100 steps (docs/learning.md, "A distance input").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from energy_model.checkpoint import CheckpointError, load_model
from energy_model.config import ModelConfig
from energy_model.data import collate
from energy_model.evaluation import held_out_tasks
from energy_model.network import build_energy
from particle_world import entities as E
from particle_world import sample_task
from particle_world.io import write_json
from particle_world.scene import refs_of


def single_mask_energies(energy, x0, valid):
    """energy(x0 [R, N, D], masks [R, N], rows [R]) of every single-entity mask of scenes x0
    [Q, N, D] -> [Q, N], inf where an entity is padding."""
    q, n = valid.shape
    rows = torch.arange(q).repeat_interleave(n)
    e = energy(x0[rows], torch.eye(n).repeat(q, 1), rows).view(q, n)
    return e.masked_fill(~valid.bool(), torch.inf)


def query_scenes(batch):
    """A batch's queries as scenes: x0 [Q, N, D], the attended entity [Q], valid [Q, N]."""
    return (
        batch.query_x[:, :, 0].flatten(0, 1),
        batch.query_att.flatten(0, 1).argmax(1),
        batch.query_valid.flatten(0, 1),
    )


def probe(model, family: str, tasks: int, seed: int) -> dict:
    batch = collate(held_out_tasks(family, "argument", tasks, seed))
    with torch.enable_grad():
        _, w_a = model.infer_codes(
            batch.demo_x, batch.demo_att, batch.demo_valid, contexts="identification"
        )
    x0, truth, valid = query_scenes(batch)
    w = w_a.repeat_interleave(batch.query_x.shape[1], 0)
    with torch.no_grad():
        e = single_mask_energies(
            lambda x, m, r: model.identification_energy(x, m, w[r], valid[r]), x0, valid
        )
    rhos, crosses, ranks, isolated = [], [], [], []
    for q in range(len(x0)):
        xs = x0[q, : int(valid[q].sum())].numpy()
        cross = refs_of(xs)[0]
        crosses.append(cross)
        ordinary = [i for i in range(len(xs)) if i != cross]
        dist = np.linalg.norm(xs[ordinary, E.POS] - xs[cross, E.POS], axis=1)
        rhos.append(spearmanr(e[q, ordinary].numpy(), dist).correlation)
        lowest = int(e[q, ordinary].argmin())
        ranks.append((dist < dist[lowest]).sum() / (len(ordinary) - 1))
        pos = xs[:, E.POS]
        spread = [np.linalg.norm(pos - pos[i], axis=1).sum() for i in ordinary]
        isolated.append(spread[lowest] == max(spread))
    ranks = np.array(ranks)
    return {
        "spearman_energy_distance": float(np.nanmean(rhos)),
        "truth_lowest": float((e.argmin(1) == truth).float().mean()),
        "cross_lowest": float((e.argmin(1) == torch.tensor(crosses)).float().mean()),
        "lowest_is_closest": float((ranks == 0).mean()),
        "lowest_is_farthest": float((ranks == 1).mean()),
        "lowest_is_most_isolated": float(np.mean(isolated)),
    }


def supervised(
    family: str, steps: int, negative: str = "softmax", pair_distance: bool = False
) -> dict:
    torch.manual_seed(0)
    net = build_energy(ModelConfig(code_scale=True, pair_distance=pair_distance))
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def scenes(seed, n):
        tasks = [sample_task(family, np.random.default_rng([seed, i]), role="argument")
                 for i in range(n)]  # fmt: skip
        return query_scenes(collate(tasks))

    w = torch.zeros(1, net.cfg.code_dim)

    def energies(x0, valid):
        return single_mask_energies(
            lambda x, m, r: net(x[:, None], m, w.expand(len(r), -1), valid[r]), x0, valid
        )

    curve = {}
    for step in range(steps):
        x0, truth, valid = scenes(step, 32)
        e = energies(x0, valid)
        if negative == "softmax":
            ml = F.cross_entropy(-e, truth)
        else:
            wrong = e.scatter(1, truth[:, None], torch.inf).min(1).values
            ml = F.softplus(e.gather(1, truth[:, None]).squeeze(1) - wrong).mean()
        loss = ml + 0.1 * e[valid.bool()].square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            x0, truth, valid = scenes(10**6 + step, 64)
            with torch.no_grad():
                curve[step + 1] = float((energies(x0, valid).argmin(1) == truth).float().mean())
            print(f"step {step + 1}: truth lowest on {curve[step + 1]:.1%} of held-out queries")
    return {"truth_lowest_by_step": curve}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--checkpoint", type=Path)
    mode.add_argument("--supervised", type=int, metavar="STEPS")
    p.add_argument("--concepts", nargs="+", default=["closest", "farthest"])
    p.add_argument("--negative", choices=("softmax", "hardest"), default="softmax")
    p.add_argument("--pair-distance", action="store_true",
                   help="--supervised: the network with ModelConfig.pair_distance on")  # fmt: skip
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("bench/relational_identification.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.supervised is not None:
        out = {
            c: supervised(c, args.supervised, args.negative, args.pair_distance)
            for c in args.concepts
        }
    else:
        try:
            model = load_model(args.checkpoint)
        except (CheckpointError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out = {c: probe(model, c, args.tasks, args.seed) for c in args.concepts}
        for c, r in out.items():
            print(f"{c:10s} spearman(E, distance) {r['spearman_energy_distance']:+.3f}   "
                  f"truth lowest {r['truth_lowest']:.1%}   "
                  f"cross lowest {r['cross_lowest']:.1%}   "
                  f"lowest is the closest {r['lowest_is_closest']:.1%}, "
                  f"the farthest {r['lowest_is_farthest']:.1%}, "
                  f"the most isolated {r['lowest_is_most_isolated']:.1%}")  # fmt: skip
    write_json(args.json, {"argv": sys.argv[1:] if argv is None else argv, **out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
