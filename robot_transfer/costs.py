"""Costs: functions of mapped entity trajectories and controls, batched in torch.

One protocol: ``cost(entities [S, H, N, D], controls [S, H, nu]) -> [S]``, where controls
are scaled by the torque limits into [-1, 1]. A cost may also have a method
``residuals(entities, controls) -> [S, H, R] | None`` with cost = sum of squared residuals
(residual r[:, t] depending on step t only); where it gives them, the iLQR controller
uses the Gauss-Newton Hessian, otherwise the Hessian of the cost projected onto the positive
semi-definite cone. Controllers see costs only through `robot_transfer.objective.Objective`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from particle_world.entities import POS


class Cost(Protocol):
    def __call__(self, entities: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """Cost [S] of entity trajectories [S, H, N, D] under controls [S, H, nu]."""
        ...


def _effort(controls: torch.Tensor, weight: float) -> torch.Tensor:
    """Residuals [S, H, nu] of the control effort weight * mean(u^2)."""
    return controls * np.sqrt(weight / (controls.shape[1] * controls.shape[2]))


class GoalDistanceCost:
    """Squared distance of one entity to a goal point in the world square: the terminal
    distance, the mean running distance and the control effort, each weighted."""

    def __init__(
        self,
        goal: np.ndarray,
        entity: int,
        terminal: float = 1.0,
        running: float = 1.0,
        effort: float = 1e-3,
    ):
        self.goal = torch.as_tensor(np.asarray(goal, dtype=np.float32))  # [2]
        self.entity = entity
        self.terminal, self.running, self.effort = terminal, running, effort

    def _weights(self, horizon: int) -> torch.Tensor:
        """[H] weight of each step's squared distance."""
        weight = torch.full((horizon,), self.running / horizon)
        weight[-1] += self.terminal
        return weight

    def residuals(self, entities: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        diff = entities[..., self.entity, POS] - self.goal  # [S, H, 2]
        weight = self._weights(entities.shape[1])[:, None].sqrt()
        return torch.cat([diff * weight, _effort(controls.to(diff.dtype), self.effort)], -1)

    def __call__(self, entities: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        dist = (entities[..., self.entity, POS] - self.goal).square().sum(-1)  # [S, H]
        effort = controls.square().sum((1, 2)) * (self.effort / controls[0].numel())
        return dist @ self._weights(entities.shape[1]) + effort


class EnergyModel(Protocol):
    def energy(
        self, x: torch.Tensor, gate: torch.Tensor, w: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Energy [B] of states x [B, T, N, D] with attention gate [B, N], code w [B, C] and
        validity [B, N] (lower is better)."""
        ...


class LearnedEnergyCost:
    """A learned concept energy as the cost: terminal energy of the last state, optional
    running energy (mean over every `stride`-th step) and control effort.

    The energy sees each state as a one-step event (T = 1), with the mover (the
    end-effector) as the only attended entity. All S rollouts go through the model in one
    batched call. With `square_head` (the paper's E = f(.)^2) the residuals are |f| =
    sqrt(E), which gives iLQR the Gauss-Newton Hessian; a linear head has no residuals.
    The model is put in eval mode with its weights frozen (only inputs get gradients).
    """

    def __init__(
        self,
        model: EnergyModel,
        w: torch.Tensor,
        mover: int,
        n_entities: int,
        terminal: float = 1.0,
        running: float = 0.0,
        stride: int = 5,
        effort: float = 1e-3,
        square_head: bool = False,
    ):
        self.model = model.eval().requires_grad_(False)
        self.w = torch.as_tensor(w, dtype=torch.float32).reshape(1, -1)  # [1, C]
        self.gate = torch.zeros(1, n_entities)  # [1, N]
        self.gate[0, mover] = 1.0
        self.valid = torch.ones(1, n_entities, dtype=torch.bool)  # [1, N]
        self.terminal, self.running, self.stride = terminal, running, stride
        self.effort = effort
        self.square_head = square_head

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        """Energy [B] of single states [B, N, D]."""
        b = states.shape[0]
        return self.model.energy(
            states[:, None],
            self.gate.expand(b, -1),
            self.w.expand(b, -1),
            self.valid.expand(b, -1),
        )

    def _terms(self, entities: torch.Tensor):
        """Terminal energy [S], running energies [S, H'] and their steps [H'] (the running
        ones None when not used)."""
        s, h = entities.shape[:2]
        if self.running <= 0:
            return self.energy(entities[:, -1]), None, None
        steps = torch.arange(h - 1, -1, -self.stride).flip(0)  # ends at the last step
        e = self.energy(entities[:, steps].flatten(0, 1)).reshape(s, len(steps))
        return e[:, -1], e, steps

    def __call__(self, entities: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        terminal, running, _ = self._terms(entities)
        cost = self.terminal * terminal + _effort(controls, self.effort).square().sum((1, 2))
        if running is not None:
            cost = cost + self.running * running.mean(1)
        return cost

    def residuals(self, entities: torch.Tensor, controls: torch.Tensor) -> torch.Tensor | None:
        if not self.square_head:
            return None
        s, h = entities.shape[:2]
        terminal, running, steps = self._terms(entities)
        res = entities.new_zeros(s, h, 1)
        res[:, -1, 0] = (self.terminal * terminal.clamp_min(0) + 1e-9).sqrt()
        if running is not None:
            run = (self.running / running.shape[1] * running.clamp_min(0) + 1e-9).sqrt()
            res = torch.cat([res, entities.new_zeros(s, h, 1)], -1)
            res[:, steps, 1] = run
        return torch.cat([res, _effort(controls.to(res.dtype), self.effort)], -1)
