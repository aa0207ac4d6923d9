"""Concept instances and few-shot tasks.

An instance pairs an argument with an action, each with its parameters. The family under
test supplies one of the two; the other is the `color` family's:

- a family tested in its action role (region-*, north, ..., join, ..., closest, farthest,
  after, color) is paired with the color argument "attend the entities of color c";
- a family tested in its argument role (color, closest, farthest, quantity-*) is paired
  with the color action "the attended entities turn color c" (c differs from any color
  the argument selects by, so the action is never a no-op).

`--argument` / `--action` on the CLI (the `argument=` / `action=` parameters here) choose
another pairing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from particle_world import entities as E
from particle_world.concepts import get_family
from particle_world.events import Event, EventBatch
from particle_world.scene import MAX_ENTITIES, MIN_SEPARATION, Reject, sample_scene

DEFAULT_ENTITIES = (3, 8)
PAIRING_FAMILY = "color"
MAX_TRIES = 1000


@dataclass(frozen=True)
class Instance:
    """One concept: the family and role under test, and the argument/action pairing."""

    family: str
    role: str
    argument: str
    action: str
    argument_params: dict = field(default_factory=dict)
    action_params: dict = field(default_factory=dict)

    @property
    def arg(self):
        return get_family(self.argument).argument

    @property
    def act(self):
        return get_family(self.action).action

    @property
    def horizon(self) -> int:
        return self.act.horizon

    @property
    def n_refs(self) -> int:
        return max(self.arg.n_refs, self.act.n_refs)

    def sample_event(
        self, rng: np.random.Generator, n_entities: tuple[int, int] = DEFAULT_ENTITIES
    ) -> Event:
        """A ground-truth event in a fresh random scene of n_entities[0]..[1] entities."""
        lo, hi = n_entities
        if hi > MAX_ENTITIES:
            raise ValueError(
                f"scenes hold at most {MAX_ENTITIES} entities (they stay {MIN_SEPARATION} "
                f"apart), {hi} were asked for; ask for at most {MAX_ENTITIES}"
            )
        counts = [k for k in self.arg.counts if k in self.act.counts]
        if not counts:
            raise ValueError(
                f"{self.argument} attends {list(self.arg.counts)} entities but {self.action} "
                f"acts on {list(self.act.counts)}: they cannot pair"
            )
        extra = self.n_refs + self.act.n_others
        fitting = [k for k in counts if k + extra <= hi]
        if not fitting:
            raise ValueError(
                f"{self.argument} x {self.action} cannot fit in scenes of at most {hi} entities;"
                f" it needs at least {min(counts) + extra}"
            )
        counts = fitting
        for _ in range(MAX_TRIES):
            k = int(rng.choice(counts))
            n = int(rng.integers(max(lo, k + extra), hi + 1))
            try:
                scene = sample_scene(rng, n, self.n_refs)
                attention = self.arg.assign(rng, scene, k, self.argument_params)
                x = self.act.apply(rng, scene.entities(), attention, self.action_params)
            except Reject:
                continue
            perm = rng.permutation(n)
            return Event(x[:, perm], attention[perm])
        raise RuntimeError(f"could not sample an event of {self} in {MAX_TRIES} tries")

    def generation_error(self, x: np.ndarray, attention: np.ndarray) -> float:
        """Error of a trajectory x [T+1, N, D] for attended entities attention [N] (0/1)."""
        return self.act.generation_error(np.asarray(x), np.asarray(attention), self.action_params)

    def generation_success(self, x: np.ndarray, attention: np.ndarray) -> bool:
        return self.generation_error(x, attention) <= self.act.tolerance

    def attention_error(self, x0: np.ndarray, a_pred: np.ndarray, a_true: np.ndarray) -> float:
        """Mean |a_pred - a| over the entities, a the right attention nearest a_pred."""
        return self.arg.attention_error(x0, np.asarray(a_pred), a_true, self.argument_params)

    def attention_success(self, x0: np.ndarray, a_pred: np.ndarray, a_true: np.ndarray) -> bool:
        return self.arg.attention_success(x0, np.asarray(a_pred), a_true, self.argument_params)

    def sample_task(
        self,
        rng: np.random.Generator,
        n_demos: int = 5,
        n_queries: int = 5,
        n_entities: tuple[int, int] = DEFAULT_ENTITIES,
    ) -> Task:
        """Demo and query events of this instance, padded to one entity count."""
        events = [self.sample_event(rng, n_entities) for _ in range(n_demos + n_queries)]
        n_max = max(e.x.shape[1] for e in events)
        return Task(
            self, EventBatch.pad(events[:n_demos], n_max), EventBatch.pad(events[n_demos:], n_max)
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Instance:
        """The instance of to_json's text; TypeError for parameters that the family's
        scorers cannot read (a file edited by hand), KeyError for unknown family names."""
        inst = cls(**json.loads(text))
        for part, params in ((inst.arg, inst.argument_params), (inst.act, inst.action_params)):
            like = part.sample_params(np.random.default_rng(0))
            if not (isinstance(params, dict) and params.keys() == like.keys()) or not all(
                same_form(params[k], v) for k, v in like.items()
            ):
                raise TypeError(f"parameters {params} are not of the form {like}")
        return inst


def same_form(value, like) -> bool:
    """value can stand for the sampled parameter like: a palette color name for a name,
    finite numbers of like's shape for numbers."""
    if isinstance(like, str):
        return value in E.COLOR_NAMES
    arr = np.asarray(value)
    return arr.dtype.kind in "iuf" and arr.shape == np.shape(like) and bool(np.isfinite(arr).all())


def sample_instance(
    family: str,
    rng: np.random.Generator,
    role: str | None = None,
    argument: str | None = None,
    action: str | None = None,
) -> Instance:
    """A random instance of a family in one of its roles (random when role is None)."""
    fam = get_family(family)
    if role is None:
        role = fam.roles[int(rng.integers(len(fam.roles)))]
    if role not in fam.roles:
        raise ValueError(f"{family} has no {role} role; its roles: {', '.join(fam.roles)}")
    argument = argument or (family if role == "argument" else PAIRING_FAMILY)
    action = action or (family if role == "action" else PAIRING_FAMILY)
    for name, part in ((argument, "argument"), (action, "action")):
        if getattr(get_family(name), part) is None:
            raise ValueError(f"{name} cannot serve as the {part}")
    arg_params = get_family(argument).argument.sample_params(rng)
    act_params = get_family(action).action.sample_params(rng)
    while act_params and act_params == arg_params:  # e.g. attend red, turn red: a no-op
        act_params = get_family(action).action.sample_params(rng)
    return Instance(family, role, argument, action, arg_params, act_params)


@dataclass
class Task:
    """A few-shot task: demonstrations and queries of one instance."""

    instance: Instance
    demos: EventBatch
    queries: EventBatch


def sample_task(
    family: str,
    seed: int | np.random.Generator = 0,
    n_demos: int = 5,
    n_queries: int = 5,
    n_entities: tuple[int, int] = DEFAULT_ENTITIES,
    role: str | None = None,
    argument: str | None = None,
    action: str | None = None,
) -> Task:
    """Sample an instance and its demo and query events, padded to one entity count."""
    rng = np.random.default_rng(seed)
    return sample_instance(family, rng, role, argument, action).sample_task(
        rng, n_demos, n_queries, n_entities
    )


METRICS = ("generation_error", "generation_success", "attention_error", "attention_success")


def score_task(task: Task, batches: tuple[str, ...] = ("demos", "queries")) -> dict:
    """Scorers' verdicts on the task's stored events (of the batches named): generation of
    the stored x for the stored attention, and the stored attention as the proposal, against
    the right one read from the scene."""
    inst = task.instance
    gen_err, gen_ok, att_err, att_ok = [], [], [], []
    for name in batches:
        for e in getattr(task, name).events():
            truth = inst.arg.attended(e.x[0], inst.argument_params)
            truth = e.attention if truth is None else truth  # any set of its size is right
            gen_err.append(inst.generation_error(e.x, e.attention))
            gen_ok.append(inst.generation_success(e.x, e.attention))
            att_err.append(inst.attention_error(e.x[0], e.attention, truth))
            att_ok.append(inst.attention_success(e.x[0], e.attention, truth))
    return {
        "events": len(gen_err),
        "generation_error": float(np.mean(gen_err)),
        "generation_success": float(np.mean(gen_ok)),
        "attention_error": float(np.mean(att_err)),
        "attention_success": float(np.mean(att_ok)),
        "error_unit": inst.act.error_unit,
    }


def overall_scores(rows: list[dict]) -> dict:
    """Event-weighted means of score_task rows, each metric over the rows that have it
    (a metric may be None where it was not asked for)."""
    out = {"events": sum(r["events"] for r in rows)}
    for metric in METRICS:
        have = [r for r in rows if r[metric] is not None]
        weights = [r["events"] for r in have]
        out[metric] = (
            float(np.average([r[metric] for r in have], weights=weights)) if have else None
        )
    return out
