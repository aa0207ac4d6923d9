"""Events (a trajectory of entity states plus attention) and padded batches of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particle_world import entities as E


@dataclass
class Event:
    """One event: states x [T+1, N, D] and the ground-truth attention [N] (0/1)."""

    x: np.ndarray
    attention: np.ndarray

    def __post_init__(self):
        self.x = np.asarray(self.x, dtype=np.float32)
        self.attention = np.asarray(self.attention, dtype=np.float32)
        if self.x.ndim != 3 or self.x.shape[-1] != E.DIM:
            raise ValueError(f"event states must be [T+1, N, {E.DIM}], got {list(self.x.shape)}")
        if self.attention.shape != (self.x.shape[1],):
            raise ValueError(
                f"attention must be [N={self.x.shape[1]}], got {list(self.attention.shape)}"
            )

    @property
    def horizon(self) -> int:
        """T, the number of steps after the initial state."""
        return self.x.shape[0] - 1


@dataclass
class EventBatch:
    """Events padded to one entity count: x [B, T+1, N, D], attention [B, N], valid [B, N].

    Padded entities are all-zero with attention 0 and valid False.
    """

    x: np.ndarray
    attention: np.ndarray
    valid: np.ndarray

    def __post_init__(self):
        b, _, n, d = self.x.shape
        if d != E.DIM or self.attention.shape != (b, n) or self.valid.shape != (b, n):
            raise ValueError(
                f"EventBatch shapes disagree: x {list(self.x.shape)}, attention "
                f"{list(self.attention.shape)}, valid {list(self.valid.shape)}; "
                f"expected [B, T+1, N, {E.DIM}], [B, N], [B, N]"
            )

    @classmethod
    def pad(cls, events: list[Event], n_max: int | None = None) -> EventBatch:
        if not events:
            raise ValueError("cannot batch an empty list of events")
        horizons = {e.horizon for e in events}
        if len(horizons) != 1:
            raise ValueError(f"events of one batch must share a horizon, got {sorted(horizons)}")
        n_max = n_max or max(e.x.shape[1] for e in events)
        b, t1 = len(events), events[0].x.shape[0]
        x = np.zeros((b, t1, n_max, E.DIM), dtype=np.float32)
        attention = np.zeros((b, n_max), dtype=np.float32)
        valid = np.zeros((b, n_max), dtype=bool)
        for i, e in enumerate(events):
            n = e.x.shape[1]
            if n > n_max:
                raise ValueError(f"event {i} has {n} entities, more than n_max={n_max}")
            x[i, :, :n] = e.x
            attention[i, :n] = e.attention
            valid[i, :n] = True
        return cls(x, attention, valid)

    def __len__(self) -> int:
        return self.x.shape[0]

    def event(self, i: int) -> Event:
        """The i-th event without its padding."""
        keep = self.valid[i]
        return Event(self.x[i][:, keep], self.attention[i][keep])

    def events(self) -> list[Event]:
        return [self.event(i) for i in range(len(self))]
