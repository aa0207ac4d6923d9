"""Energy-sum ensembles of trained checkpoints: are the held-out misses a run's noise?

Each member infers its own codes from the demos; the ensemble scores every state with the
mean of the members' energies (a product of experts: the paper composes concepts by
summing their energies, here the sum runs over independently trained models of the same
concepts). Generation runs the first member's learned sampler on that mean, whose scale is
a member's; identification searches the masks as the members do. If the families a model
misses were the noise of its training run, averaging runs would recover much of them; if
every run misses them alike, what holds them back is the recipe (docs/learning.md,
"Ensembles").

    python bench/ensemble.py --checkpoints A B [C ...] [--seed 1] [--tasks 20]
                             [--threads 1] [--json bench/ensemble.json]

The JSON is shaped like energy_model.evaluate's, with the members and settings beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from energy_model.checkpoint import CheckpointError, load_model
from energy_model.data import units
from energy_model.evaluate import table
from energy_model.evaluation import evaluate
from energy_model.model import ConceptModel
from particle_world.io import write_json


class MeanEnergy(nn.Module):
    """The mean of energy networks, each on its own slice of the concatenated code."""

    def __init__(self, nets: list[nn.Module], code_dims: list[int]):
        super().__init__()
        self.nets, self.code_dims = nn.ModuleList(nets), code_dims

    def forward(self, x, gate, w, valid):
        parts = zip(self.nets, w.split(self.code_dims, -1), strict=True)
        return torch.stack([net(x, gate, wk, valid) for net, wk in parts]).mean(0)

    def gate_energy(self, x, w, valid):
        parts = zip(self.nets, w.split(self.code_dims, -1), strict=True)
        fns = [net.gate_energy(x, wk, valid) for net, wk in parts]
        return lambda gate: torch.stack([fn(gate) for fn in fns]).mean(0)


class Ensemble(ConceptModel):
    """ConceptModel's inference (generate, identify, the energy) over MeanEnergy; the codes
    are the members' own, concatenated. Test-time only: it is not trained or saved."""

    def __init__(self, members: list[ConceptModel]):
        first = members[0]
        if any(m.net_a is not None for m in members):
            raise ValueError("members with one network per context are not supported")
        dims = [m.model_cfg.code_dim for m in members]
        super().__init__(dataclasses.replace(first.model_cfg, code_dim=sum(dims)),
                         first.inference_cfg)  # fmt: skip
        self.members = nn.ModuleList(members)
        self.net = MeanEnergy([m.net for m in members], dims)
        self.sample_x, self.sample_a = first.sample_x, first.sample_a

    def infer_codes(self, *args, **kwargs):
        per_member = zip(*(m.infer_codes(*args, **kwargs) for m in self.members), strict=True)
        return tuple(None if ws[0] is None else torch.cat(ws, -1) for ws in per_member)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out tasks")
    p.add_argument("--tasks", type=int, default=20, help="held-out tasks per family and role")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=Path("bench/ensemble.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        model = Ensemble([load_model(c) for c in args.checkpoints]).eval()
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tqdm(total=len(units(None)), ncols=100, desc="evaluating") as bar:
        result = evaluate(model, None, args.tasks, args.seed, progress=bar)
    print(table({"ensemble": result}))
    rates = [r["success_rate"] for r in result["concepts"].values()]
    write_json(args.json, {
        "checkpoints": [str(c) for c in args.checkpoints], "seed": args.seed,
        "tasks": args.tasks, "mean_success": sum(rates) / len(rates), **result,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
