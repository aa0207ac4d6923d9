"""A short reenactment writes a readable video with the expected number of frames."""

import json
import os
import stat
import subprocess
import sys

import imageio
import numpy as np
import pytest

from robot_transfer.reenact import ReenactConfig, load_demos, main, reenact


def test_short_reenactment_writes_video_and_metrics(tmp_path):
    out = tmp_path / "clip.mp4"
    cfg = ReenactConfig(
        concept="region-point", cost="oracle", duration=0.4, out=str(out), width=160, height=120
    )
    metrics = reenact(cfg, {"samples": 16, "horizon": 0.2}, progress=False)
    frames = [f for f in imageio.get_reader(out)]
    assert len(frames) == round(0.4 * cfg.fps) + 1 == metrics["frames"]
    assert frames[0].shape == (120, 160, 3) and np.ptp(frames[-1]) > 0
    for key in ("concept", "robot", "controller", "final_energy", "generation_error",
                "success", "wall_time_s", "real_time_factor"):  # fmt: skip
        assert key in metrics
    assert metrics["concept"] == "region-point" and metrics["robot"] == "arm"
    assert all(len(repr(v)) <= 6 for v in metrics["ee_start"] + metrics["ee_final"])  # -0.893
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # a normal file, not private


def test_cli_runs_as_script(tmp_path):
    out, js = tmp_path / "clip.gif", tmp_path / "m.json"
    cmd = [sys.executable, "robot_transfer/reenact.py", "--cost", "oracle", "--duration",
           "0.1", "--out", str(out), "--metrics-json", str(js), "--width", "96",
           "--height", "64", "--samples", "8", "--controller", "ps"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "concept=between" in result.stdout and "success=" in result.stdout
    assert json.loads(js.read_text())["controller"] == "ps"
    assert len(list(imageio.get_reader(out))) >= 1
    assert "EGL" not in result.stderr and "Error" not in result.stderr


def test_shipped_demo_file_is_what_its_command_writes(tmp_path):
    """assets/demos/south.npz is `python -m particle_world sample south --role action
    --seed 0 --out ...` of this code, and reenact reads it as a task."""
    from particle_world.__main__ import main as particle_world_main

    fresh = tmp_path / "south.npz"
    argv = ["sample", "south", "--role", "action", "--seed", "0", "--out", str(fresh)]
    assert particle_world_main(argv) == 0
    shipped = load_demos(ReenactConfig(demos="assets/demos/south.npz"))
    again = load_demos(ReenactConfig(demos=str(fresh)))
    assert shipped.instance == again.instance and shipped.instance.family == "south"
    for batch in ("demos", "queries"):
        a, b = getattr(shipped, batch), getattr(again, batch)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.attention, b.attention)
    assert shipped.demos.x.shape[0] == 5


def test_families_with_both_roles_are_reenacted_in_their_action_role():
    """Seed 1 draws closest's argument role (a recolor, which the arm cannot do) from
    sample_task; reenact's demos move the entity instead."""
    task = load_demos(ReenactConfig(concept="closest", seed=1))
    assert task.instance.role == "action" and task.instance.action == "closest"


@pytest.mark.parametrize(
    ("flag", "name", "message"),
    [
        ("--out", "file/clip.mp4", "cannot make its folder"),
        ("--metrics-json", "file/m.json", "cannot make its folder"),
        ("--metrics-json", ".", "is a folder"),
    ],
)
def test_unwritable_outputs_fail_at_once_on_one_line(tmp_path, flag, name, message):
    """Refused before the run (the metrics JSON was written after it, with a traceback)."""
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["--cost", "oracle", "--out", "none", flag, str(tmp_path / name)])
    text = str(exit_info.value.code)
    assert text.startswith(f"reenact: {flag}") and message in text and "\n" not in text


def test_a_video_size_the_encoder_cannot_take_is_refused_before_the_run():
    with pytest.raises(ValueError, match="width must be even and at least 16"):
        ReenactConfig(width=641)


def test_a_video_too_large_to_render_leaves_no_file(tmp_path):
    out = tmp_path / "big.mp4"
    cfg = ReenactConfig(concept="region-point", cost="oracle", duration=0.1, out=str(out))
    cfg.width = 100_000  # past the offscreen framebuffer
    with pytest.raises(ValueError, match="framebuffer"):
        reenact(cfg)
    assert list(tmp_path.iterdir()) == []


def test_a_demo_file_of_several_tasks_is_read_at_the_task_asked_for(tmp_path):
    """--task picks a task of the file; past its end or without --demos is refused."""
    from particle_world.io import save_tasks
    from particle_world.tasks import sample_task

    tasks = [sample_task("south", seed=s, role="action") for s in (3, 4)]
    path = save_tasks(tmp_path / "two.npz", tasks)
    picked = load_demos(ReenactConfig(demos=str(path), task=1))
    assert np.array_equal(picked.demos.x, tasks[1].demos.x)
    with pytest.raises(ValueError, match="holds 2 task"):
        load_demos(ReenactConfig(demos=str(path), task=2))
    with pytest.raises(SystemExit):
        main(["--task", "1", "--out", "none"])
