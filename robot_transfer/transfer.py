"""From a particle-world concept to a robot episode: arrangements, costs and scoring.

A new table arrangement is a fresh event of the demos' instance: its x^0 entities are
placed on the table and its attended entity (the mover) becomes the end-effector. Success is
particle_world's own scorer on the mapped start and final entity states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from particle_world import Instance
from particle_world.concepts import Action
from particle_world.entities import POS
from robot_transfer.costs import Cost, GoalDistanceCost, LearnedEnergyCost
from robot_transfer.scene import Scene

COSTS = ("energy", "oracle")
"""energy: the learned concept energy; oracle: distance to the event's ground-truth end
position (a hand-written cost that needs no checkpoint)."""


@dataclass
class Arrangement:
    """A table arrangement: one event's valid entities, the mover and its ground truth."""

    x: np.ndarray
    """[T+1, N, D] the event (x^0 is placed on the table; x^T is the ground truth)."""
    attention: np.ndarray
    """[N] 0/1, the mover only."""

    @property
    def mover(self) -> int:
        return int(np.flatnonzero(self.attention > 0.5)[0])


def sample_arrangement(
    instance: Instance, seed: int | tuple[int, ...], tries: int = 100
) -> Arrangement:
    """A fresh event of `instance` with exactly one attended entity (one arm moves one)."""
    if instance.horizon != 1:
        raise ValueError(
            f"{instance.family} is a temporal concept (T = {instance.horizon}); the robot "
            "scene's objects are static, so only one-step concepts can be reenacted"
        )
    if instance.act.error_unit != Action.error_unit:  # the action changes colors, not places
        raise ValueError(
            f"{instance.family} ({instance.role}) is acted out by {instance.action}, which "
            f"changes colors ({instance.act.error_unit}); the arm only moves its end-effector, "
            "so reenact a concept that moves an entity (e.g. --concept north)"
        )
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        event = instance.sample_event(rng)
        if (event.attention > 0.5).sum() == 1:
            return Arrangement(event.x, event.attention)
    raise ValueError(
        f"{instance.family}: no event with a single attended entity in {tries} tries; "
        "the arm moves one entity, its end-effector"
    )


def make_cost(
    kind: str,
    arrangement: Arrangement,
    model: torch.nn.Module | None = None,
    w_x: torch.Tensor | None = None,
    running: float = 0.0,
    effort: float = 1e-3,
) -> Cost:
    """The learned energy cost (needs model and w_x) or the oracle goal-distance cost."""
    mover = arrangement.mover
    if kind == "oracle":
        return GoalDistanceCost(arrangement.x[-1, mover, POS], mover, effort=effort)
    if kind != "energy":
        raise ValueError(f"unknown cost {kind!r}; choose one of {', '.join(COSTS)}")
    square = getattr(getattr(model, "model_cfg", None), "head", None) == "square"
    return LearnedEnergyCost(
        model,
        w_x,
        mover,
        arrangement.x.shape[1],
        running=running,
        effort=effort,
        square_head=square,
    )


def score(
    instance: Instance, scene: Scene, arrangement: Arrangement, ee0: np.ndarray, ee: np.ndarray
) -> tuple[float, bool, np.ndarray]:
    """Generation error, success and the mapped event [2, N, D] (start, end) of an episode
    whose end-effector went from `ee0` to `ee` [3]."""
    x = scene.entity_map.entities(np.stack([ee0, ee]))  # [2, N, D]
    error = instance.generation_error(x, arrangement.attention)
    return float(error), bool(instance.generation_success(x, arrangement.attention)), x
