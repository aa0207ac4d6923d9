"""energy_model.predict: the shipped model's predictions on a task file, as a task file."""

import json

import numpy as np
import pytest

from energy_model import predict
from particle_world import entities as E
from particle_world.io import load_tasks, save_tasks
from particle_world.tasks import sample_task


def _file(tmp_path, family, role, seeds):
    tasks = [sample_task(family, seed=s, role=role) for s in seeds]
    return save_tasks(tmp_path / f"{family}.npz", tasks), tasks


def test_identification_predicts_attention_and_keeps_the_rest(tmp_path, capsys):
    path, tasks = _file(tmp_path, "color", "argument", range(6))
    out, js = tmp_path / "pred.npz", tmp_path / "pred.json"
    assert predict.main([str(path), "--out", str(out), "--json", str(js)]) == 0
    pred = load_tasks(out)
    for t, p in zip(tasks, pred, strict=True):
        assert p.instance == t.instance
        assert np.array_equal(p.demos.x, t.demos.x) and np.array_equal(p.queries.x, t.queries.x)
        assert set(np.unique(p.queries.attention)) <= {0.0, 1.0}
    overall = json.loads(js.read_text())["overall"]
    assert overall["generation_error"] is None and overall["events"] == 30
    assert overall["attention_success"] >= 0.6  # the default scores 82% on color (README)
    assert "30 queries" in capsys.readouterr().out


def test_generation_moves_only_what_generation_may_change(tmp_path):
    path, tasks = _file(tmp_path, "region-point", "action", range(3))
    out = tmp_path / "pred.npz"
    assert predict.main([str(path), "--out", str(out), "--seed", "4"]) == 0
    first = out.read_bytes()
    for t, p in zip(tasks, load_tasks(out), strict=True):
        q, r = t.queries, p.queries
        assert np.array_equal(r.attention, q.attention) and np.array_equal(r.x[:, 0], q.x[:, 0])
        moved = np.abs(r.x[:, 1] - q.x[:, 0]).max(-1) > 0  # [B, N]
        assert not (moved & (q.attention == 0)).any() and moved.any()
        assert np.array_equal(r.x[..., E.SHAPE], q.x[..., E.SHAPE])
    assert predict.main([str(path), "--out", str(out), "--seed", "4"]) == 0
    assert out.read_bytes() == first  # same seed, same file


def test_both_contexts_and_bad_input(tmp_path, capsys):
    path, _ = _file(tmp_path, "north", "action", [0])
    out = tmp_path / "p.npz"
    assert predict.main([str(path), "--out", str(out), "--context", "both"]) == 0
    row = predict.predicted_scores(load_tasks(out)[0], "both")
    assert row["generation_error"] is not None and row["attention_error"] is not None
    capsys.readouterr()
    assert predict.main([str(tmp_path / "none.npz"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert predict.main([str(path), "--out", str(tmp_path)]) == 1  # a folder
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="context must be one of"):
        predict.contexts_of(load_tasks(out)[0], "everything")
