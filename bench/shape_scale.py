"""Where do a shape family's samples go as the generation chain runs on?

For a shape family (triangle, square, line), two tables on held-out queries:
- the chain run well past its trained length: at chosen steps, the mean fit of the
  attended entities to the figure (for a polygon, the rms after the best similarity and
  the circumradius; for a line, the rms distance to the best-fit line and the extent
  along it), the share of queries where that size exceeds the demonstrated figure's, the
  shortest over the longest distance between attended entities (dmin/dmax), the share
  of queries whose sample scores below the demonstrated outcome, and the success rate,
  beside the demonstrated outcomes' own fit and the chain's start (x^0: where the first
  negatives of training lie);
- the energy of each demonstrated outcome with its attended entities scaled about their
  centroid by s, against the outcome's own: the mean difference and the share of queries
  where the scaled figure scores lower.
A sample whose radius keeps falling below the truth's, and shrunken outcomes that score
below the truth, show an energy whose minimum is a shrunken figure, not one of the
demonstrated size; a dmin/dmax away from the truth's, proportions other than the
figure's.

    python bench/shape_scale.py --checkpoint CKPT [--concept square] [--steps 5 10 20 40 80]
                                [--scales 0 0.25 0.5 0.75 1.25 1.5] [--tasks 20] [--seed 1]
                                [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from energy_model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_model
from energy_model.data import collate
from energy_model.evaluation import held_out_tasks
from energy_model.model import generation_start
from particle_world import entities as E
from particle_world import get_family
from particle_world.geometry import line_fit, similarity_fit
from particle_world.io import write_json


def figure_fit(concept: str):
    """(size name, fit): fit(x_last [N, D], attention [N]) -> (rms, size) of the attended
    entities' positions against the concept's figure: a polygon's circumradius, a line's
    extent."""
    if concept == "line":
        return "extent", lambda x, a: line_fit(x[a > 0.5][:, E.POS].astype(np.float64))
    template = getattr(get_family(concept).action, "template", None)
    if template is None:
        raise ValueError(f"{concept!r} is not a shape family (triangle, square, line)")
    return "radius", lambda x, a: similarity_fit(x[a > 0.5][:, E.POS].astype(np.float64), template)


def pair_spread(x_last: np.ndarray, attention: np.ndarray) -> float:
    """Shortest over longest distance between attended entities: 0.5 for three evenly
    spaced on a line, 1 for an equilateral triangle, 0.71 for a square."""
    p = x_last[attention > 0.5][:, E.POS].astype(np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)[np.triu_indices(len(p), 1)]
    return float(d.min() / max(d.max(), 1e-12))


def scaled_outcomes(traj: torch.Tensor, att: torch.Tensor, s: float) -> torch.Tensor:
    """traj [B, T+1, N, D] with the attended entities' final positions scaled by s about
    their centroid."""
    x = traj.clone()
    pos, gate = x[:, -1, :, E.POS], att[:, :, None]
    centre = (pos * gate).sum(1, keepdim=True) / gate.sum(1, keepdim=True)
    x[:, -1, :, E.POS] = torch.where(gate > 0.5, centre + s * (pos - centre), pos)
    return x


def shape_scale(model, concept, steps, scales, n_tasks: int, seed: int) -> dict:
    size, fit = figure_fit(concept)
    tasks = held_out_tasks(concept, "action", n_tasks, seed)
    batch = collate(tasks)
    kq = batch.query_x.shape[1]
    traj, att, valid = (
        t.flatten(0, 1) for t in (batch.query_x, batch.query_att, batch.query_valid)
    )
    record: list[torch.Tensor] = []
    with torch.enable_grad():
        w_x, _ = model.infer_codes(
            batch.demo_x, batch.demo_att, batch.demo_valid, contexts="generation"
        )
        model.generate(traj, att, w_x.repeat_interleave(kq, 0), valid, steps=max(steps),
                       record=record)  # fmt: skip
    states = {"truth": traj, "start": generation_start(traj, att)}
    states |= {str(k): record[k - 1] for k in steps}
    w = w_x.detach().repeat_interleave(kq, 0)
    with torch.no_grad():
        e_truth = model.generation_energy(traj, att, w, valid)
    rows, truth_size = {}, None
    for name, xs in states.items():
        with torch.no_grad():
            below = (model.generation_energy(xs.detach(), att, w, valid) < e_truth).float()
        fits, ok, spread = [], [], []
        for q in range(traj.shape[0]):
            keep = valid[q].numpy()
            a = att[q].numpy()[keep]
            x = xs[q].numpy()[:, keep]
            fits.append(fit(x[-1], a))
            spread.append(pair_spread(x[-1], a))
            ok.append(tasks[q // kq].instance.generation_success(x, a))
        fits = np.array(fits)
        truth_size = fits[:, 1] if truth_size is None else truth_size
        rows[name] = {
            "rms": float(fits[:, 0].mean()),
            size: float(fits[:, 1].mean()),
            "larger_than_truth": float((fits[:, 1] > truth_size + 1e-9).mean()),
            "pair_spread": float(np.mean(spread)),
            "energy_below_truth": below.mean().item(),
            "success": float(np.mean(ok)),
        }
    energy = {}
    with torch.no_grad():
        for s in scales:
            gap = model.generation_energy(scaled_outcomes(traj, att, s), att, w, valid) - e_truth
            energy[str(s)] = {
                "minus_truth": gap.mean().item(),
                "below": (gap < 0).float().mean().item(),
            }
    return {"by_step": rows, "scaled_truth_energy": energy}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--concept", default="square", help="a shape family: triangle, square or line")
    p.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    p.add_argument("--scales", type=float, nargs="+", default=[0, 0.25, 0.5, 0.75, 1.25, 1.5])
    p.add_argument("--tasks", type=int, default=20, help="held-out tasks (5 queries each)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out tasks")
    p.add_argument("--json", type=Path, help="write the table here too")
    args = p.parse_args(argv)
    if min(args.steps) < 1:
        p.error("--steps must be positive")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    try:
        model = load_model(args.checkpoint)
        result = shape_scale(
            model, args.concept, sorted(args.steps), args.scales, args.tasks, args.seed
        )
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size, _ = figure_fit(args.concept)
    print(f"{'step':>6s} {'rms':>7s} {size:>7s} {'> truth':>8s} {'dmin/dmax':>10s} "
          f"{'E < truth':>10s} {'success':>8s}")  # fmt: skip
    for k, r in result["by_step"].items():
        print(f"{k:>6s} {r['rms']:7.3f} {r[size]:7.3f} {100 * r['larger_than_truth']:7.0f}%"
              f" {r['pair_spread']:10.3f} {100 * r['energy_below_truth']:9.0f}%"
              f" {100 * r['success']:7.0f}%")  # fmt: skip
    print(f"\n{'scale':>6s} {'E - E(truth)':>13s} {'below truth':>12s}")
    for s, r in result["scaled_truth_energy"].items():
        print(f"{s:>6s} {r['minus_truth']:+13.4f} {100 * r['below']:11.0f}%")
    if args.json:
        meta = {"checkpoint": str(args.checkpoint), "concept": args.concept,
                "tasks": args.tasks, "seed": args.seed}  # fmt: skip
        write_json(args.json, meta | result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
