"""What a concept family is: an argument (who is attended), an action (what happens), or both.

An event pairs an argument with an action, as the paper's codes w_a and w_x. A family
contributes an `Argument` and/or an `Action`; the registry maps CLI names to families.
Parameters of an instance (a point, a color, ...) are plain JSON-able dicts so that
instances round-trip through files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from particle_world import entities as E
from particle_world.scene import Scene

POSITION_TOLERANCE = 0.1
"""Generation succeeds when its error is at most this, in world units (the world is 2 wide)."""
COLOR_TOLERANCE = 0.1
"""Color generation succeeds when the RGB distance to the target color is at most this."""


class Argument(ABC):
    """Selects which entities an event attends (the paper's w_a)."""

    counts: tuple[int, ...]
    """How many entities this argument can attend."""
    n_refs: int = 0
    """Reference crosses the scene needs."""

    @abstractmethod
    def sample_params(self, rng: np.random.Generator) -> dict: ...

    @abstractmethod
    def assign(self, rng: np.random.Generator, scene: Scene, k: int, params: dict) -> np.ndarray:
        """Attend k entities of the scene (may recolour it); returns attention [N] (0/1)."""

    def attended(self, x0: np.ndarray, params: dict) -> np.ndarray | None:
        """The right attention [N] read from the scene x0 [N, D] alone (what scores a stored
        or proposed attention without its sampler's record), or None where any set of the
        right size is right."""
        return None

    def valid_sets(self, x0: np.ndarray, a_pred: np.ndarray, a_true: np.ndarray, params: dict):
        """The right attention closest to a_pred; by default the ground truth itself."""
        return a_true

    def attention_error(self, x0, a_pred, a_true, params) -> float:
        """Mean |a_pred - a| over entities, against the nearest right attention a."""
        a_ref = self.valid_sets(x0, a_pred, a_true, params)
        return float(np.abs(np.asarray(a_pred) - a_ref).mean())

    def attention_success(self, x0, a_pred, a_true, params) -> bool:
        """The attended set (a_pred > 0.5) is exactly a right one."""
        a_ref = self.valid_sets(x0, a_pred, a_true, params)
        return bool(np.array_equal(np.asarray(a_pred) > 0.5, a_ref > 0.5))


class Action(ABC):
    """Changes the attended entities (the paper's w_x)."""

    counts: tuple[int, ...]
    """How many attended entities this action works on."""
    n_refs: int = 0
    n_others: int = 0
    """Unattended ordinary entities the action needs besides the references (to compare with)."""
    horizon: int = 1
    tolerance: float = POSITION_TOLERANCE
    error_unit: str = "world units"

    def sample_params(self, rng: np.random.Generator) -> dict:
        return {}

    @abstractmethod
    def apply(
        self, rng: np.random.Generator, x0: np.ndarray, attention: np.ndarray, params: dict
    ) -> np.ndarray:
        """Ground-truth trajectory [T+1, N, D] from entities x0 [N, D]; may raise Reject."""

    @abstractmethod
    def generation_error(self, x: np.ndarray, attention: np.ndarray, params: dict) -> float:
        """How far trajectory x [T+1, N, D] is from satisfying the action (0 when it does)."""


@dataclass(frozen=True)
class Family:
    """A named concept family with its roles."""

    name: str
    description: str
    argument: Argument | None = None
    action: Action | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(
            r for r, part in (("argument", self.argument), ("action", self.action)) if part
        )


REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in REGISTRY:
        raise ValueError(f"concept family {family.name!r} registered twice")
    REGISTRY[family.name] = family
    return family


class UnknownName(KeyError):
    """A name not in a registry. A KeyError, printed as its message (KeyError's own str()
    quotes it, which leaks into every CLI's 'error: ...' line)."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_family(name: str) -> Family:
    if name not in REGISTRY:
        raise UnknownName(f"unknown concept {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def moved(x0: np.ndarray, new_positions: dict[int, np.ndarray]) -> np.ndarray:
    """Trajectory [2, N, D]: x0, then x0 with the given entities moved."""
    x1 = x0.copy()
    for i, p in new_positions.items():
        x1[i, E.POS] = p
    return np.stack([x0, x1])
