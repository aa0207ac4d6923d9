"""Run one of the paper's experiments (or all of them, one after another).

python -m energy_model.experiments NAME [options]      (NAME --help for its options)
python -m energy_model.experiments all [--out DIR] [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from energy_model.checkpoint import CheckpointError
from energy_model.experiments import EXPERIMENTS, experiment
from energy_model.experiments.common import DEFAULT_CHECKPOINT, DEFAULT_OUT, ExperimentError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m energy_model.experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name in EXPERIMENTS:
        module = experiment(name)
        p = sub.add_parser(
            name,
            help=module.DESCRIPTION.splitlines()[0],
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
    p = sub.add_parser("all", help="every experiment with its default options")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for PNGs and JSON")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help="for the experiments that take one",
    )
    return parser


def prepare_folder(flag: str, path: Path) -> None:
    """Make an output folder before the experiment runs, so that a path that cannot be one
    fails at once on one line, not after minutes of training."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExperimentError(f"{flag} {path} cannot be a folder ({err})") from None


def run_one(name: str, argv: list[str]) -> None:
    module = experiment(name)
    args = build_parser().parse_args([name, *argv])
    prepare_folder("--out", args.out)
    if "runs" in vars(args):
        prepare_folder("--runs", args.runs)
    t0 = time.time()
    result = module.run(args)
    print(f"\n## {name} ({time.time() - t0:.0f} s; written to {args.out})\n")
    print(module.table(result))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.name == "all":
            for name in EXPERIMENTS:
                argv = ["--out", str(args.out)]
                if "checkpoint" in vars(build_parser().parse_args([name])):
                    argv += ["--checkpoint", str(args.checkpoint)]
                run_one(name, argv)
        else:
            run_one(args.name, argv[1:])
    except (ExperimentError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
