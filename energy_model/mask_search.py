"""Identification as a search over binary attention masks: eq. 3's argmin over a, taken over
the masks a concept's attention can be (0 or 1 per entity) instead of approached by
Langevin over fractional gates.

A scene of up to EXHAUSTIVE_MAX valid entities has every non-empty mask scored (255 at 8
entities), so the argmin is exact; a larger scene is searched by single-flip descent from
random masks (each sweep scores every one-entity change of the current mask and takes the
best while it lowers the energy), whose cost grows with the entities, not with 2^N. Binary
masks let the energy compute only the attended rows (network._live_rows), so a mask costs
a fraction of a Langevin step over a fractional gate.

`energy(rows, masks)` scores masks [R, N] on scenes rows [R] (indices into the batch): the
caller closes over the scenes and codes; nothing here needs a gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EXHAUSTIVE_MAX = 10
"""Scenes with at most this many valid entities have all 2^n - 1 masks scored (1023 at 10)."""

CHUNK = 8192
"""Masks scored per energy call: bounds the memory of the pair sum at any entity count."""

MaskEnergy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lowest_energy_masks(
    energy: MaskEnergy, valid: torch.Tensor, starts: int = 8, exhaustive_max: int = EXHAUSTIVE_MAX
) -> torch.Tensor:
    """[B, N] 0/1 masks of valid entities, non-empty, at the lowest energy found per scene:
    exact for scenes of up to exhaustive_max valid entities, the best of `starts` descents
    from random masks (torch's global generator) for larger ones."""
    if valid.dim() != 2:
        raise ValueError(f"valid must be [B, N], got {list(valid.shape)}")
    if not bool(valid.any(1).all()):
        raise ValueError("every scene needs at least one valid entity to attend")
    if starts < 1:
        raise ValueError(f"starts must be a positive integer, got {starts!r}")
    best = torch.zeros(valid.shape, device=valid.device)
    counts = valid.sum(1)
    for n in counts.unique().tolist():
        scenes = (counts == n).nonzero().squeeze(1)
        if n <= exhaustive_max:
            best[scenes] = _exhaustive(energy, valid, scenes)
        else:
            best[scenes] = _best_descent(energy, valid, scenes, starts)
    return best


def _exhaustive(energy: MaskEnergy, valid, scenes) -> torch.Tensor:
    """Every non-empty mask over each scene's n valid entities (all of scenes have n)."""
    n_total = valid.shape[1]
    n = int(valid[scenes[0]].sum())
    codes = torch.arange(1, 2**n, device=valid.device)
    bits = ((codes[:, None] >> torch.arange(n, device=valid.device)) & 1).float()  # [M, n]
    s, m = len(scenes), len(bits)
    cols = valid[scenes].nonzero()[:, 1].view(s, n)  # each scene's valid entities
    masks = torch.zeros(s, m, n_total, device=valid.device)
    masks.scatter_(2, cols[:, None, :].expand(-1, m, -1), bits[None].expand(s, -1, -1))
    e = _scored(energy, scenes.repeat_interleave(m), masks.flatten(0, 1))
    return masks[torch.arange(s), e.view(s, m).argmin(1)]


def _best_descent(energy: MaskEnergy, valid, scenes, starts) -> torch.Tensor:
    """The lowest of `starts` single-flip descents per scene, each from a random mask."""
    rows = scenes.repeat(starts)
    found, e = descend(energy, valid[rows], rows, random_masks(valid[rows]))
    pick = e.view(starts, len(scenes)).argmin(0)
    return found.view(starts, len(scenes), -1)[pick, torch.arange(len(scenes))]


def random_masks(valid: torch.Tensor) -> torch.Tensor:
    """[B, N]: each valid entity attended with probability 1/2; an empty draw attends one
    valid entity drawn uniformly."""
    masks = (torch.rand(valid.shape, device=valid.device) < 0.5) & valid
    pick = torch.multinomial(valid.float(), 1).squeeze(1)
    one = torch.nn.functional.one_hot(pick, valid.shape[1])
    return torch.where(masks.any(1, keepdim=True), masks, one.bool()).float()


def descend(
    energy: MaskEnergy, valid: torch.Tensor, rows: torch.Tensor, start: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-flip descent from masks start [R, N] on scenes rows [R] (valid [R, N] theirs):
    each sweep scores every one-entity change of each mask still moving and takes the best
    while it lowers the energy. -> (masks [R, N], their energies [R])."""
    cur = start.clone()
    e_cur = _scored(energy, rows, cur)
    flip = torch.eye(valid.shape[1], device=valid.device)
    moving = torch.ones(len(rows), dtype=torch.bool, device=valid.device)
    for _ in range(valid.shape[1] * 2):  # each sweep lowers the energy: a bound, not a budget
        idx = moving.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        flips = cur[idx, None, :] + flip * (1 - 2 * cur[idx, None, :])  # [M, N, N]
        ok = valid[idx] & (flips.sum(-1) > 0)  # a valid entity flipped, the mask not empty
        e = _scored(energy, rows[idx].repeat_interleave(flips.shape[1]), flips.flatten(0, 1))
        e = torch.where(ok, e.view(len(idx), -1), torch.inf)
        low, j = e.min(1)
        better = low < e_cur[idx]
        cur[idx[better]] = flips[better, j[better]]
        e_cur[idx[better]] = low[better]
        moving[idx[~better]] = False
    return cur, e_cur


def _scored(energy: MaskEnergy, rows: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """energy(rows, masks) in chunks of CHUNK masks, without a graph."""
    with torch.no_grad():
        return torch.cat(
            [energy(rows[i : i + CHUNK], masks[i : i + CHUNK]) for i in range(0, len(rows), CHUNK)]
        )


def neighbor_masks(att: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The binary masks one move from each mask att [Q, N] (valid [Q, N]): every flip of a
    valid entity that leaves the mask non-empty, and every swap of an attended entity for an
    unattended valid one. -> (masks [Q, C, N], ok [Q, C]), C = N + N^2 candidate slots of
    which ok marks the real ones."""
    n = att.shape[1]
    eye = torch.eye(n, device=att.device, dtype=att.dtype)
    flips = att[:, None, :] + eye * (1 - 2 * att[:, None, :])  # [Q, N, N]
    flips_ok = valid.bool() & (flips.sum(-1) > 0)
    swaps = att[:, None, None, :] - eye[None, :, None, :] + eye[None, None, :, :]  # [Q, i, k, N]
    swaps_ok = (att[:, :, None] > 0.5) & (att[:, None, :] < 0.5) & valid.bool()[:, None, :]
    masks = torch.cat([flips, swaps.flatten(1, 2)], 1)
    return masks, torch.cat([flips_ok, swaps_ok.flatten(1, 2)], 1)
