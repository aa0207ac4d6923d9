"""Fig. 8: energies of demonstrated, sampled and random events, with and without L_KL.

Two models learn the same concepts, one with L_ML + L_KL (the default) and one with L_ML
alone. On held-out tasks, with codes from the demos, each scores the queries' true events
(green), the events its sampler makes (red) and random events (black): for generation, the
attended entities' positions and colors drawn uniformly; for identification, attention
sigmoid(N(0, 1)), the identification sampler's own start. The paper's claim: without L_KL
the samples stay at higher energies than the demonstrations.
"""

from __future__ import annotations

import numpy as np
import torch

from energy_model.data import collate, units
from energy_model.experiments import common as C
from energy_model.model import feature_bounds, generation_mask
from particle_world.io import write_json

DESCRIPTION = __doc__
VARIANTS = {"rn-kl": "with L_KL", "rn-nokl": "without L_KL"}
KINDS = {"demo": "tab:green", "sampled": "tab:red", "random": "black"}
CONTEXTS = ("generation", "identification")


def add_arguments(parser) -> None:
    C.add_common_args(parser, tasks=10)
    C.add_training_args(parser, C.ABLATION_CPU_STEPS)


def _random_like(traj, att):
    """traj [B, T+1, N, D] with the attended entities' changeable features uniform within
    their bounds at every step t >= 1."""
    lo, hi = feature_bounds(traj.device, traj.dtype)
    lo, hi = lo.clamp(min=-1.0), hi.clamp(max=1.0)  # the shape features are not drawn
    uniform = lo + (hi - lo) * torch.rand_like(traj)
    mask = generation_mask(traj, att)
    return traj * (1 - mask) + uniform * mask


def unit_energies(model, family: str, role: str, n_tasks: int, seed: int) -> dict:
    """{context: {kind: energies [Q]}} over the queries of n_tasks tasks of one unit."""
    tasks = C.sample_tasks(family, role, n_tasks, seed)
    batch = collate(tasks).to(model.code_init.device)
    kq = batch.query_x.shape[1]
    traj, att, valid = (
        t.flatten(0, 1) for t in (batch.query_x, batch.query_att, batch.query_valid)
    )
    w_x, w_a = C.task_codes(model, tasks)
    w_x, w_a = w_x.repeat_interleave(kq, 0), w_a.repeat_interleave(kq, 0)
    x0 = traj[:, 0]

    e_gen = C.generation_energy_fn(model, att, w_x, valid)
    e_id = C.identification_energy_fn(model, x0, w_a, valid)

    C.seed_everything(seed)
    sampled_x, _ = C.generate_with(model, e_gen, traj, att, valid)
    sampled_a, _ = C.identify_with(model, e_id, x0, valid)
    random_x = _random_like(traj, att)
    random_a = torch.sigmoid(torch.randn_like(att)) * valid
    with torch.no_grad():
        energies = {
            "generation": {
                "demo": e_gen(traj),
                "sampled": e_gen(sampled_x),
                "random": e_gen(random_x),
            },
            "identification": {
                "demo": e_id(att),
                "sampled": e_id(sampled_a),
                "random": e_id(random_a),
            },
        }
    return {c: {k: v.cpu().numpy() for k, v in d.items()} for c, d in energies.items()}


def variant_energies(model, n_tasks: int, seed: int) -> dict:
    """{context: {kind: energies [Q]}} pooled over the ablation concepts and their roles."""
    pooled: dict = {c: {k: [] for k in KINDS} for c in CONTEXTS}
    for family, role in units(list(C.ABLATION_CONCEPTS)):
        for c, d in unit_energies(model, family, role, n_tasks, seed).items():
            for k, v in d.items():
                pooled[c][k].append(v)
    return {c: {k: np.concatenate(v) for k, v in d.items()} for c, d in pooled.items()}


def _stats(e: np.ndarray) -> dict:
    return {
        "mean": float(e.mean()),
        "median": float(np.median(e)),
        "std": float(e.std()),
        "n": len(e),
    }


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    result: dict = {"seed": args.seed, "tasks": args.tasks, "variants": {}}
    fig = C.new_figure(10.0, 6.4)
    axes = fig.subplots(len(CONTEXTS), len(VARIANTS), squeeze=False)
    for v, (variant, label) in enumerate(VARIANTS.items()):
        model, info = C.ablation_model(args, variant)
        energies = variant_energies(model, args.tasks, args.seed)
        entry = {"label": label, "training": info, "energies": {}}
        for r, context in enumerate(CONTEXTS):
            ax = axes[r, v]
            d = energies[context]
            lo, hi = np.percentile(np.concatenate(list(d.values())), [0.5, 99.5])
            bins = np.linspace(lo, hi, 40)
            for kind, color in KINDS.items():
                e = np.clip(d[kind], lo, hi)
                ax.hist(e, bins, color=color, alpha=0.15, histtype="stepfilled")
                ax.hist(e, bins, color=color, lw=1.4, histtype="step",
                        label=f"{kind} (mean {d[kind].mean():.3f})")  # fmt: skip
                ax.axvline(d[kind].mean(), color=color, lw=1.2, ls="--")
            ax.set_title(f"{label}: {context} energies", fontsize=9)
            ax.set_xlabel("energy", fontsize=8)
            ax.legend(fontsize=7)
            stats = {k: _stats(e) for k, e in d.items()}
            stats["sampled_minus_demo"] = stats["sampled"]["mean"] - stats["demo"]["mean"]
            stats["random_minus_demo"] = stats["random"]["mean"] - stats["demo"]["mean"]
            entry["energies"][context] = stats
        entry["mean_success"] = float(
            np.mean(
                [
                    C.held_out(model, f, r, args.tasks, args.seed)["success_rate"]
                    for f, r in units(list(C.ABLATION_CONCEPTS))
                ]
            )
        )
        result["variants"][variant] = entry
    fig.tight_layout()
    result["figure"] = str(C.save_figure(fig, args.out / "fig8.png"))
    write_json(args.out / "fig8.json", result)
    return result


def table(result: dict) -> str:
    rows = []
    for entry in result["variants"].values():
        for context in CONTEXTS:
            s = entry["energies"][context]
            rows.append([entry["label"], context, *(round(s[k]["mean"], 4) for k in KINDS),
                         round(s["sampled_minus_demo"], 4), C.pct(entry["mean_success"]),
                         C.training_size(entry["training"])])  # fmt: skip
    head = ["model", "context", *(f"mean E {k}" for k in KINDS), "sampled - demo",
            "held-out success", "training (steps x tasks)"]  # fmt: skip
    return C.markdown_table(head, rows)
