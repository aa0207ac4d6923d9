"""Fig. 7: optimisation-based inference. Shapes trained and run with 1 and 20 steps.

Two models learn line, triangle and square (both contexts), one with K = 1 generation step,
one with K = 20; each generates with the K it was trained with. fig7.png: generation chains
(grey dots: the iterates, arrow: the last step) with the held-out success of each setting.
fig7_attention.png: attention trajectories sigma(a_k) over the identification chain for line
events (line has no argument role here: the argument of a line event is a color, so these
are the chains that find the entities that form the line; solid: the right entities).
"""

from __future__ import annotations

import numpy as np
import torch

from energy_model.experiments import common as C
from particle_world import Event
from particle_world.io import write_json
from particle_world.render import draw_event

DESCRIPTION = __doc__
SHAPES = ("line", "triangle", "square")
X_STEPS = (1, 20)
CPU_TRAIN_STEPS = 250
EXAMPLES = 2


def add_arguments(parser) -> None:
    C.add_common_args(parser, tasks=20)
    C.add_training_args(parser, CPU_TRAIN_STEPS)


def _models(args) -> dict[int, tuple]:
    """{K: (model, training info)} for each generation step count."""
    out = {}
    for k in X_STEPS:
        cfg = C.train_config(args, CPU_TRAIN_STEPS, list(SHAPES))
        cfg.inference.x.steps = k
        out[k] = C.train_or_reuse(cfg, args.runs / f"exp-fig7-xsteps{k}", args.retrain)
    return out


def _generation_chain(model, task):
    """(chain Event, success) for the first query of a task."""
    w_x, _ = C.task_codes(model, [task])
    event = task.queries.event(0)
    traj, att, valid = C.query_tensors(model, [event])
    energy = C.generation_energy_fn(model, att, w_x, valid)
    out, iterates = C.generate_with(model, energy, traj, att, valid)
    ok = task.instance.generation_success(out[0].cpu().numpy(), event.attention)
    return C.chain_event(event.x, iterates[:, 0].cpu().numpy(), event.attention), ok


def line_attention(model, tasks, seed: int):
    """Identification on every query of line tasks: (success rate, [(x0 [N, D], truth [N],
    probabilities along the chain [K+1, N]) for the first query of each task])."""
    _, w_a = C.task_codes(model, tasks)
    hits, examples = [], []
    C.seed_everything(seed)
    for t, task in enumerate(tasks):
        events = task.queries.events()
        traj, _, valid = C.query_tensors(model, events)
        x0 = traj[:, 0]
        energy = C.identification_energy_fn(model, x0, w_a[t : t + 1], valid)
        probs, chain = C.identify_with(model, energy, x0, valid)
        for q, e in enumerate(events):
            p = probs[q, : e.x.shape[1]].cpu().numpy()
            hits.append(task.instance.attention_success(e.x[0], p, e.attention))
        n0 = events[0].x.shape[1]
        examples.append((events[0].x[0], events[0].attention, chain[:, 0, :n0].cpu().numpy()))
    return float(np.mean(hits)), examples


def _attention_figure(examples_by_k: dict, path):
    fig = C.new_figure(4 * 2.6 * 1.15, len(examples_by_k) * 2.6)
    axes = fig.subplots(len(examples_by_k), 2 * EXAMPLES, squeeze=False)
    for r, (k, examples) in enumerate(examples_by_k.items()):
        for c, (x0, truth, chain) in enumerate(examples[:EXAMPLES]):
            ax_s, ax_c = axes[r, 2 * c], axes[r, 2 * c + 1]
            draw_event(ax_s, Event(x0[None], (chain[-1] > 0.5).astype(np.float32)))
            C.annotate_probabilities(ax_s, x0, chain[-1], truth)
            ax_s.set_title(f"K_x={k} model, line event {c}", fontsize=8)
            for i in range(len(x0)):
                ax_c.plot(
                    chain[:, i],
                    color=np.clip(x0[i, 2:5], 0, 1),
                    lw=1.6,
                    ls="-" if truth[i] > 0.5 else "--",
                    marker=".",
                    ms=4,
                )
            ax_c.set_ylim(-0.03, 1.03)
            ax_c.set_xlabel("Langevin step k", fontsize=7)
            ax_c.set_ylabel("sigma(a_k)", fontsize=7)
            ax_c.tick_params(labelsize=6)
            ax_c.set_title("attention along the chain", fontsize=8)
    fig.tight_layout()
    return C.save_figure(fig, path)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    models = _models(args)
    result: dict = {"seed": args.seed, "tasks": args.tasks, "settings": {}}
    result["unmoved"] = {s: C.unmoved_success(s, args.tasks, args.seed) for s in SHAPES}
    fig = C.new_figure(len(X_STEPS) * EXAMPLES * 2.6, len(SHAPES) * 2.75)
    axes = fig.subplots(len(SHAPES), len(X_STEPS) * EXAMPLES, squeeze=False)
    attention_examples = {}
    for s, k in enumerate(X_STEPS):
        model, info = models[k]
        entry = {"training": info, "generation": {}}
        for r, shape in enumerate(SHAPES):
            entry["generation"][shape] = C.held_out(model, shape, "action", args.tasks, args.seed)
            rate = entry["generation"][shape]["success_rate"]
            for c, task in enumerate(C.sample_tasks(shape, "action", EXAMPLES, args.seed)):
                C.seed_everything(args.seed)
                event, ok = _generation_chain(model, task)
                ax = axes[r, s * EXAMPLES + c]
                draw_event(ax, event)
                ax.set_title(
                    f"{shape}, K={k} ({'ok' if ok else 'fail'}; held-out {C.pct(rate)})", fontsize=8
                )
        line_tasks = C.sample_tasks("line", "action", args.tasks, args.seed)
        rate, attention_examples[k] = line_attention(model, line_tasks, args.seed)
        entry["line_identification_success"] = rate
        result["settings"][str(k)] = entry
    fig.tight_layout()
    result["figure"] = str(C.save_figure(fig, args.out / "fig7.png"))
    result["attention_figure"] = str(
        _attention_figure(attention_examples, args.out / "fig7_attention.png")
    )
    write_json(args.out / "fig7.json", result)
    return result


def table(result: dict) -> str:
    rows = []
    for k, entry in result["settings"].items():
        g = entry["generation"]
        rows.append([f"K = {k}", *(C.pct(g[s]["success_rate"]) for s in SHAPES),
                     C.pct(entry["line_identification_success"]),
                     C.training_size(entry["training"])])  # fmt: skip
    rows.append(["unmoved", *(C.pct(result["unmoved"][s]) for s in SHAPES), "", ""])
    head = ["generation steps", *SHAPES, "line: identification", "training (steps x tasks)"]
    return C.markdown_table(head, rows)
