"""Fig. 4: closest and farthest, generated and identified by one trained model.

Generation (left panels): w_x from a task's demos; on a query the attended entity moves by
Langevin. The heat map is the generation energy of placing it at each point of the plane
(dark = low), the black line its path through the chain, the white dashed outline where the
task's scorer accepts it. Identification (right panels): w_a from demos; the numbers are the
attention probabilities found by Langevin, the black ring the attended entity (p > 0.5), the
dashed green ring the right one. Numbers: held-out success rates of both contexts, beside the
untrained network and, for generation, leaving the entity where it starts.
"""

from __future__ import annotations

import numpy as np
import torch

from energy_model.evaluate import untrained_like
from energy_model.experiments import common as C
from particle_world import Event
from particle_world.io import write_json
from particle_world.render import draw_event, energy_heatmap

DESCRIPTION = __doc__
CONCEPTS = ("closest", "farthest")
EXAMPLES = 2
"""Examples per concept and context in the figure."""
HEAT_RESOLUTION = 80


def add_arguments(parser) -> None:
    C.add_common_args(parser, tasks=20)
    C.add_checkpoint_arg(parser)


def _generation_panel(ax, model, task, w_x) -> bool:
    event = task.queries.event(0)
    traj, att, valid = C.query_tensors(model, [event])

    energy = C.generation_energy_fn(model, att, w_x, valid)
    out, iterates = C.generate_with(model, energy, traj, att, valid)
    i = int(np.flatnonzero(event.attention > 0.5)[0])
    result = Event(out[0].cpu().numpy(), event.attention)
    image = energy_heatmap(ax, C.position_energy(energy, out, i), HEAT_RESOLUTION)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    C.success_contour(ax, task.instance, result)
    draw_event(ax, C.chain_event(event.x, iterates[:, 0].cpu().numpy(), event.attention))
    return task.instance.generation_success(result.x, event.attention)


def _identification_panel(ax, model, task, w_a) -> bool:
    event = task.queries.event(0)
    traj, att, valid = C.query_tensors(model, [event])
    x0 = traj[:, 0]

    energy = C.identification_energy_fn(model, x0, w_a, valid)
    probs, _ = C.identify_with(model, energy, x0, valid)
    probs = probs[0].cpu().numpy()
    draw_event(ax, Event(event.x[:1], (probs > 0.5).astype(np.float32)))
    C.annotate_probabilities(ax, event.x[0], probs, event.attention)
    return task.instance.attention_success(event.x[0], probs, event.attention)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    model = C.load_trained(args.checkpoint)
    untrained = untrained_like(args.checkpoint)
    fig = C.new_figure(2 * EXAMPLES * 3.4, len(CONCEPTS) * 3.0)
    axes = fig.subplots(len(CONCEPTS), 2 * EXAMPLES, squeeze=False)
    result = {"checkpoint": str(args.checkpoint), "seed": args.seed, "tasks": args.tasks}
    for r, concept in enumerate(CONCEPTS):
        C.seed_everything(args.seed)
        gen_tasks = C.sample_tasks(concept, "action", EXAMPLES, args.seed)
        id_tasks = C.sample_tasks(concept, "argument", EXAMPLES, args.seed)
        w_x, _ = C.task_codes(model, gen_tasks)
        _, w_a = C.task_codes(model, id_tasks)
        for c in range(EXAMPLES):
            ok = _generation_panel(axes[r, c], model, gen_tasks[c], w_x[c : c + 1])
            axes[r, c].set_title(
                f"generate: {concept} to the cross ({'ok' if ok else 'fail'})", fontsize=8
            )
            ax = axes[r, EXAMPLES + c]
            ok = _identification_panel(ax, model, id_tasks[c], w_a[c : c + 1])
            ax.set_title(f"identify: {concept} to the cross ({'ok' if ok else 'fail'})", fontsize=8)
        result[concept] = {
            "generation": C.held_out(model, concept, "action", args.tasks, args.seed),
            "identification": C.held_out(model, concept, "argument", args.tasks, args.seed),
            "untrained": {
                "generation": C.held_out(untrained, concept, "action", args.tasks, args.seed),
                "identification": C.held_out(untrained, concept, "argument", args.tasks, args.seed),
            },
            "unmoved_generation_success": C.unmoved_success(concept, args.tasks, args.seed),
        }
    fig.tight_layout()
    result["figure"] = str(C.save_figure(fig, args.out / "fig4.png"))
    write_json(args.out / "fig4.json", result)
    return result


def table(result: dict) -> str:
    rows = []
    for concept in CONCEPTS:
        r = result[concept]
        for name, m in (("trained", r), ("untrained", r["untrained"])):
            g, i = m["generation"], m["identification"]
            rows.append([concept, name, C.pct(g["success_rate"]), g["error"],
                         C.pct(i["success_rate"]), i["error"]])  # fmt: skip
        rows.append([concept, "unmoved", C.pct(r["unmoved_generation_success"]), "", "", ""])
    head = ["concept", "model", "generation success", "generation error",
            "identification success", "attention error"]  # fmt: skip
    return C.markdown_table(head, rows)
