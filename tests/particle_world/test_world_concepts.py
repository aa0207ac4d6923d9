"""Every concept family in every role: ground truth satisfies its scorers, random proposals
mostly do not, scenes have the asked entity counts and pad right, seeds reproduce."""

from functools import cache

import numpy as np
import pytest

from particle_world import REGISTRY, Event, EventBatch, sample_task
from particle_world import entities as E
from particle_world.scene import MAX_ENTITIES, MIN_SEPARATION
from particle_world.tasks import Task

FAMILY_ROLES = [(name, role) for name, fam in REGISTRY.items() for role in fam.roles]
SEEDS = range(12)

GENERATION_CHANCE = 0.15
"""Most actions: a random move of the attended entities succeeds at most this often."""
LOOSE_GENERATION_CHANCE = {
    **dict.fromkeys(("north", "south", "east", "west"), 0.45),  # a 90-degree cone: ~1/3
    **dict.fromkeys(("closest", "farthest"), 0.45),  # ~0.3 measured
    "line": 0.4,  # three random points are often nearly collinear: ~0.27 measured
}
ATTENTION_CHANCE = 0.15
"""Most arguments: a random 0/1 attention is right at most this often."""
LOOSE_ATTENTION_CHANCE = {
    # any set of the right size is right: C(n, k) / 2^n for n = 3..8, ~0.17-0.26 measured
    **dict.fromkeys(("quantity-1", "quantity-2", "quantity-3"), 0.4),
    "quantity-many": 0.65,  # any 4 or more of up to 8: ~0.46 measured
}


@cache
def tasks_of(name: str, role: str, n_entities: tuple[int, int] = (3, 8)) -> list[Task]:
    return [sample_task(name, seed, role=role, n_entities=n_entities) for seed in SEEDS]


def events_of(task: Task) -> list[Event]:
    return task.demos.events() + task.queries.events()


@pytest.mark.parametrize(("name", "role"), FAMILY_ROLES)
@pytest.mark.parametrize("n_entities", [(3, 8), (10, 12)])
def test_ground_truth_succeeds(name, role, n_entities):
    for task in tasks_of(name, role, n_entities):
        inst = task.instance
        assert (inst.family, inst.role) == (name, role)
        for e in events_of(task):
            assert inst.generation_error(e.x, e.attention) < 1e-5
            assert inst.generation_success(e.x, e.attention)
            assert inst.attention_error(e.x[0], e.attention, e.attention) == 0.0
            assert inst.attention_success(e.x[0], e.attention, e.attention)


@pytest.mark.parametrize(("name", "role"), FAMILY_ROLES)
def test_random_proposals_fail(name, role):
    """Random positions and colors for the attended entities at every step after the first,
    and a random 0/1 attention, rarely satisfy the instance."""
    rng = np.random.default_rng(0)
    gen_ok, att_ok = [], []
    for task in tasks_of(name, role):
        inst = task.instance
        for e in events_of(task):
            x, attended = e.x.copy(), e.attention > 0.5
            t, k = x.shape[0] - 1, int(attended.sum())
            x[1:, attended, E.POS] = rng.uniform(-1, 1, (t, k, 2))
            x[1:, attended, E.COLOR] = rng.uniform(0, 1, (t, k, 3))
            gen_ok.append(inst.generation_success(x, e.attention))
            a_random = (rng.random(len(attended)) < 0.5).astype(np.float32)
            att_ok.append(inst.attention_success(e.x[0], a_random, e.attention))
    assert np.mean(gen_ok) < LOOSE_GENERATION_CHANCE.get(inst.action, GENERATION_CHANCE)
    assert np.mean(att_ok) < LOOSE_ATTENTION_CHANCE.get(inst.argument, ATTENTION_CHANCE)


@pytest.mark.parametrize(("name", "role"), FAMILY_ROLES)
@pytest.mark.parametrize("n_entities", [(3, 8), (10, 12), (5, 5)])
def test_entity_counts_and_padding(name, role, n_entities):
    lo, hi = n_entities
    for task in tasks_of(name, role, n_entities):
        inst = task.instance
        counts = set(inst.arg.counts) & set(inst.act.counts)
        for batch in (task.demos, task.queries):
            b, t1, n, d = batch.x.shape  # [B, T+1, N, D]
            assert (t1, d) == (inst.horizon + 1, E.DIM)
            assert np.all((lo <= batch.valid.sum(1)) & (batch.valid.sum(1) <= hi))
            for i in range(b):
                pad = ~batch.valid[i]
                assert np.all(batch.x[i][:, pad] == 0) and np.all(batch.attention[i][pad] == 0)
                e = batch.event(i)
                np.testing.assert_array_equal(e.x, batch.x[i][:, batch.valid[i]])
                assert e.x.shape == (t1, batch.valid[i].sum(), E.DIM)
                assert int(e.attention.sum()) in counts
                shapes = E.shape_of(e.x[0])
                assert np.all(e.x[0, :, E.SHAPE].sum(-1) == 1)  # one-hot shapes
                assert np.all(shapes == E.shape_of(e.x[-1]))  # shapes never change
                assert (shapes == E.shape_index(E.REFERENCE_SHAPE)).sum() == inst.n_refs
                assert np.all(np.abs(e.x[..., E.POS]) <= E.WORLD_BOUND)
        n_max = max(task.demos.valid.sum(1).max(), task.queries.valid.sum(1).max())
        assert task.demos.x.shape[2] == task.queries.x.shape[2] == n_max  # padded to the largest


@pytest.mark.parametrize(("name", "role"), FAMILY_ROLES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_scenes_fit_or_say_so(name, role, n):
    """Scenes too small for a concept are refused at once with a message, never after
    exhausting the sampler's tries."""
    try:
        task = sample_task(name, np.random.default_rng(0), role=role, n_entities=(n, n))
    except ValueError as err:
        assert "needs at least" in str(err) or "cannot pair" in str(err)
    else:
        assert np.all(task.queries.valid.sum(1) == n)


@pytest.mark.parametrize("name", ["region-point", "closest", "between"])
def test_crowded_scenes_fit_or_say_so(name):
    """Scenes of up to MAX_ENTITIES entities are sampled in a moment, entities still apart;
    larger ones are refused at once instead of spinning through the sampler's tries."""
    n = MAX_ENTITIES
    task = sample_task(name, 0, n_demos=1, n_queries=1, n_entities=(n, n), role="action")
    for e in events_of(task):
        pos = e.x[0, :, E.POS]
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(n)
        assert len(pos) == n and d.min() >= MIN_SEPARATION - 1e-6
    with pytest.raises(ValueError, match=f"at most {MAX_ENTITIES}"):
        sample_task(name, 0, n_entities=(n + 1, n + 1), role="action")


def test_pad_and_unpad_events_of_different_sizes():
    rng = np.random.default_rng(0)
    events = [
        Event(rng.normal(size=(2, n, E.DIM)), (rng.random(n) < 0.5).astype(np.float32))
        for n in (2, 5, 3)
    ]
    batch = EventBatch.pad(events, n_max=6)
    assert batch.x.shape == (3, 2, 6, E.DIM)
    assert batch.valid.sum(1).tolist() == [2, 5, 3]
    for e, back in zip(events, batch.events(), strict=True):
        np.testing.assert_array_equal(e.x, back.x)
        np.testing.assert_array_equal(e.attention, back.attention)
    with pytest.raises(ValueError, match="share a horizon"):
        EventBatch.pad([events[0], Event(np.zeros((3, 2, E.DIM)), np.zeros(2))])


@pytest.mark.parametrize("name", ["color", "after", "square", "closest"])
def test_same_seed_same_task(name):
    a, b, c = sample_task(name, 7), sample_task(name, 7), sample_task(name, 8)
    assert a.instance == b.instance
    for batch in ("demos", "queries"):
        for field in ("x", "attention", "valid"):
            u, v = getattr(getattr(a, batch), field), getattr(getattr(b, batch), field)
            np.testing.assert_array_equal(u, v)
    assert c.instance != a.instance or not np.array_equal(c.demos.x, a.demos.x)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_the_right_attention_is_read_from_the_scene(name):
    """Where one set is right (a color, the closest), the scene alone gives the sampled one."""
    fam = REGISTRY[name]
    for role in fam.roles:
        for seed in range(4):
            task = sample_task(name, np.random.default_rng(seed), n_demos=3, role=role)
            inst = task.instance
            for e in task.demos.events():
                truth = inst.arg.attended(e.x[0], inst.argument_params)
                assert truth is None or np.array_equal(truth, e.attention), (name, role, seed)
