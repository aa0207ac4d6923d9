"""The 'no RN' ablation (Sec. 5.3): per-entity energy against the relation network.

Two models learn the same concepts with the same budget: the relation network of eq. 4 and
the per-entity E = f(sum_i sigma(a_i) g(x_i, w), w). Held-out success on single-entity
concepts (region-point, color in both roles) and multi-entity ones (line, triangle, square,
after); 'unmoved' is the success of leaving the entities where they start (a floor). The
lower rows of the figure show one generated query per multi-entity concept for each model.
"""

from __future__ import annotations

import numpy as np
import torch

from energy_model.experiments import common as C
from particle_world import Event
from particle_world.io import write_json
from particle_world.render import draw_event

DESCRIPTION = __doc__
SINGLE = [("region-point", "action"), ("color", "action"), ("color", "argument")]
MULTI = [("line", "action"), ("triangle", "action"), ("square", "action"), ("after", "action")]
VARIANTS = {"rn-kl": "relation network", "entity-kl": "per-entity (no RN)"}
EXAMPLE_CONCEPTS = ("line", "square", "after")


def add_arguments(parser) -> None:
    C.add_common_args(parser, tasks=20)
    C.add_training_args(parser, C.ABLATION_CPU_STEPS)


def _label(unit) -> str:
    family, role = unit
    return f"{family} ({'generate' if role == 'action' else 'identify'})"


def _example(ax, model, family: str, seed: int) -> bool:
    (task,) = C.sample_tasks(family, "action", 1, seed)
    w_x, _ = C.task_codes(model, [task])
    event = task.queries.event(0)
    traj, att, valid = C.query_tensors(model, [event])
    energy = C.generation_energy_fn(model, att, w_x, valid)
    out, _ = C.generate_with(model, energy, traj, att, valid)
    result = Event(out[0].cpu().numpy(), event.attention)
    draw_event(ax, result)
    return task.instance.generation_success(result.x, event.attention)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    units = SINGLE + MULTI
    result: dict = {"seed": args.seed, "tasks": args.tasks, "variants": {}}
    fig = C.new_figure(11.0, 3.6 + 2.6 * len(VARIANTS))
    grid = fig.add_gridspec(1 + len(VARIANTS), len(EXAMPLE_CONCEPTS), height_ratios=[1.4, 1, 1])
    bars = fig.add_subplot(grid[0, :])
    width = 0.8 / (len(VARIANTS) + 1)
    xs = np.arange(len(units))
    for v, (variant, label) in enumerate(VARIANTS.items()):
        model, info = C.ablation_model(args, variant)
        rates = {_label(u): C.held_out(model, *u, args.tasks, args.seed) for u in units}
        result["variants"][variant] = {"label": label, "training": info, "units": rates}
        bars.bar(xs + v * width, [r["success_rate"] for r in rates.values()], width, label=label)
        for c, family in enumerate(EXAMPLE_CONCEPTS):
            ax = fig.add_subplot(grid[1 + v, c])
            C.seed_everything(args.seed)
            ok = _example(ax, model, family, args.seed)
            ax.set_title(f"{label}: {family} ({'ok' if ok else 'fail'})", fontsize=8)
    unmoved = [
        C.unmoved_success(f, args.tasks, args.seed) if r == "action" else None for f, r in units
    ]
    result["unmoved"] = {_label(u): m for u, m in zip(units, unmoved, strict=True)}
    bars.bar(
        xs + len(VARIANTS) * width,
        [m or 0.0 for m in unmoved],
        width,
        color="0.6",
        label="unmoved (floor)",
    )
    bars.axvline(len(SINGLE) - 0.5 + 0.4, color="k", lw=0.8, ls=":")
    bars.set_xticks(xs + width, [_label(u) for u in units], fontsize=7)
    bars.set_ylim(0, 1)
    bars.set_ylabel("held-out success")
    bars.set_title("single-entity concepts | multi-entity concepts", fontsize=9)
    bars.legend(fontsize=7)
    for entry in result["variants"].values():
        for group, members in (("single-entity", SINGLE), ("multi-entity", MULTI)):
            entry[f"{group} mean"] = float(
                np.mean([entry["units"][_label(u)]["success_rate"] for u in members])
            )
    fig.tight_layout()
    result["figure"] = str(C.save_figure(fig, args.out / "no_rn.png"))
    write_json(args.out / "no_rn.json", result)
    return result


def table(result: dict) -> str:
    variants = result["variants"]
    head = ["concept", *(v["label"] for v in variants.values()), "unmoved"]
    rows = [
        [
            name,
            *(C.pct(v["units"][name]["success_rate"]) for v in variants.values()),
            C.pct(result["unmoved"][name]),
        ]
        for name in result["unmoved"]
    ]
    for group in ("single-entity mean", "multi-entity mean"):
        rows.append([f"**{group}**", *(C.pct(v[group]) for v in variants.values()), ""])
    rows.append(["training", *(C.training_size(v["training"]) for v in variants.values()), ""])
    return C.markdown_table(head, rows)
