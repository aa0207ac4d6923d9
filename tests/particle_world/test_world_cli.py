"""`python -m particle_world`, run through main() in tiny configurations."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from particle_world import REGISTRY
from particle_world.__main__ import main
from particle_world.io import load_tasks, save_tasks


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_concepts(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(cmd in out for cmd in ("concepts", "sample", "render", "score"))
    code, out, _ = run(capsys, "concepts")
    assert code == 0 and all(name in out for name in REGISTRY) and "cross" in out
    code, out, _ = run(capsys, "concepts", "--json")
    info = json.loads(out)
    assert code == 0 and [f["name"] for f in info["families"]] == list(REGISTRY)
    after = next(f for f in info["families"] if f["name"] == "after")
    assert after["horizon"] == 4 and after["reference_entities"] == 1


def test_sample_is_reproducible_and_scores_as_truth(tmp_path, capsys):
    argv = ["sample", "closest", "--tasks", 3, "--seed", 5, "--demos", 2, "--queries", 3]
    assert run(capsys, *argv, "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *argv, "--out", tmp_path / "b.npz")[0] == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    tasks = load_tasks(tmp_path / "a.npz")
    assert [t.demos.x.shape[0] for t in tasks] == [2, 2, 2]
    assert len({t.instance.to_json() + str(t.demos.x.sum()) for t in tasks}) == 3  # distinct

    code, out, _ = run(capsys, "score", tmp_path / "a.npz", "--json")
    scores = json.loads(out)
    assert code == 0 and len(scores["tasks"]) == 3
    overall = scores["overall"]
    assert overall["events"] == 15
    assert overall["generation_error"] < 1e-6 and overall["attention_error"] == 0
    assert overall["generation_success"] == overall["attention_success"] == 1.0
    code, out, _ = run(capsys, "score", tmp_path / "a.npz")
    assert code == 0 and "closest" in out and "all" in out


def test_score_sees_a_wrong_trajectory(tmp_path, capsys):
    """Moving the attended entities far off the target is scored as a failure."""
    path = tmp_path / "t.npz"
    run(capsys, "sample", "region-point", "--seed", 1, "--out", path)
    (task,) = load_tasks(path)
    attended = task.demos.attention > 0.5  # [B, N]
    task.demos.x[:, -1][attended, 0] += 1.0  # x coordinate, one world unit off
    save_tasks(path, [task])
    scores = json.loads(run(capsys, "score", path, "--json")[1])["tasks"][0]
    assert scores["generation_success"] == 0.5  # demos fail, queries still succeed
    assert scores["generation_error"] == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize("concept", ["closest", "color"])
def test_score_sees_a_wrong_attention(concept, tmp_path, capsys):
    """The stored attention is scored against the right one read from the scene, so a
    demo attending the wrong entity fails (it was once scored against itself)."""
    path = tmp_path / "t.npz"
    run(capsys, "sample", concept, "--role", "argument", "--seed", 2, "--out", path)
    (task,) = load_tasks(path)
    att = task.demos.attention  # [B, N]
    wrong = (att < 0.5) & task.demos.valid & (np.arange(att.shape[1]) > 0)  # any unattended
    for i in range(len(att)):
        att[i] = 0.0
        att[i, np.flatnonzero(wrong[i])[-1]] = 1.0
    save_tasks(path, [task])
    scores = json.loads(run(capsys, "score", path, "--json")[1])["tasks"][0]
    assert scores["attention_success"] == 0.5  # demos fail, queries still succeed
    assert scores["attention_error"] > 0


def test_render_writes_grids_pngs_and_gifs(tmp_path, capsys):
    path = tmp_path / "after.npz"
    run(capsys, "sample", "after", "--demos", 1, "--queries", 2, "--out", path)
    code, out, _ = run(capsys, "render", path, "--out", tmp_path / "pics")
    names = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert code == 0 and "wrote 7 images" in out
    assert names == [
        "task000.png",
        "task000_demo0.gif",
        "task000_demo0.png",
        "task000_query0.gif",
        "task000_query0.png",
        "task000_query1.gif",
        "task000_query1.png",
    ]
    assert iio.imread(tmp_path / "pics" / "task000_demo0.png").shape[:2] == (400, 400)
    assert iio.imread(tmp_path / "pics" / "task000_query1.gif", index=None).shape[0] >= 5


def test_gallery_draws_every_family(tmp_path, capsys):
    code, out, _ = run(capsys, "gallery", "--out", tmp_path, "--resolution", 4)
    assert code == 0
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted(REGISTRY)
    assert iio.imread(tmp_path / "north.png").shape[:2] == (400, 400)


@pytest.fixture
def bad_shape_file(tmp_path, capsys):
    path = tmp_path / "good.npz"
    run(capsys, "sample", "north", "--out", path)
    with np.load(path) as data:
        arrays = dict(data) | {"task0/queries_x": data["task0/queries_x"][..., :5]}
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **arrays)
    return tmp_path / "bad.npz"


def garbage_file(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"\x00\xffnot a zip" * 50)
    return tmp_path / "garbage.npz"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "dance", "--out", "{tmp}/x.npz"], "unknown concept 'dance'"),
        (["sample", "north", "--action", "dance", "--out", "{tmp}/x.npz"], "unknown concept"),
        (["sample", "north", "--role", "argument", "--out", "{tmp}/x.npz"], "no argument role"),
        (["sample", "north", "--argument", "quantity-2", "--out", "{tmp}/x.npz"], "cannot pair"),
        (["sample", "north", "--tasks", "0", "--out", "{tmp}/x.npz"], "--tasks"),
        (["sample", "north", "--seed", "-1", "--out", "{tmp}/x.npz"], "--seed must be"),
        (["gallery", "--out", "{tmp}/g", "--resolution", "1"], "--resolution must be"),
        (["gallery", "--out", "{tmp}/g", "--resolution", "100000"], "at most 400"),
        (["sample", "square", "--max-entities", "3", "--out", "{tmp}/x.npz"], "cannot fit"),
        (["sample", "north", "--min-entities", "5", "--max-entities", "4", "--out", "x"], "below"),
        (["sample", "north"], "required"),
        (["score", "{tmp}/missing.npz"], "no such file"),
        (["score", "{garbage}"], "not an .npz"),
        (["render", "{garbage}", "--out", "{tmp}/pics"], "not an .npz"),
        (["score", "{bad_shape}"], "queries_x has shape"),
        (["score", "{empty}"], "no tasks"),
        (["score", "{bad_shape}", "--bogus"], "unrecognized arguments"),
        (["dance"], "invalid choice"),
        ([], "required"),
    ],
)
def test_errors_are_one_clean_line(tmp_path, capsys, bad_shape_file, argv, message):
    paths = {
        "tmp": tmp_path,
        "garbage": garbage_file(tmp_path),
        "bad_shape": bad_shape_file,
        "empty": save_tasks(tmp_path / "empty.npz", []),
    }
    code, out, err = run(capsys, *(a.format(**paths) for a in argv))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "x.npz").exists()


def test_sample_refuses_a_folder_as_out(tmp_path, capsys):
    """It once wrote FOLDER.npz beside the folder named."""
    (tmp_path / "fold").mkdir()
    code, _, err = run(capsys, "sample", "north", "--out", tmp_path / "fold")
    assert code != 0 and "is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold"]
