"""Does a placement concept's energy follow its reference, or a place?

For a family whose action moves one entity relative to reference crosses (north, south,
east, west, between), on held-out queries of a checkpoint:
- the generation energy over the attended entity's final position on a grid over the
  world, the other entities where the query has them;
- "follows": the grid argmin again with every reference cross moved by one offset delta
  (length --shift, a random direction that keeps them inside the world). The right outcome
  moves by delta, so the argmin's shift projected on delta, over |delta|^2, is about 1 for
  an energy that places the entity relative to the reference and 0 for one that sends it
  to a place (the median over queries);
- the success rate of the chain as trained (--generation-restarts: of that many chains, the
  lowest-energy one), and of the grid argmin itself: whether the energy's minimum is where
  the concept holds, whatever the chain does.
--png draws the maps of the first 20 queries: the energy (dark low), the entities (the
references as crosses, the attended one red), the chain's path and the demonstrated
outcome (star).

    python bench/energy_map.py --checkpoint CKPT [--concepts north south east west between]
                               [--tasks 20] [--seed 1] [--shift 0.3] [--grid 41]
                               [--generation-restarts R] [--png FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from energy_model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_model  # noqa: E402
from energy_model.data import collate  # noqa: E402
from energy_model.evaluation import held_out_tasks  # noqa: E402
from particle_world import entities as E  # noqa: E402
from particle_world import get_family  # noqa: E402
from particle_world.io import write_json
from particle_world.scene import refs_of  # noqa: E402

PLACEMENTS = ("north", "south", "east", "west", "between")
MAPS_DRAWN = 20


def _grid(n: int) -> np.ndarray:
    """[n * n, 2] positions over the world square."""
    g = np.linspace(-E.WORLD_BOUND, E.WORLD_BOUND, n)
    xx, yy = np.meshgrid(g, g)
    return np.stack([xx.ravel(), yy.ravel()], 1)


def _energy_map(model, traj, att, w, valid, i, points) -> np.ndarray:
    """Generation energy [P] of one query (traj [T+1, N, D]) with entity i's final
    position at each of points [P, 2]."""
    p = len(points)
    x = traj[None].repeat(p, 1, 1, 1).clone()
    x[:, -1, i, E.POS] = torch.as_tensor(points, dtype=x.dtype)
    with torch.no_grad():
        e = model.generation_energy(x, att[None].repeat(p, 1), w[None].repeat(p, 1),
                                    valid[None].repeat(p, 1))  # fmt: skip
    return e.numpy()


def _shifted_refs(x: torch.Tensor, refs: np.ndarray, rng, length: float):
    """x [T+1, N, D] with the references moved by one random offset of this length that
    keeps them inside the world; (None, None) when no direction does."""
    pos = x[0, refs, E.POS].numpy()
    for _ in range(50):
        ang = rng.uniform(0, 2 * np.pi)
        delta = length * np.array([np.cos(ang), np.sin(ang)])
        if np.all(np.abs(pos + delta) < 0.9 * E.WORLD_BOUND):
            moved = x.clone()
            moved[:, refs, 0] += float(delta[0])
            moved[:, refs, 1] += float(delta[1])
            return moved, delta
    return None, None


def energy_map(model, family: str, n_tasks: int, seed: int, shift: float, grid: int, restarts=None):
    """Per-family figures and the data of the maps (module docstring)."""
    action = get_family(family).action
    if action is None or tuple(action.counts) != (1,):
        raise ValueError(f"{family}: its action must move one entity (a placement family)")
    tasks = held_out_tasks(family, "action", n_tasks, seed)
    batch = collate(tasks)
    kq = batch.query_x.shape[1]
    traj, att, valid = (t.flatten(0, 1) for t in (batch.query_x, batch.query_att,
                                                  batch.query_valid))  # fmt: skip
    with torch.enable_grad():
        w_x, _ = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid,
                                   contexts="generation")  # fmt: skip
        wq = w_x.repeat_interleave(kq, 0)
        path: list[torch.Tensor] = []
        out = model.generate(traj, att, wq, valid, record=path, restarts=restarts)
    points, rng = _grid(grid), np.random.default_rng(seed)
    follows, chain_ok, argmin_ok, maps = [], [], [], []
    for q in range(traj.shape[0]):
        inst, keep = tasks[q // kq].instance, valid[q].numpy()
        a_true = att[q].numpy()[keep]
        i = int(att[q].argmax())
        e = _energy_map(model, traj[q], att[q], wq[q], valid[q], i, points)
        best = points[e.argmin()]
        at_min = traj[q].clone()
        at_min[-1, i, E.POS] = torch.as_tensor(best, dtype=at_min.dtype)
        argmin_ok.append(inst.generation_success(at_min.numpy()[:, keep], a_true))
        chain_ok.append(inst.generation_success(out[q].detach().numpy()[:, keep], a_true))
        moved, delta = _shifted_refs(traj[q], refs_of(traj[q, 0].numpy()), rng, shift)
        if moved is not None:
            e2 = _energy_map(model, moved, att[q], wq[q], valid[q], i, points)
            follows.append(float((points[e2.argmin()] - best) @ delta) / shift**2)
        if len(maps) < MAPS_DRAWN:
            track = [traj[q, 0, i, E.POS].numpy()] + [s[q, -1, i, E.POS].numpy() for s in path]
            maps.append({"energy": e.reshape(grid, grid), "x0": traj[q, 0].numpy()[keep],
                         "i": int(np.flatnonzero(keep).tolist().index(i)),
                         "truth": traj[q, -1, i, E.POS].numpy(), "path": np.array(track),
                         "ok": bool(chain_ok[-1])})  # fmt: skip
    figures = {
        "chain_success": float(np.mean(chain_ok)),
        "argmin_success": float(np.mean(argmin_ok)),
        "follows": float(np.median(follows)) if follows else None,
        "queries": len(chain_ok),
    }
    return figures, maps


def draw(maps: list, title: str, path: Path) -> None:
    cols = 5
    rows = -(-len(maps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    b = E.WORLD_BOUND
    for ax, m in zip(axes.flat, maps, strict=False):
        ax.imshow(m["energy"], origin="lower", extent=(-b, b, -b, b), cmap="viridis")
        x0 = m["x0"]
        cross = refs_of(x0)
        others = [j for j in range(len(x0)) if j != m["i"] and j not in cross]
        ax.scatter(*x0[others, :2].T, c="white", edgecolors="k", s=30)
        ax.scatter(*x0[cross, :2].T, c="white", marker="X", edgecolors="k", s=70)
        ax.plot(*m["path"].T, "r.-", ms=3)
        ax.scatter(*x0[m["i"], :2], c="red", edgecolors="k", s=40)
        ax.scatter(*m["truth"], c="yellow", marker="*", edgecolors="k", s=120)
        ax.set_title("success" if m["ok"] else "failure", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in axes.flat[len(maps) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=60)
    plt.close(fig)
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--concepts", nargs="+", default=list(PLACEMENTS))
    p.add_argument("--tasks", type=int, default=20, help="held-out tasks (5 queries each)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out tasks")
    p.add_argument("--shift", type=float, default=0.3, help="how far the references move")
    p.add_argument("--grid", type=int, default=41, help="grid points along each axis")
    p.add_argument(
        "--generation-restarts", type=int,
        help="chains per query, the lowest-energy one kept (default: the checkpoint's)",
    )  # fmt: skip
    p.add_argument("--png", type=Path, help="draw the first concept's maps here")
    p.add_argument("--json", type=Path, help="write the table here too")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    try:
        model = load_model(args.checkpoint)
        rows = {}
        for k, family in enumerate(args.concepts):
            rows[family], maps = energy_map(
                model, family, args.tasks, args.seed, args.shift, args.grid,
                args.generation_restarts,
            )  # fmt: skip
            if k == 0 and args.png:
                draw(maps, f"{family}: {args.checkpoint}", args.png)
    except (CheckpointError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{'concept':>10s} {'chain':>7s} {'argmin':>7s} {'follows':>8s}")
    for family, r in rows.items():
        follows = "n/a" if r["follows"] is None else f"{r['follows']:.2f}"
        print(f"{family:>10s} {100 * r['chain_success']:6.0f}% {100 * r['argmin_success']:6.0f}%"
              f" {follows:>8s}")  # fmt: skip
    if args.json:
        meta = {"checkpoint": str(args.checkpoint), "tasks": args.tasks, "seed": args.seed,
                "shift": args.shift, "grid": args.grid,
                "generation_restarts": args.generation_restarts
                or model.inference_cfg.generation_restarts}  # fmt: skip
        write_json(args.json, meta | {"concepts": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
