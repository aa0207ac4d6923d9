"""Is it the codes or the energy? Train and evaluate with oracle generation codes.

Algorithm 1 as `python -m energy_model.train` runs it (every flag of its is accepted), except
that the generation code w_x is not inferred from the demos: it is a fixed function of the
task's true instance, the family and its action's parameters. Its first numeric slots hold
the action's numbers (region-point's point, a line's offset, a circle's centre and radius),
the rest a fixed random unit vector per family and non-numeric parameter (a color). If the
energy then learns the families that fail with inferred codes, code inference is what
holds them back; if not, the energy and its training are.

Only the generation code is the oracle's; identification's stays inferred (train with
`--loss.contexts generation` to leave it out). `--code identification` makes the
identification code w_a the oracle's instead (the argument's family and parameters, a
color for instance), generation's inferred:

    python bench/oracle_codes.py --out runs/NAME --loss.contexts generation \
        --concepts region-point,region-hline,... [any energy_model.train flag]
    python bench/oracle_codes.py --out runs/NAME ... --oracle rotated  # mixed, see MODES
    python bench/oracle_codes.py --out runs/NAME ... --oracle start    # refined from it
    python bench/oracle_codes.py --out runs/NAME --code identification --roles argument ...

The run folder is the trainer's (eval.json holds the held-out success with oracle codes).
"""

from __future__ import annotations

import functools
import hashlib
import sys

import numpy as np
import torch

import energy_model.evaluation as evaluation
import energy_model.train as trainer
from energy_model.model import ConceptModel

NUMERIC_SLOTS = 4
"""Code slots for an action's numbers; the largest family here has 3 (a circle)."""

MODES = ("slots", "rotated", "start")
"""slots: w_x is the oracle code; rotated: the same under a fixed random rotation, so no slot
holds one number (does the code's layout matter?); start: code inference's Langevin steps on
the demos' energy start from the oracle code instead of the encoder's guess (do the steps
keep it?)."""

_current: list = []  # the instances of the batch or held-out tasks now being scored


def _numbers(params: dict) -> list[float]:
    return [
        float(v) for value in params.values() if not isinstance(value, str)
        for v in np.atleast_1d(value)
    ]  # fmt: skip


def oracle_code(instance, code_dim: int, context: str = "generation") -> np.ndarray:
    """The instance's fixed code for a context: its action's (argument's) numbers, then a
    unit vector seeded by the family, role and non-numeric parameters."""
    params = instance.action_params if context == "generation" else instance.argument_params
    nums = _numbers(params)
    if len(nums) > NUMERIC_SLOTS or code_dim <= NUMERIC_SLOTS:
        raise ValueError(
            f"{instance.family}: {len(nums)} numbers and a family vector do not fit a code of "
            f"{code_dim} with {NUMERIC_SLOTS} number slots; raise --model.code-dim"
        )
    words = [instance.family, instance.role] + [
        f"{k}={v}" for k, v in sorted(params.items()) if isinstance(v, str)
    ]
    seed = int.from_bytes(hashlib.sha256("|".join(words).encode()).digest()[:8], "little")
    direction = np.random.default_rng(seed).normal(size=code_dim - NUMERIC_SLOTS)
    code = np.zeros(code_dim)
    code[: len(nums)] = nums
    code[NUMERIC_SLOTS:] = direction / np.linalg.norm(direction)
    return code


@functools.cache
def _rotation(code_dim: int) -> np.ndarray:
    """The fixed random rotation of the 'rotated' mode."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(code_dim, code_dim)))
    return q


def _oracle_codes(
    n_tasks: int, code_dim: int, mode: str, like: torch.Tensor, context: str = "generation"
) -> torch.Tensor:
    if len(_current) != n_tasks:
        raise RuntimeError(f"{len(_current)} instances for {n_tasks} tasks")
    codes = np.stack([oracle_code(i, code_dim, context) for i in _current])
    if mode == "rotated":
        codes = codes @ _rotation(code_dim)
    return torch.as_tensor(codes, dtype=like.dtype, device=like.device)


def _patch(mode: str, context: str = "generation") -> None:
    """Route the context's code through the oracle (MODES); meta_loss and held_out_tasks set
    _current."""
    if mode == "start":
        original_initial = ConceptModel.initial_codes
        oracle_context = context

        def initial_codes(self, n_tasks, context, offsets=None):
            start = original_initial(self, n_tasks, context, offsets)
            if context != oracle_context:
                return start
            return _oracle_codes(n_tasks, self.model_cfg.code_dim, mode, start, context)

        ConceptModel.initial_codes = initial_codes
    else:
        original_infer = ConceptModel.infer_codes

        def infer_codes(self, traj, attention, valid, create_graph=False, steps=None,
                        contexts="both"):  # fmt: skip
            w_x, w_a = original_infer(self, traj, attention, valid, create_graph, steps, contexts)
            dim = self.model_cfg.code_dim
            if context == "generation" and w_x is not None:
                w_x = _oracle_codes(traj.shape[0], dim, mode, w_x)
            if context == "identification" and w_a is not None:
                w_a = _oracle_codes(traj.shape[0], dim, mode, w_a, context)
            return w_x, w_a

        ConceptModel.infer_codes = infer_codes
    trainer.meta_loss = _meta_loss
    evaluation.held_out_tasks = _held_out_tasks


def _meta_loss(model, batch, cfg):
    _current[:] = batch.instances
    return _original_meta_loss(model, batch, cfg)


def _held_out_tasks(*args, **kwargs):
    tasks = _original_held_out_tasks(*args, **kwargs)
    _current[:] = [t.instance for t in tasks]
    return tasks


_original_meta_loss = trainer.meta_loss
_original_held_out_tasks = evaluation.held_out_tasks


def _pop_option(argv: list[str], name: str, choices: tuple[str, ...]) -> str:
    """This script's own option `name VALUE`, taken out of argv (the rest goes to the
    trainer); choices[0] when absent."""
    if name not in argv:
        return choices[0]
    i = argv.index(name)
    value = argv[i + 1] if i + 1 < len(argv) else ""
    del argv[i : i + 2]
    if value not in choices:
        raise SystemExit(f"{name} must be one of {choices}, got {value!r}")
    return value


def main() -> int:
    argv = sys.argv[1:]
    mode = _pop_option(argv, "--oracle", MODES)
    _patch(mode, _pop_option(argv, "--code", ("generation", "identification")))
    return trainer.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
