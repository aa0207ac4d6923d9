"""Command line of the particle world: list concepts, sample tasks to .npz, render, score.

python -m particle_world concepts
python -m particle_world sample north --tasks 100 --seed 0 --out north.npz
python -m particle_world render north.npz --out renders/north
python -m particle_world score north.npz
python -m particle_world gallery --out docs/gallery
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from particle_world import entities as E
from particle_world.concepts import REGISTRY, Action, Family, get_family
from particle_world.io import load_tasks, prepare_output, save_tasks
from particle_world.tasks import DEFAULT_ENTITIES, overall_scores, sample_task, score_task


class UsageError(Exception):
    """A bad command line or input file: reported as one `error:` line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def family_info(fam: Family) -> dict:
    """What `concepts` shows of a family. Argument-only families are paired with the
    color action, so their horizon is that action's."""
    parts = [p for p in (fam.argument, fam.action) if p is not None]
    horizon = fam.action.horizon if fam.action else get_family("color").action.horizon
    return {
        "name": fam.name,
        "roles": list(fam.roles),
        "description": fam.description,
        "horizon": horizon,
        "reference_entities": max(p.n_refs for p in parts),
    }


def cmd_concepts(args) -> None:
    infos = [family_info(fam) for fam in REGISTRY.values()]
    if args.json:
        print(json.dumps({"reference_shape": E.REFERENCE_SHAPE, "families": infos}, indent=2))
        return
    print(f"{'name':<14} {'roles':<18} {'T':>2} {'refs':>4}  description")
    for f in infos:
        roles = ", ".join(f["roles"])
        print(
            f"{f['name']:<14} {roles:<18} {f['horizon']:>2} "
            f"{f['reference_entities']:>4}  {f['description']}"
        )
    print(
        f"\nrefs: reference entities of the scene, drawn as {E.REFERENCE_SHAPE}es; other entities"
        " are never crosses in those scenes. T: steps after the initial state."
    )


def known(name: str | None) -> None:
    """Fail with get_family's message (which lists the known names) on an unknown name."""
    if name is None:
        return
    try:
        get_family(name)
    except KeyError as err:
        raise UsageError(err.args[0]) from None


def at_least(args, **lows: int) -> None:
    """Fail on an integer option below its lowest value: at_least(args, seed=0)."""
    for name, low in lows.items():
        if getattr(args, name) < low:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be at least {low}, got {getattr(args, name)}")


def cmd_sample(args) -> None:
    for name in (args.concept, args.argument, args.action):
        known(name)
    at_least(args, tasks=1, seed=0, demos=1, queries=1, min_entities=1)
    if args.max_entities < args.min_entities:
        raise UsageError(
            f"--max-entities ({args.max_entities}) is below --min-entities ({args.min_entities})"
        )
    prepare_output("--out", args.out)  # a folder given as --out fails now, not as FOLDER.npz
    tasks = [
        sample_task(
            args.concept,
            np.random.default_rng([args.seed, i]),
            n_demos=args.demos,
            n_queries=args.queries,
            n_entities=(args.min_entities, args.max_entities),
            role=args.role,
            argument=args.argument,
            action=args.action,
        )
        for i in tqdm(range(args.tasks), desc="sampling", unit="task", disable=None)
    ]
    path = save_tasks(args.out, tasks)
    print(f"wrote {len(tasks)} {args.concept} tasks to {path}")


def cmd_render(args) -> None:
    from particle_world.render import (  # matplotlib loads only for the commands that draw
        describe,
        render_event,
        render_task_grid,
        render_trajectory_gif,
    )

    tasks = load_tasks(args.file)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for i, task in enumerate(tqdm(tasks, desc="rendering", unit="task", disable=None)):
        render_task_grid(task, out / f"task{i:03d}.png")
        written += 1
        label = describe(task.instance)
        for kind, batch in (("demo", task.demos), ("query", task.queries)):
            for j, event in enumerate(batch.events()):
                stem = out / f"task{i:03d}_{kind}{j}"
                render_event(event, stem.with_suffix(".png"), f"{kind} {j}: {label}")
                written += 1
                if event.horizon > 1:
                    render_trajectory_gif(event, stem.with_suffix(".gif"), f"{kind} {j}")
                    written += 1
    print(f"wrote {written} images of {len(tasks)} tasks to {out}")


def cmd_gallery(args) -> None:
    from matplotlib.colors import PowerNorm

    from particle_world.render import DPI, EVENT_INCHES, describe, error_landscape, render_event

    at_least(args, seed=0, resolution=2)
    pixels = int(EVENT_INCHES * DPI)  # a finer map shows nothing more and costs its square
    if args.resolution > pixels:
        raise UsageError(
            f"--resolution must be at most {pixels} (the picture's pixels), got {args.resolution}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, fam) in enumerate(tqdm(REGISTRY.items(), desc="gallery", disable=None)):
        role = fam.roles[-1]  # the action where there is one: it shows more
        task = sample_task(name, np.random.default_rng([args.seed, i]), n_demos=1, role=role)
        inst, event = task.instance, task.demos.event(0)
        heat = {}
        if inst.act.error_unit == Action.error_unit:  # world units: a landscape over the plane
            heat = {
                "energy_fn": error_landscape(inst, event),
                "resolution": args.resolution,
                "norm": PowerNorm(0.5),
                "cmap": "Greys_r",
                "alpha": 0.45,
            }
        render_event(event, out / f"{name}.png", describe(inst), **heat)
    print(f"wrote {len(REGISTRY)} pictures to {out}")


def cmd_score(args) -> None:
    from particle_world.render import describe

    tasks = load_tasks(args.file)
    if not tasks:
        raise UsageError(f"{args.file}: the file holds no tasks to score")
    rows = [
        score_task(t) | {"description": describe(t.instance), "instance": asdict(t.instance)}
        for t in tasks
    ]
    overall = overall_scores(rows)
    if args.json:
        print(json.dumps({"tasks": rows, "overall": overall}, indent=2))
        return
    print(f"{'task':>4}  {'gen err':>8} {'gen ok':>6}  {'att err':>8} {'att ok':>6}  instance")
    for i, r in enumerate(rows + [overall]):
        name = "all" if i == len(rows) else str(i)
        print(
            f"{name:>4}  {r['generation_error']:8.4f} {r['generation_success']:6.2f}  "
            f"{r['attention_error']:8.4f} {r['attention_success']:6.2f}  "
            + r.get("description", f"{r['events']} events")
        )
    units = sorted({r["error_unit"] for r in rows})
    print(f"generation error in {', '.join(units)}; ok = success rate")


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m particle_world",
        description="Events of a 2D particle world that demonstrate concepts, with their truth: "
        "list the concept families, sample few-shot tasks to .npz, render them, score them, "
        "draw a gallery of the families.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("concepts", help="list the concept families and their roles")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_concepts)

    p = sub.add_parser(
        "sample",
        help="sample few-shot tasks of a concept into an .npz",
        description="Sample TASKS few-shot tasks (an instance, its demos and queries) of a "
        "concept family. Task i draws from np.random.default_rng([SEED, i]), so the same "
        "command writes the same file.",
    )
    p.add_argument("concept", help="a family name (see `concepts`)")
    p.add_argument("--tasks", type=int, default=1, help="number of tasks (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed, >= 0 (default 0)")
    p.add_argument("--out", required=True, help="output .npz (suffix added if missing)")
    p.add_argument(
        "--role",
        choices=("argument", "action"),
        help="which role of the family is tested (default: random per task among its roles)",
    )
    p.add_argument("--argument", help="pair with this family's argument (default: color)")
    p.add_argument("--action", help="pair with this family's action (default: color)")
    p.add_argument("--demos", type=int, default=5, help="demo events per task (default 5)")
    p.add_argument("--queries", type=int, default=5, help="query events per task (default 5)")
    p.add_argument("--min-entities", type=int, default=DEFAULT_ENTITIES[0], help="default 3")
    p.add_argument("--max-entities", type=int, default=DEFAULT_ENTITIES[1], help="default 8")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser(
        "render",
        help="render a task file to PNGs (and GIFs)",
        description="Per task: a grid of its demos and queries (taskNNN.png), one PNG per "
        "event (taskNNN_demoJ.png, taskNNN_queryJ.png) and a GIF per event of horizon T > 1.",
    )
    p.add_argument("file", help="an .npz written by `sample`")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.set_defaults(run=cmd_render)

    p = sub.add_parser(
        "gallery",
        help="one demo picture per concept family (docs/gallery)",
        description="Render the first demo of one task per family, in its action role where "
        "it has one, to OUT/<family>.png. Where the action's error is a distance, a gray heat "
        "map shows it as the first attended entity's end point moves (darkest: satisfied).",
    )
    p.add_argument("--out", default="docs/gallery", help="output folder (default docs/gallery)")
    p.add_argument("--seed", type=int, default=0, help="seed, >= 0 (default 0)")
    p.add_argument(
        "--resolution",
        type=int,
        default=80,
        help="heat map grid points per side, 2 to 400 (default 80)",
    )
    p.set_defaults(run=cmd_gallery)

    p = sub.add_parser(
        "score",
        help="score a task file's events with the concepts' scorers",
        description="Per task and overall: generation error and success of the stored "
        "trajectories, attention error and success of the stored attention. Ground truth "
        "scores zero error and full success.",
    )
    p.add_argument("file", help="an .npz written by `sample`")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on a bad command line or file)."""
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError) as err:  # bad files, impossible pairings
        print(f"error: {(str(err) or type(err).__name__).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
