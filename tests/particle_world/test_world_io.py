"""Task files: exact round trip, identical bytes, and one-line errors for bad files."""

import json
import os

import numpy as np
import pytest

from particle_world import entities as E
from particle_world import sample_task
from particle_world.io import load_events, load_tasks, save_tasks, write_json

FIELDS = ("x", "attention", "valid")


@pytest.fixture(scope="module")
def tasks():
    """Tasks that differ in family, horizon, entity count and batch sizes."""
    return [
        sample_task("after", 1),
        sample_task("color", 2, role="argument", n_entities=(10, 12)),
        sample_task("square", 3, n_demos=2, n_queries=7),
        sample_task("region-point", 4, n_entities=(3, 3)),
    ]


def assert_same_tasks(a, b):
    assert len(a) == len(b)
    for s, t in zip(a, b, strict=True):
        assert s.instance == t.instance
        for batch in ("demos", "queries"):
            for field in FIELDS:
                u, v = getattr(getattr(s, batch), field), getattr(getattr(t, batch), field)
                assert u.dtype == v.dtype and np.array_equal(u, v), (batch, field)


def test_round_trip_is_exact(tmp_path, tasks):
    path = save_tasks(tmp_path / "tasks.npz", tasks)
    assert_same_tasks(load_tasks(path), tasks)
    assert os.listdir(tmp_path) == ["tasks.npz"]  # no temporary file left behind
    assert_same_tasks([load_events(path)], tasks[:1])


def test_suffix_added_and_bytes_reproducible(tmp_path, tasks):
    path = save_tasks(tmp_path / "tasks", tasks)
    assert path == tmp_path / "tasks.npz"
    again = save_tasks(tmp_path / "again.npz", tasks)
    assert path.read_bytes() == again.read_bytes()


def write_npz(path, arrays):
    with open(path, "wb") as f:  # a file object: np.savez adds no suffix
        np.savez(f, **arrays)
    return path


@pytest.fixture
def arrays(tmp_path, tasks):
    """The arrays of a valid file with two tasks, to break one at a time."""
    with np.load(save_tasks(tmp_path / "good.npz", tasks[:2])) as data:
        return dict(data)


def with_instance(arrays, i, **changes):
    inst = json.loads(str(arrays[f"task{i}/instance"])) | changes
    return arrays | {f"task{i}/instance": np.array(json.dumps(inst))}


def edit(key, change):
    """A breaker that replaces one array by change(array)."""
    return lambda a: a | {key: change(a[key])}


def drop(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


BREAKS = {
    "missing key": (drop("task1/queries_valid"), "missing key 'task1/queries_valid'"),
    "version": (edit("format_version", lambda v: v + 1), "version"),
    "n_tasks": (edit("n_tasks", lambda v: v[None]), "n_tasks"),
    "feature dim": (edit("task0/demos_x", lambda x: x[..., :-1]), "D = entities.DIM"),
    "horizon": (edit("task0/demos_x", lambda x: x[:, :2]), r"expected \[B, 5, N"),
    "attention shape": (edit("task1/demos_attention", lambda a: a[:, :-1]), "demos_attention"),
    "valid dtype": (edit("task1/queries_valid", lambda v: v.astype(np.uint8)), "bool"),
    "unknown action": (lambda a: with_instance(a, 1, action="dance"), "unknown concept 'dance'"),
    "unknown family": (lambda a: with_instance(a, 0, family="dance"), "unknown concept 'dance'"),
    "malformed instance": (lambda a: with_instance(a, 0, colour="red"), "malformed instance"),
    "missing parameter": (lambda a: with_instance(a, 1, argument_params={}), "not of the form"),
    "unknown color": (
        lambda a: with_instance(a, 1, action_params={"color": "purple"}),
        "not of the form",
    ),
    "not finite": (edit("task0/queries_x", lambda x: x * np.nan), "queries event 0 holds values"),
    "no entities": (edit("task1/demos_valid", np.zeros_like), "no valid entities"),
    "no cross": (edit("task0/demos_x", lambda x: x * (np.arange(E.DIM) < E.SHAPE.start)), "0 ref"),
    "none attended": (edit("task0/demos_attention", np.zeros_like), "attends 0 entities"),
}


@pytest.mark.parametrize("case", BREAKS)
def test_malformed_files_raise_one_line(tmp_path, arrays, case):
    breaker, message = BREAKS[case]
    path = write_npz(tmp_path / "bad.npz", breaker(arrays))
    with pytest.raises(ValueError, match=message) as err:
        load_tasks(path)
    assert "\n" not in str(err.value) and "particle_world sample" in str(err.value)


@pytest.mark.parametrize("content", [None, b"garbage" * 20, b"PK\x03\x04garbage", b""])
def test_unreadable_files_raise_one_line(tmp_path, content):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="no such file" if content is None else "not an .npz"):
        load_tasks(path)


def test_npy_is_not_a_task_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, E.DIM)))
    with pytest.raises(ValueError, match="not an .npz"):
        load_tasks(tmp_path / "a.npy")


def test_write_json_makes_folders_and_leaves_nothing_half_written(tmp_path):
    path = tmp_path / "new" / "deeper" / "result.json"
    assert write_json(path, {"a": [1, 2]}) == path
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})  # fails half-way through serialising
    assert json.loads(path.read_text()) == {"a": [1, 2]}  # the old file stands
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]  # no temp left
