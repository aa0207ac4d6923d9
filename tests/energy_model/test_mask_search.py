"""Identification over binary masks: the exhaustive argmin is exact, descent is exact where
single flips suffice, and the model trains and identifies with it."""

import itertools
import json

import pytest
import torch

from energy_model import evaluate as evaluate_cli
from energy_model.algorithm import meta_loss
from energy_model.config import InferenceConfig, LossConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.mask_search import descend, lowest_energy_masks, neighbor_masks, random_masks
from energy_model.model import SEARCH_LOGIT, ConceptModel


def table_energy(table: torch.Tensor):
    """An energy that looks each mask up in a per-scene table [B, 2^N] by its bits."""
    n = table.shape[1].bit_length() - 1
    powers = 2 ** torch.arange(n)

    def energy(rows, masks):
        return table[rows, (masks.long() * powers).sum(-1)]

    return energy


def brute_force(table, valid):
    """Per scene, the non-empty mask of valid entities with the lowest table entry."""
    n = valid.shape[1]
    best = []
    for b in range(len(valid)):
        masks = [torch.tensor(m, dtype=torch.float32)
                 for m in itertools.product([0, 1], repeat=n)]  # fmt: skip
        masks = [m for m in masks if m.sum() > 0 and not (m.bool() & ~valid[b]).any()]
        codes = [int((m.long() * 2 ** torch.arange(n)).sum()) for m in masks]
        best.append(masks[min(range(len(masks)), key=lambda i: table[b, codes[i]])])
    return torch.stack(best)


def test_exhaustive_search_finds_each_scenes_lowest_energy_mask():
    torch.manual_seed(0)
    n = 6
    valid = torch.rand(40, n) < 0.7
    valid[:, 0] = True  # every scene has an entity; padding anywhere else
    table = torch.randn(40, 2**n)
    found = lowest_energy_masks(table_energy(table), valid)
    assert torch.equal(found, brute_force(table, valid))
    assert not (found.bool() & ~valid).any() and (found.sum(1) > 0).all()


def test_descent_beyond_the_exhaustive_size_is_exact_on_a_separable_energy():
    """Single flips reach the minimum of a sum of per-entity terms from any start, so scenes
    too large to enumerate still get the argmin; the empty mask is never returned."""
    torch.manual_seed(1)
    b, n = 30, 14
    valid = torch.ones(b, n, dtype=torch.bool)
    valid[::3, -2:] = False
    cost = torch.randn(b, n)
    cost[0] = torch.rand(n) + 0.1  # every entity costs: the best non-empty mask has one

    def energy(rows, masks):
        return (masks * cost[rows]).sum(-1)

    found = lowest_energy_masks(energy, valid, starts=2, exhaustive_max=4)
    want = ((cost < 0) & valid).float()
    want[0] = torch.nn.functional.one_hot(cost[0].argmin(), n).float()
    assert torch.equal(found, want)
    masks, e = descend(energy, valid, torch.arange(b), random_masks(valid))
    assert torch.allclose(e, energy(torch.arange(b), masks))


def test_search_refuses_scenes_without_an_entity():
    with pytest.raises(ValueError, match="at least one valid entity"):
        lowest_energy_masks(lambda r, m: m.sum(-1), torch.tensor([[True, False], [False, False]]))


def search_model():
    torch.manual_seed(0)
    return ConceptModel(ModelConfig(hidden=32, code_dim=8), InferenceConfig())


def test_model_identifies_the_lowest_energy_mask_as_saturated_logits():
    model = search_model()
    batch = TaskStream([("quantity-2", "argument")], 4, seed=3, n_entities=(3, 5)).batch(0)
    x0, valid = batch.query_x[:, 0, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x0), 8)
    logits = model.identify(x0, w, valid)
    assert set(logits.unique().tolist()) <= {-SEARCH_LOGIT, SEARCH_LOGIT}
    picked = (logits > 0).float()
    n = valid.shape[1]
    for b in range(len(x0)):
        for bits in itertools.product([0.0, 1.0], repeat=n):
            m = torch.tensor(bits)
            if m.sum() == 0 or (m.bool() & ~valid[b]).any():
                continue
            e = model.identification_energy(x0[b : b + 1], m[None], w[b : b + 1], valid[b : b + 1])
            e_picked = model.identification_energy(
                x0[b : b + 1], picked[b : b + 1], w[b : b + 1], valid[b : b + 1]
            )
            assert e_picked <= e + 1e-6
    with pytest.raises(ValueError, match="no gradient"):
        model.identify(x0, w, valid, create_graph=True)
    with pytest.raises(ValueError, match="identification must be one of"):
        ConceptModel(ModelConfig(hidden=32, code_dim=8), InferenceConfig(identification="x"))
    with pytest.raises(ValueError, match="identification_negative must be one of"):
        meta_loss(model, batch, LossConfig(identification_negative="x"))


def test_search_negatives_score_the_searched_mask_and_run_no_identification_chain():
    model = search_model()
    batch = TaskStream([("quantity-2", "argument")], 4, seed=2, n_entities=(3, 5)).batch(0)
    out = meta_loss(model, batch, LossConfig(identification_negative="search"))
    assert "kl_a" not in out and "ml_a" in out and "kl_x" in out
    out["loss"].backward()
    assert model.sample_a.log_step.grad is None  # no chain over attention ran with a graph
    assert model.net.g_i.weight.grad.abs().sum() > 0
    assert model.code_init.grad[1].abs().sum() > 0  # identification's code start learns


def test_evaluate_switches_test_time_inference_and_records_it(tmp_path):
    out = tmp_path / "eval.json"
    argv = ["--concepts", "quantity-1", "--tasks", "2", "--no-baseline", "--json", str(out)]
    assert evaluate_cli.main([*argv, "--identification", "search"]) == 0
    result = json.loads(out.read_text())
    assert result["identification"] == "search"
    assert result["concepts"]["quantity-1"]["attention_error"] < 0.01  # saturated masks
    lengths = tmp_path / "lengths.json"
    argv = [*argv[:-1], str(lengths), "--identification", "search", "--steps", "10", "20"]
    assert evaluate_cli.main(argv) == 0  # no chain: the lengths are generation's alone
    assert json.loads(lengths.read_text())["concepts"] == result["concepts"]
    assert result["code_likelihood"] is False  # the shipped checkpoint's own settings
    assert result["generation_likelihood"] is False
    likelihood = tmp_path / "likelihood.json"
    argv = [*argv[:-6], str(likelihood), "--code-likelihood", "true",
            "--generation-likelihood", "true"]  # fmt: skip
    assert evaluate_cli.main(argv) == 0
    recorded = json.loads(likelihood.read_text())
    assert recorded["code_likelihood"] is True and recorded["generation_likelihood"] is True


def test_neighbor_masks_are_the_non_empty_one_flip_and_one_swap_masks():
    """Of [1, 0, 0, pad]: the flips [1, 1, 0], [1, 0, 1] (not the empty mask, not the pad)
    and the swaps [0, 1, 0], [0, 0, 1]."""
    att, valid = torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[True, True, True, False]])
    masks, ok = neighbor_masks(att, valid)
    got = {tuple(m.int().tolist()) for m in masks[0][ok[0]]}
    assert got == {(1, 1, 0, 0), (1, 0, 1, 0), (0, 1, 0, 0), (0, 0, 1, 0)}
