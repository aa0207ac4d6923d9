"""Few-shot tasks from particle_world as torch batches, streamed from a seed."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from energy_model.config import ROLES
from particle_world import REGISTRY, Task, get_family, sample_task
from particle_world.events import EventBatch
from particle_world.tasks import DEFAULT_ENTITIES, Instance


@dataclass
class TaskBatch:
    """B tasks: demos x [B, Kd, T+1, N, D], attention and valid [B, Kd, N]; queries likewise
    with Kq events. partner [B]: the task each task is contrasted with (the code-contrast
    loss), its sibling when the batch was drawn in sibling pairs, else the previous task."""

    demo_x: torch.Tensor
    demo_att: torch.Tensor
    demo_valid: torch.Tensor
    query_x: torch.Tensor
    query_att: torch.Tensor
    query_valid: torch.Tensor
    partner: torch.Tensor
    instances: list[Instance]

    def to(self, device) -> TaskBatch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return TaskBatch(**moved, instances=self.instances)


def _stack(batches: list[EventBatch], n: int):
    """Pad event batches to n entities and stack: x [B, K, T+1, n, D], att, valid [B, K, n]."""
    x = np.stack([np.pad(e.x, ((0, 0), (0, 0), (0, n - e.x.shape[2]), (0, 0))) for e in batches])
    att = np.stack([np.pad(e.attention, ((0, 0), (0, n - e.attention.shape[1]))) for e in batches])
    val = np.stack([np.pad(e.valid, ((0, 0), (0, n - e.valid.shape[1]))) for e in batches])
    return torch.from_numpy(x), torch.from_numpy(att), torch.from_numpy(val)


def collate(tasks: list[Task], paired: bool = False) -> TaskBatch:
    """Tasks of one horizon padded to the largest entity count among them; paired: tasks
    2k and 2k+1 are each other's partner."""
    n = max(max(t.demos.x.shape[2], t.queries.x.shape[2]) for t in tasks)
    idx = torch.arange(len(tasks))
    partner = idx ^ 1 if paired else idx.roll(1)
    return TaskBatch(
        *_stack([t.demos for t in tasks], n),
        *_stack([t.queries for t in tasks], n),
        partner=partner,
        instances=[t.instance for t in tasks],
    )


def units(concepts: list[str] | None = None, roles: tuple[str, ...] = ROLES):
    """(family, role) pairs to train or evaluate on; all registered ones when concepts is
    None. An empty list is refused rather than read as "all"."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}: the roles are {', '.join(ROLES)}")
    names = list(REGISTRY) if concepts is None else list(concepts)
    if not names:
        raise ValueError(
            f"no concept families given; name at least one of {', '.join(REGISTRY)}, "
            "or leave the option out for all of them"
        )
    out = [(c, r) for c in names for r in get_family(c).roles if r in roles]
    if not out:
        raise ValueError(f"no concept among {names} has a role in {roles}")
    return out


def concept_list(text: str | None) -> list[str] | None:
    """Families from a comma-separated command-line value (None: all of them)."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def sibling_units(unit: tuple[str, str], pool: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The units of pool in the same role whose family is defined in the same module as
    unit's (north: south, east, west, between; region-point: the other regions), unit itself
    when it has none: variations of one idea, so a code must tell them apart by the concept,
    not by the family's kind."""

    def module(family):
        fam = get_family(family)
        return type(fam.action or fam.argument).__module__

    family, role = unit
    same = [u for u in pool if u[1] == role and u != unit and module(u[0]) == module(family)]
    return same or [unit]


def unit_horizon(family: str, role: str) -> int:
    fam = get_family(family)
    return fam.action.horizon if role == "action" else 1


class TaskStream(Dataset):
    """Batches indexed by training step: batch s draws from np.random.default_rng([seed, s]),
    so a resumed run, or one with any number of data workers, sees the same data. Each batch
    holds one horizon (one-step or trajectory events), chosen in proportion to how many
    (family, role) units have it. paired: tasks come in pairs of a uniformly drawn unit and
    one of its siblings (sibling_units), hard negatives for the code-contrast loss."""

    def __init__(
        self,
        unit_list: list[tuple[str, str]],
        batch_size: int,
        seed: int,
        n_demos: int = 5,
        n_queries: int = 5,
        n_entities: tuple[int, int] = DEFAULT_ENTITIES,
        paired: bool = False,
    ):
        if paired and batch_size % 2:
            raise ValueError(f"paired batches need an even batch size, got {batch_size}")
        self.paired = paired
        self.groups: dict[int, list] = {}
        for u in unit_list:
            self.groups.setdefault(unit_horizon(*u), []).append(u)
        self.siblings = {u: sibling_units(u, g) for g in self.groups.values() for u in g}
        self.batch_size, self.seed = batch_size, seed
        self.n_demos, self.n_queries, self.n_entities = n_demos, n_queries, n_entities

    def batch(self, step: int) -> TaskBatch:
        rng = np.random.default_rng([self.seed, step])
        keys = sorted(self.groups)
        sizes = np.array([len(self.groups[k]) for k in keys], dtype=float)
        group = self.groups[keys[rng.choice(len(keys), p=sizes / sizes.sum())]]
        picked = []
        while len(picked) < self.batch_size:
            unit = group[rng.integers(len(group))]
            picked.append(unit)
            if self.paired:
                siblings = self.siblings[unit]
                picked.append(siblings[rng.integers(len(siblings))])
        tasks = [
            sample_task(family, rng, self.n_demos, self.n_queries, self.n_entities, role=role)
            for family, role in picked
        ]
        return collate(tasks, self.paired)

    __getitem__ = batch

    def batches(self, start: int, stop: int, workers: int = 0):
        """Batches start..stop-1 in order; workers > 0 builds them in that many processes
        ahead of use (scene sampling is numpy on the CPU: on a GPU it would otherwise be
        the bottleneck at large batches)."""
        if workers == 0:
            return (self.batch(s) for s in range(start, stop))
        return DataLoader(
            self, batch_size=None, sampler=range(start, stop), num_workers=workers,
            collate_fn=_identity, prefetch_factor=4, worker_init_fn=_one_thread,
            generator=torch.Generator(),  # its worker seeds must not draw from the global RNG
        )  # fmt: skip


def _identity(batch: TaskBatch) -> TaskBatch:
    return batch


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)
