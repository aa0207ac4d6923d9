"""The experiment commands run end to end on tiny models and write well-formed numbers."""

import json
from dataclasses import asdict

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from energy_model.checkpoint import save_checkpoint
from energy_model.config import ModelConfig, TrainConfig
from energy_model.experiments import EXPERIMENTS, composition
from energy_model.experiments import common as C
from energy_model.experiments.__main__ import main
from energy_model.train import build_model
from particle_world import entities as E
from particle_world.render import error_landscape

TINY = ["--threads", "1"]
TINY_TRAINING = [*TINY, "--train-steps", "2", "--batch-size", "2", "--hidden", "16", "--tasks", "2"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny model saved as a checkpoint."""
    cfg = TrainConfig(model=ModelConfig(hidden=16, code_dim=4))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model(cfg), {"train_config": asdict(cfg)})
    return path


def leaves(tree) -> list[float]:
    """Every number in a JSON tree."""
    if isinstance(tree, dict):
        return [v for x in tree.values() for v in leaves(x)]
    if isinstance(tree, list):
        return [v for x in tree for v in leaves(x)]
    return [float(tree)] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


def are_rates(tree) -> bool:
    values = leaves(tree)
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def check_outputs(out, json_name: str, pngs: list[str]) -> dict:
    """The PNGs are pictures (not blank), no temporary files are left; returns the JSON."""
    for name in pngs:
        image = iio.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 5, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    return json.loads((out / json_name).read_text())


def test_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert all(name in text for name in EXPERIMENTS)
    for name in EXPERIMENTS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--out" in capsys.readouterr().out


def test_missing_checkpoint_says_what_to_do(tmp_path, capsys):
    assert main(["fig4", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "energy_model.train" in err and "--checkpoint" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fig4", "--tasks", "0"], "argument --tasks: must be at least 1, got 0"),
        (["fig6", "--threads", "0"], "argument --threads: must be at least 1, got 0"),
        (["fig4", "--seed", "-1"], "argument --seed: a seed must be 0 or more, got -1"),
        (["composition", "--steps", "0"], "argument --steps: must be at least 1, got 0"),
        (["fig7", "--train-steps", "0"], "argument --train-steps: must be at least 1, got 0"),
    ],
)
def test_bad_options_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--out", "--runs"])
def test_an_output_folder_that_cannot_be_made_fails_before_any_work(flag, tmp_path, capsys):
    """(it failed with a traceback after the figures were computed, or the runs trained)"""
    (tmp_path / "file").write_text("")
    argv = ["fig7", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    argv[argv.index(flag) + 1] = str(tmp_path / "file" / "sub")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flag} ") and "cannot be a folder" in err and "\n" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_fig4(checkpoint, tmp_path):
    assert (
        main(
            ["fig4", "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--tasks", "2", *TINY]
        )
        == 0
    )
    result = check_outputs(tmp_path, "fig4.json", ["fig4.png"])
    for concept in ("closest", "farthest"):
        r = result[concept]
        for context in ("generation", "identification"):
            assert 0 <= r[context]["success_rate"] <= 1 and r[context]["error"] >= 0
            assert r[context] == r["untrained"][context]  # the checkpoint is untrained too
        assert 0 <= r["unmoved_generation_success"] <= 1


def test_fig6_counts_every_code(checkpoint, tmp_path):
    assert (
        main(
            [
                "fig6",
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path),
                "--tasks",
                "12",
                *TINY,
            ]
        )
        == 0
    )
    result = check_outputs(tmp_path, "fig6.json", ["fig6.png"])
    assert np.sum(result["confusion_w_a_to_w_x"]) == 12
    assert are_rates({k: v for k, v in result.items() if "vs" in k or "leave" in k})
    assert result["chance"] == pytest.approx(1 / len(E.COLOR_NAMES))


def test_composition(checkpoint, tmp_path):
    assert (
        main(
            [
                "composition",
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path),
                "--tasks",
                "3",
                *TINY,
            ]
        )
        == 0
    )
    result = check_outputs(
        tmp_path,
        "composition.json",
        ["composition_generation.png", "composition_identification.png"],
    )
    assert are_rates(result["generation"]) and are_rates(result["identification"])
    for modes in result["identification"]["red + closest"].values():
        assert modes["answer"] == modes["b_own"]  # there the answer is the closest entity
    assert len(result["generation"]) == len(composition.GEN_PAIRS)


@pytest.mark.parametrize("closest_is_red", [True, False])
def test_red_closest_scenes_have_one_answer(closest_is_red):
    for i in range(20):
        event, sets = composition.red_closest_scene(np.random.default_rng(i), closest_is_red)
        x0 = event.x[0]
        red = E.nearest_color(x0[:, E.COLOR]) == composition.RED
        cross = E.shape_of(x0) == E.shape_index(E.REFERENCE_SHAPE)
        d = np.linalg.norm(x0[:, E.POS] - x0[cross, E.POS], axis=1)
        d[cross] = np.inf
        ((answer,),) = sets["answers"]
        ((closest,),) = sets["b_answers"]
        assert np.flatnonzero(event.attention).tolist() == [answer]
        assert red.sum() >= 2 and not red[cross].any()
        assert np.flatnonzero(red).tolist() == sets["reds"].tolist()
        assert closest == d.argmin() and red[closest] == closest_is_red
        assert answer == np.flatnonzero(red)[d[red].argmin()]


def test_red_one_scenes_accept_any_single_red():
    for i in range(20):
        event, sets = composition.red_one_scene(np.random.default_rng(i))
        red = E.nearest_color(event.x[0][:, E.COLOR]) == composition.RED
        assert red.sum() >= 2
        assert sorted(int(a[0]) for a in sets["answers"]) == np.flatnonzero(red).tolist()
        probs = np.where(np.arange(len(red)) == sets["answers"][-1][0], 0.9, 0.1)[None]
        case = {"query": event, **sets}
        rates = composition.score_identification([case], probs)
        assert rates == {"answer": 1.0, "all_reds": 0.0, "b_own": 1.0, "nothing": 0.0}


def test_generation_queries_can_satisfy_both_concepts():
    for pair in composition.GEN_PAIRS:
        for case in composition.generation_cases(pair, 3, seed=0):
            q = case["query"]
            grid = composition._grid()
            ok = np.ones(len(grid), dtype=bool)
            for task in case["tasks"]:
                ok &= error_landscape(task.instance, q)(grid) <= task.instance.act.tolerance
            assert ok.any()


def test_position_energy_matches_the_energy_at_the_event(checkpoint):
    from energy_model.checkpoint import load_model
    from particle_world import sample_task

    model = load_model(checkpoint)
    task = sample_task("closest", 0, role="action")
    event = task.queries.event(0)
    traj, att, valid = C.query_tensors(model, [event])
    w = torch.zeros(1, model.model_cfg.code_dim)

    def energy(x):
        m = len(x)
        return model.generation_energy(x, att.expand(m, -1), w.expand(m, -1), valid.expand(m, -1))

    i = int(np.flatnonzero(event.attention)[0])
    fn = C.position_energy(energy, traj, i)
    got = fn(event.x[1:, i, E.POS])
    with torch.no_grad():
        assert got[0] == pytest.approx(energy(traj).item(), abs=1e-5)


def started(text: str, prefix: str) -> int:
    return sum(line.startswith(prefix) for line in text.splitlines())


def test_training_experiments_reuse_runs_and_repeat_their_numbers(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    args = ["--runs", str(runs), "--out", str(out), *TINY_TRAINING]
    assert main(["no-rn", *args]) == 0
    assert main(["fig8", *args]) == 0
    printed = capsys.readouterr().out
    assert started(printed, "training ") == 3  # rn-kl is shared by no-rn and fig8
    first = json.loads((out / "fig8.json").read_text())
    assert main(["fig8", *args]) == 0
    assert started(capsys.readouterr().out, "reusing ") == 2
    again = json.loads((out / "fig8.json").read_text())
    for result in (first, again):
        for entry in result["variants"].values():
            entry["training"].pop("reused")
    assert again == first
    check_outputs(out, "fig8.json", ["fig8.png"])
    no_rn = check_outputs(out, "no_rn.json", ["no_rn.png"])
    assert are_rates(
        [u["success_rate"] for v in no_rn["variants"].values() for u in v["units"].values()]
    )
    assert set(no_rn["variants"]) == {"rn-kl", "entity-kl"}
    assert no_rn["variants"]["entity-kl"]["training"]["config"]["model"]["relational"] is False


def test_fig7(tmp_path):
    out = tmp_path / "out"
    assert main(["fig7", "--runs", str(tmp_path / "runs"), "--out", str(out), *TINY_TRAINING]) == 0
    result = check_outputs(out, "fig7.json", ["fig7.png", "fig7_attention.png"])
    steps = {
        k: v["training"]["config"]["inference"]["x"]["steps"] for k, v in result["settings"].items()
    }
    assert steps == {"1": 1, "20": 20}
    assert are_rates([v["generation"] for v in result["settings"].values()])


def test_a_run_is_reused_only_when_its_config_matches(tmp_path, capsys):
    cfg = TrainConfig(concepts=["region-point"], steps=1, batch_size=2, eval_every=0,
                      eval_tasks=1, model=ModelConfig(hidden=8, code_dim=4))  # fmt: skip
    _, info = C.train_or_reuse(cfg, tmp_path / "run")
    assert not info["reused"] and info["config"]["steps"] == 1
    _, info = C.train_or_reuse(cfg, tmp_path / "run")
    assert info["reused"]
    cfg.steps = 2
    _, info = C.train_or_reuse(cfg, tmp_path / "run")
    assert not info["reused"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert sum('"loss"' in line for line in lines) == 2  # the old run's log was cleared
