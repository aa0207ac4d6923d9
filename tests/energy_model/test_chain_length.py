"""Test-time chain length picked per task on its demos."""

import pytest
import torch

from energy_model import chain_length
from energy_model.config import InferenceConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel, generation_mask


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    # the chains whose length is picked; generation's from x^0 alone, as separate chains
    # are compared with it below
    inference = InferenceConfig(identification="langevin", generation_restarts=1)
    model = ConceptModel(ModelConfig(hidden=32, code_dim=8), inference)
    batch = TaskStream([("north", "action"), ("quantity-2", "argument")], 4, seed=5).batch(0)
    demos = (batch.demo_x, batch.demo_att, batch.demo_valid)
    queries = (batch.query_x, batch.query_att, batch.query_valid)
    with torch.enable_grad():
        w_x, w_a = model.infer_codes(*demos)
    return model, demos, queries, w_x.detach(), w_a.detach()


def flat(events):
    return tuple(t.flatten(0, 1) for t in events)


def test_one_candidate_is_the_plain_chain(setup):
    """A single length reproduces the fixed-length chain exactly, identification's random
    start included."""
    model, demos, queries, w_x, w_a = setup
    traj, att, valid = flat(queries)
    kq = queries[0].shape[1]
    out, chosen = chain_length.generate(model, demos, queries, w_x, [3])
    plain = model.generate(traj, att, w_x.repeat_interleave(kq, 0), valid, steps=3)
    assert torch.equal(out, plain) and torch.equal(chosen, torch.full_like(chosen, 3))
    torch.manual_seed(1)
    logits, _ = chain_length.identify(model, demos, queries, w_a, [3])
    torch.manual_seed(1)
    plain = model.identify(traj[:, 0], w_a.repeat_interleave(kq, 0), valid, steps=3)
    assert torch.equal(logits, plain)


def test_each_task_gets_the_length_that_best_reproduces_its_demos(setup):
    """Checked against separate fixed-length chains on the demos: the one long chain passes
    through each shorter one, and each task keeps its queries' samples at its best length."""
    model, demos, queries, w_x, _ = setup
    lengths = [1, 4]
    out, chosen = chain_length.generate(model, demos, queries, w_x, lengths)
    traj, att, valid = flat(demos)
    b, kd = demos[0].shape[:2]
    errors = []
    for n in lengths:
        gen = model.generate(traj, att, w_x.repeat_interleave(kd, 0), valid, steps=n)
        sq = (gen - traj).square() * generation_mask(traj, att)
        errors.append(sq.flatten(1).sum(-1).view(b, kd).mean(-1))
    best = torch.tensor(lengths)[torch.stack(errors).argmin(0)]
    assert torch.equal(chosen, best)
    qtraj, qatt, qvalid = flat(queries)
    kq = queries[0].shape[1]
    for task, n in enumerate(chosen.tolist()):
        rows = slice(task * kq, (task + 1) * kq)
        w = w_x[task : task + 1].expand(kq, -1)
        ref = model.generate(qtraj[rows], qatt[rows], w, qvalid[rows], steps=n)
        assert torch.allclose(out[rows], ref, atol=1e-6)


def test_bad_lengths_are_refused(setup):
    model, demos, queries, w_x, _ = setup
    with pytest.raises(ValueError, match="positive"):
        chain_length.generate(model, demos, queries, w_x, [0, 5])
