"""Helpers shared by the experiments: options, models, trainings, tasks, pictures, outputs."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes

from energy_model.checkpoint import DEFAULT_CHECKPOINT, load_model
from energy_model.cli_config import positive_int, seed_int
from energy_model.config import ModelConfig, TrainConfig
from energy_model.data import collate
from energy_model.evaluation import evaluate_unit, held_out_tasks
from energy_model.model import (
    ConceptModel,
    feature_bounds,
    generation_mask,
    generation_start,
)
from energy_model.train import train
from particle_world import Event, EventBatch, Task, sample_task
from particle_world import entities as E
from particle_world.render import (
    EVENT_INCHES,
    MARKER_AREA,
    MOVE_EPS,
    error_landscape,
    new_figure,
    save_figure,
)
from particle_world.tasks import Instance

DEFAULT_OUT = Path("docs/results")
RUNS = Path("runs")
FULL_TRAIN_STEPS = TrainConfig().steps
FULL_BATCH_SIZE = TrainConfig().batch_size
"""Training size of the experiments' own models with --device cuda (TrainConfig's default)."""
CPU_BATCH_SIZE = 16
"""Tasks per training step on the CPU: half of TrainConfig's, for twice the updates in the
same five minutes."""
HOLD = 10 * MOVE_EPS
"""chain_event draws moves of an entity shorter than this as standing still."""
TASK_STREAM = 104729
"""Experiment tasks draw from default_rng([seed, TASK_STREAM, i]): a stream that training
(default_rng([seed, step])) and evaluation (evaluation.EVAL_STREAM) never use."""

__all__ = ["new_figure", "save_figure"]  # re-exported: the experiments draw through these


class ExperimentError(RuntimeError):
    """A problem the user can fix (a missing checkpoint, a bad option): one line, exit 1."""


# ----------------------------------------------------------------------------- options


def add_common_args(parser: argparse.ArgumentParser, tasks: int) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for PNGs and JSON")
    parser.add_argument(
        "--seed", type=seed_int, default=0, help="seeds tasks, samplers and trainings"
    )
    parser.add_argument(
        "--tasks", type=positive_int, default=tasks,
        help=f"held-out tasks per measurement (default {tasks})",
    )  # fmt: skip
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")


def add_checkpoint_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help=f"trained model (default {DEFAULT_CHECKPOINT})",
    )


def add_training_args(parser: argparse.ArgumentParser, cpu_steps: int) -> None:
    parser.add_argument(
        "--train-steps",
        type=positive_int,
        help=f"steps per training (default {cpu_steps} on cpu, {FULL_TRAIN_STEPS} on cuda)",
    )
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    parser.add_argument("--runs", type=Path, default=RUNS, help="parent of the run folders")
    parser.add_argument(
        "--retrain", action="store_true", help="train again even if a matching final.pt exists"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help=f"tasks per step (default {CPU_BATCH_SIZE} on cpu, {FULL_BATCH_SIZE} on cuda)",
    )
    parser.add_argument(
        "--hidden",
        type=positive_int,
        default=ModelConfig().hidden,
        help="width of the networks' hidden layers",
    )


def train_config(args: argparse.Namespace, cpu_steps: int, concepts: list[str]) -> TrainConfig:
    """The base config of an experiment's trainings: TrainConfig's defaults, with the run size
    from the options, evaluation only at the end."""
    full = args.device.startswith("cuda")
    steps = args.train_steps or (FULL_TRAIN_STEPS if full else cpu_steps)
    return TrainConfig(
        concepts=list(concepts),
        steps=steps,
        batch_size=args.batch_size or (FULL_BATCH_SIZE if full else CPU_BATCH_SIZE),
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        eval_every=0,
        eval_tasks=5,
        checkpoint_every=max(1, min(100, steps)),
        model=ModelConfig(hidden=args.hidden),
    )


# ----------------------------------------------------------------------------- models


def load_trained(path: Path, device: str = "cpu") -> ConceptModel:
    """The model of a checkpoint; a missing file is an error that says what to do."""
    if not Path(path).is_file():
        raise ExperimentError(
            f"no checkpoint at {path}: train one (`python -m energy_model.train --out "
            f"runs/default`, then copy runs/default/final.pt to {DEFAULT_CHECKPOINT}) or "
            "pass --checkpoint runs/NAME/final.pt (or last.pt)"
        )
    return load_model(path, device)


def _config_json(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def train_or_reuse(cfg: TrainConfig, run_dir: Path, retrain: bool = False):
    """(model, info): run_dir/final.pt when its saved config is cfg, else a fresh training.

    info holds the run folder, the exact config, whether it was reused and the training's
    wall time in seconds (from its metrics log when reused)."""
    final, saved = run_dir / "final.pt", run_dir / "config.json"
    want = _config_json(cfg)
    reuse = not retrain and final.is_file() and saved.is_file()
    reuse = reuse and json.loads(saved.read_text()) == want
    print(f"{'reusing' if reuse else 'training'} {run_dir}: {json.dumps(want)}", flush=True)
    if reuse:
        model = load_model(final, cfg.device)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # metrics.jsonl is appended to: start clean
        t0 = time.time()
        model = train(cfg, run_dir, quiet=True)
        print(f"  trained in {time.time() - t0:.0f} s", flush=True)
    model.eval()
    info = {"run_dir": str(run_dir), "reused": reuse, "config": want}
    info["train_seconds"] = round(_train_seconds(run_dir / "metrics.jsonl"), 1)
    return model, info


def _train_seconds(metrics: Path) -> float:
    """Wall time of the last logged training step (the final evaluation excluded)."""
    times = [json.loads(line).get("time") for line in metrics.read_text().splitlines() if line]
    return float(max((t for t in times if t is not None), default=float("nan")))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def held_out(model: ConceptModel, family: str, role: str, n_tasks: int, seed: int) -> dict:
    """{"error", "success_rate"} of one (family, role) on held-out tasks, as
    `python -m energy_model.evaluate` counts them."""
    seed_everything(seed)
    r = evaluate_unit(model, family, role, n_tasks, seed)
    return {"error": round(r["error"], 4), "success_rate": r["success_rate"]}


def unmoved_success(family: str, n_tasks: int, seed: int) -> float:
    """Success of leaving the attended entities where they start, on held_out's tasks (a
    floor for generation: some random starts already satisfy a shape)."""
    hits = []
    for task in held_out_tasks(family, "action", n_tasks, seed):
        for e in task.queries.events():
            still = np.repeat(e.x[:1], len(e.x), axis=0)  # [T+1, N, D]
            hits.append(task.instance.generation_success(still, e.attention))
    return float(np.mean(hits))


# ----------------------------------------------------------------------------- ablations


ABLATION_CONCEPTS = ("region-point", "color", "line", "triangle", "square", "after")
"""What the ablation models (no RN, no L_KL, and the default they are compared with) learn."""
ABLATION_CPU_STEPS = 300
ABLATIONS = {
    "rn-kl": {},
    "entity-kl": {"model.relational": False},
    "rn-nokl": {"loss.kl": False},
}
"""Ablation variants of the default model: config changes by dotted name."""


def ablation_model(args: argparse.Namespace, variant: str):
    """(model, info) of one ablation variant, trained under args.runs/exp-ablation-VARIANT
    (shared between the experiments that compare against it)."""
    cfg = train_config(args, ABLATION_CPU_STEPS, list(ABLATION_CONCEPTS))
    for dotted, value in ABLATIONS[variant].items():
        part, name = dotted.split(".")
        setattr(getattr(cfg, part), name, value)
    return train_or_reuse(cfg, args.runs / f"exp-ablation-{variant}", args.retrain)


# ----------------------------------------------------------------------------- tasks


def sample_tasks(family: str, role: str, n: int, seed: int, **kw) -> list[Task]:
    """n tasks of one (family, role), task i from default_rng([seed, TASK_STREAM, i])."""
    return [
        sample_task(family, np.random.default_rng([seed, TASK_STREAM, i]), role=role, **kw)
        for i in range(n)
    ]


def instance_task(instance: Instance, rng: np.random.Generator, n_demos=5, n_queries=1) -> Task:
    """A task of a given instance, with one query by default."""
    return instance.sample_task(rng, n_demos, n_queries)


def task_codes(model: ConceptModel, tasks: Sequence[Task]) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (w_x, w_a), each [B, C], inferred from the demos of each task (eq. 8)."""
    batch = collate(list(tasks)).to(model.code_init.device)
    with torch.enable_grad():
        w_x, w_a = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid)
    return w_x.detach(), w_a.detach()


def query_tensors(model: ConceptModel, events: Sequence[Event]):
    """Events padded into tensors: x [B, T+1, N, D], attention [B, N], valid [B, N]."""
    batch = EventBatch.pad(list(events))
    device = model.code_init.device
    return (
        torch.as_tensor(batch.x, device=device),
        torch.as_tensor(batch.attention, device=device),
        torch.as_tensor(batch.valid, device=device),
    )


def sample_events(instance: Instance, n: int, rng: np.random.Generator, accept=None) -> list:
    """n events of an instance (those for which accept(event) holds, when given)."""
    out = []
    for _ in range(1000 * n):
        event = instance.sample_event(rng)
        if accept is None or accept(event):
            out.append(event)
            if len(out) == n:
                return out
    raise ExperimentError(f"could not sample {n} acceptable events of {instance}")


# ----------------------------------------------------------------------------- samplers


def generation_energy_fn(model, attention, w, valid) -> Callable[[torch.Tensor], torch.Tensor]:
    """x [M, T+1, N, D] -> E(x, attention, w) [M]; attention [1|M, N], w [1|M, C] and
    valid [1|M, N] broadcast over M (one event's energy over many candidate x)."""

    def fn(x):
        m = len(x)
        return model.generation_energy(
            x, attention.expand(m, -1), w.expand(m, -1), valid.expand(m, -1)
        )

    return fn


def identification_energy_fn(model, x0, w, valid) -> Callable[[torch.Tensor], torch.Tensor]:
    """gate [B, N] -> E(x0, gate, w) [B] for scenes x0 [B, N, D], codes w [1|B, C]."""
    return model.identification_energy_fn(x0, w.expand(len(x0), -1), valid)


def generate_with(model, energy_fn, traj, attention, valid, steps=None):
    """Langevin on generation from the generation start; returns (x~ [B, T+1, N, D], the
    iterates [K, B, T+1, N, D]). energy_fn(x [B, T+1, N, D]) -> [B]."""
    record: list[torch.Tensor] = []
    with torch.enable_grad():
        out = model.sample_x(
            energy_fn,
            generation_start(traj, attention),
            generation_mask(traj, attention),
            steps=steps,
            bounds=feature_bounds(traj.device, traj.dtype),
            record=record,
        )
    return out.detach(), torch.stack(record)


def identify_with(model, energy_fn, x0, valid, steps=None):
    """Langevin on attention logits from a unit Gaussian; returns (probabilities [B, N], the
    probabilities along the chain [K+1, B, N]). energy_fn(gate [B, N]) -> [B]."""
    logits = torch.randn(x0.shape[:2], device=x0.device, dtype=x0.dtype)
    record = [logits]
    with torch.enable_grad():
        out = model.sample_a(
            lambda a: energy_fn(torch.sigmoid(a)),
            logits,
            valid.to(x0.dtype),
            steps=steps,
            record=record,
        )
    probs = torch.sigmoid(torch.stack(record)) * valid
    return (torch.sigmoid(out.detach()) * valid), probs


def chain_event(start: np.ndarray, iterates: np.ndarray, attention: np.ndarray) -> Event:
    """An Event to draw a generation chain: x^0, then x^1 at each Langevin iterate.

    start [T+1, N, D] (x^0 is its first state), iterates [K, T+1, N, D]. An entity holds its
    drawn position until it has moved more than HOLD from it, so that a chain of tiny
    steps draws as a path (render drops steps shorter than its MOVE_EPS)."""
    x = np.concatenate([start[:1], iterates[:, -1]])  # [K+1, N, D]
    for k in range(1, len(x)):
        still = np.linalg.norm(x[k, :, E.POS] - x[k - 1, :, E.POS], axis=-1) <= HOLD  # [N]
        x[k, still, E.POS] = x[k - 1, still, E.POS]
    return Event(x, attention)


# ----------------------------------------------------------------------------- pictures


def position_energy(
    energy_fn: Callable[[torch.Tensor], torch.Tensor], traj: torch.Tensor, i: int, chunk=2500
) -> Callable[[np.ndarray], np.ndarray]:
    """energy_fn of where entity i ends: points [M, 2] -> energies [M] (for energy_heatmap).

    traj [1, T+1, N, D] is the rest of the event; energy_fn maps [M, T+1, N, D] to [M]."""

    def fn(points: np.ndarray) -> np.ndarray:
        out = []
        for lo in range(0, len(points), chunk):
            p = torch.as_tensor(points[lo : lo + chunk], device=traj.device, dtype=traj.dtype)
            x = traj.expand(len(p), -1, -1, -1).clone()  # [M, T+1, N, D]
            x[:, 1:, i, E.POS] = p[:, None]
            with torch.no_grad():
                out.append(energy_fn(x).cpu().numpy())
        return np.concatenate(out)

    return fn


def success_contour(
    ax: Axes, instance: Instance, event: Event, resolution=61, hatch="...", **style
) -> None:
    """Outline (and hatch) where the first attended entity would satisfy the instance's
    scorer, everything else as in the event."""
    g = np.linspace(-E.WORLD_BOUND, E.WORLD_BOUND, resolution)
    gx, gy = np.meshgrid(g, g)  # [R, R]
    err = error_landscape(instance, event)(np.stack([gx.ravel(), gy.ravel()], 1))
    ok = (err <= instance.act.tolerance).reshape(gx.shape).astype(float)
    if 0 < ok.sum() < ok.size:
        kw = {"colors": "white", "linewidths": 1.2, "linestyles": "--"} | style
        ax.contour(gx, gy, ok, levels=[0.5], zorder=1, **kw)
        with matplotlib.rc_context({"hatch.color": "white", "hatch.linewidth": 0.5}):
            ax.contourf(gx, gy, ok, levels=[0.5, 1.5], colors="none", hatches=[hatch], zorder=1)


def annotate_probabilities(ax: Axes, x0: np.ndarray, probs: np.ndarray, truth=None) -> None:
    """Write each entity's attention probability beside it; dashed green ring on the right
    entities (truth [N], 0/1)."""
    for p, q in zip(x0[:, E.POS], probs, strict=True):
        ax.annotate(
            f"{q:.2f}",
            p,
            xytext=(6, 5),
            textcoords="offset points",
            fontsize=6,
            zorder=6,
            bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.3},
        )
    if truth is not None:
        bbox = ax.get_position()
        side = min(bbox.width * ax.figure.get_figwidth(), bbox.height * ax.figure.get_figheight())
        area = 6.0 * MARKER_AREA * (side / EVENT_INCHES) ** 2
        ax.scatter(
            *x0[truth > 0.5, E.POS].T,
            s=area,
            facecolors="none",
            edgecolors="tab:green",
            linewidths=1.5,
            linestyles="--",
            zorder=5,
        )


# ----------------------------------------------------------------------------- outputs


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(v) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def training_size(info: dict) -> str:
    """'STEPS x BATCH, SECONDS s' of a train_or_reuse info, for tables."""
    cfg = info["config"]
    return f"{cfg['steps']} x {cfg['batch_size']}, {info['train_seconds']:.0f} s"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"
