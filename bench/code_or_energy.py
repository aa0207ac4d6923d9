"""Is a failing concept's code or its energy at fault? Two checks per action family.

- Code probe: a ridge regression from the inferred generation code w_x to the instance's
  numeric parameters (region-point's point, a circle's centre and radius), fitted on 3/4 of
  the tasks, R^2 on the rest per parameter. Near 1: the code holds the instance.
- Energy: on the queries, mean E at the start x^0 (unmoved), at the demonstrated outcome
  and at the chain's sample, the fraction of queries whose demonstrated outcome scores
  below the sample, and the distance of the sample's attended entities to the
  demonstration's, in all and along each axis. An energy whose start-to-truth margin is
  small, or whose samples score below the truth far from it, has not learned the concept,
  whatever its code holds; a sample on the right line but off along it shows an energy
  that learned only what the concept shares with a line.

    python bench/code_or_energy.py [--checkpoint assets/checkpoints/default.pt]
                                   [--concepts region-point region-circle ...]
                                   [--tasks 200] [--seed 7] [--json bench/code_or_energy.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from energy_model.checkpoint import DEFAULT_CHECKPOINT, load_model
from energy_model.data import collate
from energy_model.model import ConceptModel, generation_start
from particle_world import entities as E
from particle_world import sample_task
from particle_world.io import write_json

CHUNK = 40


def _numeric(params: dict) -> list[float]:
    return [float(v) for value in params.values() for v in np.atleast_1d(value)]


def probe_r2(codes: np.ndarray, targets: np.ndarray, ridge: float = 1e-3) -> list[float] | None:
    """Held-out R^2 per target column of a ridge fit on the first 3/4 of the rows."""
    if targets.shape[1] == 0:
        return None
    x = np.c_[codes, np.ones(len(codes))]
    cut = 3 * len(x) // 4
    beta = np.linalg.solve(
        x[:cut].T @ x[:cut] + ridge * np.eye(x.shape[1]), x[:cut].T @ targets[:cut]
    )
    resid = ((x[cut:] @ beta - targets[cut:]) ** 2).sum(0)
    return (1 - resid / ((targets[cut:] - targets[cut:].mean(0)) ** 2).sum(0)).round(3).tolist()


def check(model: ConceptModel, family: str, n_tasks: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    codes, params, energies = [], [], {"start": [], "truth": [], "sample": []}
    below, dist, axis_gaps = [], [], []
    for start in range(0, n_tasks, CHUNK):
        tasks = [
            sample_task(family, rng, role="action") for _ in range(min(CHUNK, n_tasks - start))
        ]
        b = collate(tasks)
        w_x, _ = model.infer_codes(b.demo_x, b.demo_att, b.demo_valid, contexts="generation")
        w_x = w_x.detach()
        codes.append(w_x.numpy())
        params += [_numeric(t.instance.action_params) for t in tasks]
        traj, att, val = (t.flatten(0, 1) for t in (b.query_x, b.query_att, b.query_valid))
        w = w_x.repeat_interleave(b.query_x.shape[1], 0)
        sample = model.generate(traj, att, w, val)
        with torch.no_grad():
            e = {
                "start": model.generation_energy(generation_start(traj, att), att, w, val),
                "truth": model.generation_energy(traj, att, w, val),
                "sample": model.generation_energy(sample, att, w, val),
            }
        for k, v in e.items():
            energies[k].append(v.numpy())
        below.append((e["truth"] < e["sample"]).numpy())
        gap = (sample[:, -1, :, E.POS] - traj[:, -1, :, E.POS])[att > 0.5]
        dist.append(gap.norm(dim=-1).numpy())
        axis_gaps.append(gap.abs().numpy())
    return {
        "code_probe_r2": probe_r2(np.concatenate(codes), np.array(params)),
        **{f"energy_{k}": round(float(np.concatenate(v).mean()), 4) for k, v in energies.items()},
        "truth_below_sample": round(float(np.concatenate(below).mean()), 3),
        "sample_to_truth": round(float(np.concatenate(dist).mean()), 4),
        "sample_to_truth_xy": np.concatenate(axis_gaps).mean(0).round(4).tolist(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument(
        "--concepts", nargs="+",
        default=["region-point", "region-hline", "region-vline", "region-circle"],
    )  # fmt: skip
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, default=Path("bench/code_or_energy.json"))
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_model(args.checkpoint)
    rows = {c: check(model, c, args.tasks, args.seed) for c in args.concepts}
    print(f"{'concept':14s} {'probe R2':>16s} {'E start':>8s} {'E truth':>8s} {'E sample':>9s} "
          f"{'truth<sample':>12s} {'dist':>6s} {'|dx|':>6s} {'|dy|':>6s}")  # fmt: skip
    for c, r in rows.items():
        r2 = " ".join(f"{v:.2f}" for v in r["code_probe_r2"] or [])
        print(f"{c:14s} {r2:>16s} {r['energy_start']:8.3f} {r['energy_truth']:8.3f} "
              f"{r['energy_sample']:9.3f} {r['truth_below_sample']:12.0%} "
              f"{r['sample_to_truth']:6.3f} {r['sample_to_truth_xy'][0]:6.3f} "
              f"{r['sample_to_truth_xy'][1]:6.3f}")  # fmt: skip
    out = {"checkpoint": str(args.checkpoint), "tasks": args.tasks, "seed": args.seed, "rows": rows}
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
