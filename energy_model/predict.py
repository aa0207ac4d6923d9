"""The model's few-shot predictions on a task file, written as a task file.

Per task: codes from its demos, then each query generated (x^1 from x^0 and the query's
attention, w_x), identified (the attention from x^0, w_a) or both (the identified entities
moved, as the robot does). The output keeps the instance and the demos and replaces what
was predicted in the queries, so the particle world's own tools judge and draw it:

    python -m particle_world sample north --tasks 10 --out north.npz
    python -m energy_model.predict north.npz --out north_pred.npz
    python -m particle_world score north_pred.npz     # the scorers' verdicts
    python -m particle_world render north_pred.npz --out renders/north_pred

The table printed (and --json) scores only what was predicted, on the queries.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from energy_model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_model
from energy_model.cli_config import add_identification_flag, positive_int, seed_int
from energy_model.inference import generate, identify, infer_codes, with_test_time
from particle_world.io import load_tasks, prepare_output, save_tasks, write_json
from particle_world.tasks import Task, overall_scores, score_task

CONTEXTS = ("auto", "generation", "identification", "both")
"""auto: generation for a task testing its family's action, identification for one testing
its argument."""


def contexts_of(task: Task, context: str) -> tuple[bool, bool]:
    """(generate, identify) for a task under a --context value."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    if context == "auto":
        context = "generation" if task.instance.role == "action" else "identification"
    return context in ("generation", "both"), context in ("identification", "both")


def predict_task(model, task: Task, context: str = "auto", steps=None, restarts=None) -> Task:
    """The task with its queries' attention identified and/or their outcome generated;
    identified attention is the model's probabilities thresholded at 0.5."""
    gen, ident = contexts_of(task, context)
    codes = infer_codes(model, task.demos)
    q = task.queries
    attention = q.attention
    if ident:
        prob = identify(model, q.x[:, 0], codes.w_a, q.valid, steps=steps, restarts=restarts)
        attention = (prob.cpu().numpy() > 0.5).astype(q.attention.dtype)
    x = q.x
    if gen:
        out = generate(model, q.x, attention, codes.w_x, q.valid, steps=steps)
        x = out.cpu().numpy().astype(q.x.dtype)  # padded entities are never attended: kept
    return replace(task, queries=replace(q, x=x, attention=attention))


def predicted_scores(task: Task, context: str) -> dict:
    """The queries' scores for what was predicted (None for what was not)."""
    gen, ident = contexts_of(task, context)
    s = score_task(task, batches=("queries",))
    for metric, on in (("generation", gen), ("attention", ident)):
        if not on:
            s[f"{metric}_error"] = s[f"{metric}_success"] = None
    return s


def _fmt(v, width=8) -> str:
    return f"{'-':>{width}s}" if v is None else f"{v:{width}.4f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m energy_model.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tasks", type=Path, help="a task file (`python -m particle_world sample`)")
    p.add_argument("--out", type=Path, required=True, help="the predicted task file (.npz)")
    p.add_argument(
        "--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
        help="trained model (default: assets/checkpoints/default.pt)",
    )  # fmt: skip
    p.add_argument(
        "--context", choices=CONTEXTS, default="auto",
        help="what to predict: auto (by each task's role), generation, identification, both",
    )  # fmt: skip
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the chains' noise")
    p.add_argument("--steps", type=positive_int, help="Langevin steps (default: as trained)")
    p.add_argument(
        "--restarts", type=positive_int,
        help="identification chains per query, the lowest-energy one kept (default: the "
        "checkpoint's)",
    )  # fmt: skip
    add_identification_flag(p)
    p.add_argument("--json", type=Path, help="also write the scores here")
    p.add_argument("--threads", type=positive_int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        for flag, path in (("--out", args.out), ("--json", args.json)):
            if path is not None:
                prepare_output(flag, path)
        tasks = load_tasks(args.tasks)
        if not tasks:
            raise ValueError(f"{args.tasks}: the file holds no tasks to predict")
        model = with_test_time(load_model(args.checkpoint), identification=args.identification)
        torch.manual_seed(args.seed)
        predicted = [
            predict_task(model, t, args.context, args.steps, args.restarts)
            for t in tqdm(tasks, desc="predicting", unit="task", ncols=100, disable=None)
        ]
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    path = save_tasks(args.out, predicted)
    rows = [predicted_scores(t, args.context) for t in predicted]
    print(f"{'task':>4}  {'gen err':>8} {'gen ok':>8}  {'att err':>8} {'att ok':>8}  family (role)")
    for i, r in enumerate(rows):
        inst = predicted[i].instance
        print(f"{i:>4}  {_fmt(r['generation_error'])} {_fmt(r['generation_success'])}  "
              f"{_fmt(r['attention_error'])} {_fmt(r['attention_success'])}  "
              f"{inst.family} ({inst.role})")  # fmt: skip
    total = overall_scores(rows)
    print(f"{'all':>4}  {_fmt(total['generation_error'])} {_fmt(total['generation_success'])}  "
          f"{_fmt(total['attention_error'])} {_fmt(total['attention_success'])}  "
          f"{total['events']} queries; wrote {path}")  # fmt: skip
    if args.json:
        write_json(args.json, {"tasks": rows, "overall": total, "out": str(path),
                               "checkpoint": str(args.checkpoint), "context": args.context,
                               "seed": args.seed})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
