"""Evaluate a checkpoint on held-out few-shot tasks, beside the untrained network.

    python -m energy_model.evaluate --checkpoint CKPT [--concepts a,b] [--tasks N] [--seed S]
                                    [--steps K [K ...]] [--json FILE] [--plot PNG]
    python -m energy_model.evaluate --transfer-table [--train-steps N] [--checkpoint CKPT]
                                    [--json FILE]

The first prints, per concept family, generation error, attention error and success rate
(a metric that does not apply to a family's roles is shown as '-', null in the JSON; the
JSON also records the settings that produced it: checkpoint, seed, tasks, entities, steps
(null: as trained), restarts, identification, code_likelihood and generation_likelihood).
The second reproduces the paper's
transfer table on region-point: untrained, trained on generation only, on identification
only, on both; with --checkpoint, that checkpoint's row (compared with the paper's 'both').
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from energy_model.checkpoint import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    load_model,
    read_checkpoint,
)
from energy_model.cli_config import add_identification_flag, parse_bool, positive_int, seed_int
from energy_model.config import TrainConfig, from_dict
from energy_model.data import concept_list, units
from energy_model.evaluation import evaluate, evaluate_unit
from energy_model.inference import with_test_time
from energy_model.plots import plot_success
from particle_world.io import prepare_output, write_json
from particle_world.tasks import DEFAULT_ENTITIES

TRANSFER_STEPS = 600  # training steps per model of the transfer table
PAPER_TRANSFER = {
    "untrained": (0.621, 0.698),
    "generation": (0.006, 0.061),
    "identification": (0.016, 0.001),
    "both": (0.007, 0.001),
}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def table(results: dict[str, dict]) -> str:
    """Rows per concept, columns per model: generation error / attention error / success."""
    names = list(next(iter(results.values()))["concepts"])
    head = f"{'concept':15s}" + "".join(f" | {m:^30s}" for m in results)
    sub = f"{'':15s}" + " | gen_err  att_err  success     " * len(results)
    lines = [head, sub, "-" * len(head)]
    for name in names:
        row = f"{name:15s}"
        for res in results.values():
            r = res["concepts"][name]
            row += (
                f" | {_fmt(r['generation_error']):8s} {_fmt(r['attention_error']):8s} "
                f"{r['success_rate']:6.1%}     "
            )
        lines.append(row)
    means = " | ".join(
        f"mean success {sum(r['success_rate'] for r in res['concepts'].values()) / len(names):.1%}"
        for res in results.values()
    )
    lines.append(f"{'':15s} | {means}")
    return "\n".join(lines)


def untrained_like(path) -> torch.nn.Module:
    """A freshly initialised network with the checkpoint's config (the baseline row)."""
    from energy_model.train import build_model

    ckpt = read_checkpoint(path)
    cfg = from_dict(TrainConfig, ckpt["train_config"])
    return build_model(replace(cfg, device="cpu"))


def transfer_table(
    steps: int,
    seed: int,
    tasks: int,
    threads: int,
    pair_gate: str | None = None,
    test_time: dict | None = None,
) -> dict:
    """Train region-point on each context, evaluate both contexts on held-out region-point
    tasks (the paper's table): generation error of the move, attention error of the color
    argument. A run under runs/ trained with exactly this config is reused; test_time:
    with_test_time's overrides for every row."""
    from energy_model.experiments.common import train_or_reuse
    from energy_model.train import build_model

    rows = {}
    for contexts in ("untrained", "generation", "identification", "both"):
        cfg = TrainConfig(concepts=["region-point"], steps=steps, seed=seed, eval_every=0,
                          threads=threads)  # fmt: skip
        cfg.model.pair_gate = pair_gate or cfg.model.pair_gate
        if contexts == "untrained":
            model = build_model(cfg)
        else:
            cfg.loss.contexts = contexts
            name = f"transfer-{contexts}" + (f"-{pair_gate}" if pair_gate else "")
            model, _ = train_or_reuse(cfg, Path("runs") / name)
        model = with_test_time(model, **(test_time or {}))
        rows[contexts] = transfer_row(model, tasks, seed + 1)
    return rows


def transfer_row(model, tasks: int, seed: int) -> dict:
    """One row of the transfer table: region-point generation error of the move and
    attention error of the color argument on held-out tasks drawn from seed."""
    gen, att = (
        evaluate_unit(model, "region-point", "action", tasks, seed, context=c)
        for c in ("generation", "identification")
    )
    return {"generation_error": gen["error"], "attention_error": att["error"],
            "generation_success": gen["success_rate"],
            "attention_success": att["success_rate"]}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m energy_model.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint", type=Path,
        help="checkpoint to evaluate (default: assets/checkpoints/default.pt); with "
        "--transfer-table, its row of the table instead of training the four models",
    )  # fmt: skip
    p.add_argument("--concepts", help="comma-separated families (default: all)")
    p.add_argument(
        "--tasks", type=positive_int, default=20, help="held-out tasks per family and role"
    )
    p.add_argument("--seed", type=seed_int, default=1, help="seed of the held-out tasks")
    p.add_argument(
        "--steps", type=positive_int, nargs="+", metavar="N",
        help="test-time Langevin steps (default: as trained); several values: each task "
        "picks among them the one that best reproduces its own demos",
    )  # fmt: skip
    p.add_argument(
        "--entities", type=int, nargs=2, default=DEFAULT_ENTITIES, metavar=("MIN", "MAX"),
        help="entities per held-out scene (default: 3 8, as in training)",
    )  # fmt: skip
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument(
        "--plot", type=Path, metavar="PNG",
        help="draw the success per family, beside the untrained network, as a bar chart",
    )  # fmt: skip
    p.add_argument("--no-baseline", action="store_true", help="skip the untrained row")
    p.add_argument("--transfer-table", action="store_true", help="the paper's transfer table")
    p.add_argument(
        "--train-steps", type=positive_int,
        help=f"transfer table without --checkpoint: steps per run (default: {TRANSFER_STEPS})",
    )  # fmt: skip
    p.add_argument(
        "--pair-gate",
        help="transfer table without --checkpoint: the model's pair gate (default: as config)",
    )
    p.add_argument(
        "--restarts", type=positive_int,
        help="identification chains per scene, the lowest-energy one kept (default: the "
        "checkpoint's inference.restarts; 1 reproduces tables measured before restarts)",
    )  # fmt: skip
    p.add_argument(
        "--generation-restarts", type=positive_int,
        help="generation chains per query, one from x^0 and the others from uniform "
        "positions and colors, the lowest-energy one kept (default: the checkpoint's "
        "inference.generation_restarts)",
    )  # fmt: skip
    p.add_argument(
        "--code-likelihood", type=parse_bool, metavar="{true,false}",
        help="identification's code inference by the demos' likelihood over neighbor masks "
        "(default: the checkpoint's inference.code_likelihood; docs/learning.md, 'Closest "
        "beside the other argument families')",
    )  # fmt: skip
    p.add_argument(
        "--generation-likelihood", type=parse_bool, metavar="{true,false}",
        help="generation's code inference by the demos' likelihood against their start and "
        "noised copies (default: the checkpoint's inference.generation_likelihood)",
    )  # fmt: skip
    add_identification_flag(p)
    p.add_argument("--threads", type=positive_int, default=1)
    args = p.parse_args(argv)
    test_time = {"restarts": args.restarts, "generation_restarts": args.generation_restarts,
                 "identification": args.identification,
                 "code_likelihood": args.code_likelihood,
                 "generation_likelihood": args.generation_likelihood}  # fmt: skip
    if not 1 <= args.entities[0] <= args.entities[1]:
        p.error(f"--entities must be MIN MAX with 1 <= MIN <= MAX, got {args.entities}")
    torch.set_num_threads(args.threads)
    steps = args.steps[0] if args.steps and len(args.steps) == 1 else args.steps
    if args.transfer_table:
        for flag, value in (("--plot", args.plot), ("--concepts", args.concepts)):
            if value is not None:
                p.error(f"{flag} is for the per-family table; --transfer-table is on region-point")
    trains = args.transfer_table and args.checkpoint is None
    train_steps = args.train_steps or TRANSFER_STEPS
    for flag, value in (("--train-steps", args.train_steps), ("--pair-gate", args.pair_gate)):
        if value is not None and not trains:
            p.error(
                f"{flag} only sets the models --transfer-table trains when no --checkpoint "
                "is given; drop it or use it there"
            )
    try:
        for flag, path in (("--json", args.json), ("--plot", args.plot)):
            if path is not None:
                prepare_output(flag, path)
        if args.transfer_table:
            if args.checkpoint:
                model = with_test_time(load_model(args.checkpoint), **test_time)
                rows = {str(args.checkpoint): transfer_row(model, args.tasks, args.seed + 1)}
            else:
                rows = transfer_table(
                    train_steps,
                    args.seed,
                    args.tasks,
                    args.threads,
                    args.pair_gate,
                    test_time,
                )
            print(f"{'condition':16s} {'gen_err':>8s} {'att_err':>8s}   paper gen / att")
            for name, r in rows.items():
                pg, pa = PAPER_TRANSFER.get(name, PAPER_TRANSFER["both"])
                print(f"{name:16s} {r['generation_error']:8.4f} {r['attention_error']:8.4f}"
                      f"   {pg:.3f} / {pa:.3f}")  # fmt: skip
            out = {"transfer_table": rows, "paper": PAPER_TRANSFER, "seed": args.seed}
            if not args.checkpoint:
                out.update(train_steps=train_steps, pair_gate=args.pair_gate)
        else:
            args.checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
            concepts = concept_list(args.concepts)
            n_units = len(units(concepts))
            models = {"trained": load_model(args.checkpoint)}
            if not args.no_baseline:
                models = {"untrained": untrained_like(args.checkpoint), **models}
            models = {k: with_test_time(m, **test_time) for k, m in models.items()}
            results = {}
            with tqdm(total=n_units * len(models), ncols=100, desc="evaluating") as bar:
                for name, model in models.items():
                    results[name] = evaluate(
                        model, concepts, args.tasks, args.seed, steps,
                        tuple(args.entities), progress=bar,
                    )  # fmt: skip
            print(table(results))
            if args.plot:
                plot_success(results, args.plot)
            inference = models["trained"].inference_cfg
            out = {**results["trained"], "baselines": {k: v for k, v in results.items()
                                                       if k != "trained"},
                   "checkpoint": str(args.checkpoint), "seed": args.seed, "tasks": args.tasks,
                   "entities": list(args.entities), "steps": args.steps,
                   **{name: getattr(inference, name) for name in test_time}}  # fmt: skip
    except (CheckpointError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
