"""Energy networks, code inference and checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch

from energy_model import network
from energy_model.checkpoint import (
    DEFAULT_CHECKPOINT,
    FORMAT_VERSION,
    CheckpointError,
    load_model,
    save_checkpoint,
)
from energy_model.config import InferenceConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel
from energy_model.network import PAIR_GATES, build_energy
from particle_world import entities as E


@pytest.fixture(scope="module")
def batch():
    return TaskStream([("north", "action"), ("quantity-2", "argument")], 4, seed=3).batch(0)


def small_model(**kw):
    torch.manual_seed(0)
    return ConceptModel(ModelConfig(hidden=32, code_dim=8, **kw), InferenceConfig())


@pytest.mark.parametrize("relational", [True, False])
def test_energy_ignores_padding_and_entity_order(batch, relational):
    net = build_energy(ModelConfig(hidden=32, code_dim=8, relational=relational))
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    e = net(x, att, w, valid)
    perm = torch.randperm(x.shape[2])
    assert torch.allclose(e, net(x[:, :, perm], att[:, perm], w, valid[:, perm]), atol=1e-5)
    garbage = torch.where(valid[:, None, :, None], x, torch.randn_like(x) * 5)
    assert torch.allclose(e, net(garbage, att, w, valid), atol=1e-5)


def test_attended_rows_shortcut_is_exact(batch):
    """With an exact 0/1 gate only attended rows are computed; a gate equal to the same
    values but carrying gradient takes the fractional path: both give one energy."""
    net = build_energy(ModelConfig(hidden=32, code_dim=8))
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    dense = net(x, att.clone().requires_grad_(), w, valid)
    assert torch.allclose(net(x, att, w, valid), dense, atol=1e-5)


@pytest.mark.parametrize("pair_gate", PAIR_GATES)
def test_input_gate_chain_reuses_the_gate_free_layer_exactly(batch, pair_gate, monkeypatch):
    """A chain over an input gate (the default) computes g's first layer without the gate
    once and adds the gate's column at each call: the energy and its gradient in the gate
    are those of recomputing everything (ROW_MODE 'all', the naive baseline)."""
    net = build_energy(ModelConfig(hidden=32, code_dim=8, pair_gate=pair_gate))
    x, valid = batch.query_x[:, :1, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    gate = torch.rand(valid.shape, requires_grad=True)
    out = {}
    for mode in ("sparse", "all"):
        monkeypatch.setattr(network, "ROW_MODE", mode)
        e = net.gate_energy(x, w, valid)(gate)
        out[mode] = (e, *torch.autograd.grad(e.sum(), gate))
    for a, b in zip(out["sparse"], out["all"], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("pair_gate", PAIR_GATES)
@pytest.mark.parametrize("relational", [True, False])
def test_fractional_gate_scores_the_expected_pair_sum(pair_gate, relational):
    """fractional_gate 'expected': the energy at gate p is f of the pooled sum's expectation
    over binary masks m_j ~ Bernoulli(p_j), checked by enumerating every mask with a linear
    f (where f of the expectation is the expectation of f)."""
    torch.manual_seed(0)
    net = build_energy(ModelConfig(hidden=32, code_dim=4, pair_gate=pair_gate,
                                   relational=relational, fractional_gate="expected"))  # fmt: skip
    net.f = torch.nn.Linear(32 + 4, 1)
    b, n = 3, 4
    x, w = torch.rand(b, 1, n, E.DIM), torch.randn(b, 4)
    valid = torch.ones(b, n, dtype=torch.bool)
    valid[0, 3] = False
    p = torch.rand(b, n) * valid
    expected = torch.zeros(b)
    for bits in range(2**n):
        m = torch.tensor([(bits >> j) & 1 for j in range(n)], dtype=torch.float).expand(b, n)
        expected += torch.where(m > 0, p, 1 - p).prod(1) * net(x, m * valid, w, valid)
    assert torch.allclose(net(x, p, w, valid), expected, atol=1e-5)
    assert torch.allclose(net.gate_energy(x, w, valid)(p), expected, atol=1e-5)


def test_gate_chain_runs_g_once(batch):
    """'expected': gate_energy runs g when built, not at each call of a chain over the
    gate. 'input' (the default) feeds the fractional gate to g: another energy between 0
    and 1, the same one at 0/1."""
    net = build_energy(ModelConfig(hidden=32, code_dim=8, fractional_gate="expected"))
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    p = torch.rand(att.shape)
    calls = []
    net.g_rest.register_forward_hook(lambda *_: calls.append(1))
    energy = net.gate_energy(x, w, valid)
    n_setup = len(calls)
    for _ in range(5):
        energy(torch.rand(att.shape))
    assert len(calls) == n_setup
    as_input = build_energy(ModelConfig(hidden=32, code_dim=8, fractional_gate="input"))
    as_input.load_state_dict(net.state_dict())
    assert torch.allclose(as_input(x, att, w, valid), net(x, att, w, valid), atol=1e-6)
    assert not torch.allclose(as_input(x, p, w, valid), net(x, p, w, valid), atol=1e-4)
    with pytest.raises(ValueError, match="fractional_gate"):
        build_energy(ModelConfig(fractional_gate="soft"))


def test_every_row_mode_gives_one_energy_and_gradient(batch, monkeypatch):
    """'all' (every row computed) against 'sparse' (the default: only rows that can count)."""
    net = build_energy(ModelConfig(hidden=32, code_dim=8))
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    out = {}
    for mode in ("sparse", "all"):
        monkeypatch.setattr(network, "ROW_MODE", mode)
        xg = x.clone().requires_grad_()
        e = net(xg, att, w, valid)
        out[mode] = (e, torch.autograd.grad(e.sum(), xg)[0])
    for a, b in zip(out["sparse"], out["all"], strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    monkeypatch.setattr(network, "ROW_MODE", "dense")
    with pytest.raises(ValueError, match="ROW_MODE"):
        net(x, att, w, valid)


def test_relevance_gate_spans_the_papers_gate_and_attended_to_all(batch):
    """rho -> 0 gives the paper's gate_i * gate_j, rho -> 1 every valid pair: the learned
    relevance interpolates between the two."""
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    energies = {
        g: build_energy(ModelConfig(hidden=32, code_dim=8, pair_gate=g)) for g in PAIR_GATES
    }
    ours = energies["relevance"]
    for other in ("attended-pairs", "attended-to-all"):
        energies[other].load_state_dict(ours.state_dict(), strict=False)
    for bias, same_as in ((-1e4, "attended-pairs"), (1e4, "attended-to-all")):
        ours.relevance.bias.data.fill_(bias)
        assert torch.allclose(
            ours(x, att, w, valid), energies[same_as](x, att, w, valid), atol=1e-5
        )
    assert not torch.allclose(
        energies["attended-pairs"](x, att, w, valid), energies["attended-to-all"](x, att, w, valid)
    )


@pytest.mark.parametrize("relational", [True, False])
def test_code_film_starts_as_the_plain_network_and_then_depends_on_the_code(batch, relational):
    """FiLM is zero-initialised: untrained, the network is the one without it; once its
    weights move, the same input scores differently under two codes through it alone."""
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    torch.manual_seed(0)
    film = build_energy(ModelConfig(hidden=32, code_dim=8, relational=relational, code_film=True))
    plain = build_energy(ModelConfig(hidden=32, code_dim=8, relational=relational))
    assert film.film is not None and plain.film is None
    plain.load_state_dict(film.state_dict(), strict=False)
    w = torch.randn(len(x), 8)
    assert torch.allclose(film(x, att, w, valid), plain(x, att, w, valid), atol=1e-6)
    torch.nn.init.normal_(film.film.weight)
    assert not torch.allclose(film(x, att, w, valid), plain(x, att, w, valid), atol=1e-4)


@pytest.mark.parametrize("relational", [True, False])
def test_code_scale_starts_as_the_plain_network_and_can_turn_a_coordinate_off(batch, relational):
    """The code's input scale is zero-initialised (the plain network untrained); a scale of
    0 on x makes the energy blind to moving entities along x and still see y: what a line
    needs and a point must not have."""
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=32, code_dim=8, relational=relational)
    scaled = build_energy(dataclasses.replace(cfg, code_scale=True))
    plain = build_energy(cfg)
    assert scaled.scale is not None and plain.scale is None
    plain.load_state_dict(scaled.state_dict(), strict=False)
    w = torch.randn(len(x), 8)
    assert torch.allclose(scaled(x, att, w, valid), plain(x, att, w, valid), atol=1e-6)
    with torch.no_grad():
        scaled.scale.bias[E.POS.start] = -1.0  # (1 + s(w)) = 0 on x for every code
    shift = torch.zeros(E.DIM)
    shift[E.POS.start] = 0.3
    e = scaled(x, att, w, valid)
    assert torch.allclose(scaled(x + shift, att, w, valid), e, atol=1e-5)
    assert not torch.allclose(scaled(x + shift.roll(1), att, w, valid), e, atol=1e-4)


def test_pair_distance_is_one_energy_on_every_path_and_smooth_where_entities_meet(
    batch, monkeypatch
):
    """The distance column of g's first layer counts alike on the exact-mask rows, a chain's
    gate-free layer and the naive baseline; where two entities coincide (and on every i = j
    pair) the gradient in x stays finite. A per-entity network has no pairs: refused."""
    torch.manual_seed(0)
    net = build_energy(ModelConfig(hidden=32, code_dim=8, pair_distance=True))
    x, att, valid = batch.query_x[:, :1, 0].clone(), batch.query_att[:, 0], batch.query_valid[:, 0]
    x[:, :, 1, E.POS] = x[:, :, 0, E.POS]
    w = torch.randn(len(x), 8)
    exact = net(x, att, w, valid)
    assert torch.allclose(net(x, att.clone().requires_grad_(), w, valid), exact, atol=1e-5)
    monkeypatch.setattr(network, "ROW_MODE", "all")
    assert torch.allclose(net(x, att, w, valid), exact, atol=1e-5)
    x.requires_grad_()
    (grad,) = torch.autograd.grad(net(x, torch.ones_like(att), w, valid).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with torch.no_grad():
        net.g_d.weight.zero_()
    assert not torch.allclose(net(x, att, w, valid), exact, atol=1e-4)
    with pytest.raises(ValueError, match="pair_distance needs pairs"):
        build_energy(ModelConfig(relational=False, pair_distance=True))


def test_figure_input_is_the_attended_spread_and_reaches_the_energy(batch, monkeypatch):
    """figure_input: f also reads the root eigenvalues of the attended entities' scatter,
    the minor one zero on a line; alike on the exact-mask rows, a chain's gate and the
    naive baseline, with a gradient for the gate. A per-entity network is refused."""
    torch.manual_seed(0)
    net = build_energy(ModelConfig(hidden=32, code_dim=8, figure_input=True))
    x, att, valid = batch.query_x[:, :1, 0].clone(), batch.query_att[:, 0], batch.query_valid[:, 0]
    att = torch.zeros_like(att)
    att[:, :3] = 1.0
    on_line = x.clone()
    on_line[:, 0, :3, E.POS] = torch.tensor([[-0.4, -0.2], [0.0, 0.0], [0.4, 0.2]])
    spread = network.attended_spread(net._feats(on_line, torch.zeros(len(x), 8)), att * valid)
    major = (0.2 * 2 / 3) ** 0.5  # root variance along the line: offsets of 0, +-0.2**0.5
    assert torch.allclose(spread[:, 0], torch.full_like(spread[:, 0], major), atol=1e-3)
    assert (spread[:, 1] < 0.02).all()
    w = torch.randn(len(x), 8)
    exact = net(x, att, w, valid)
    gate = att.clone().requires_grad_()
    assert torch.allclose(net(x, gate, w, valid), exact, atol=1e-5)
    net(x, gate, w, valid).sum().backward()
    assert gate.grad.abs().sum() > 0
    monkeypatch.setattr(network, "ROW_MODE", "all")
    assert torch.allclose(net(x, att, w, valid), exact, atol=1e-5)
    blind = net(x, att, w, valid, figure=False)
    assert torch.allclose(net.gate_energy(x, w, valid)(att), blind, atol=1e-5)
    with torch.no_grad():
        net.f[0].weight[:, -2:].zero_()
    assert not torch.allclose(net(x, att, w, valid), exact, atol=1e-4)
    assert torch.allclose(net(x, att, w, valid), blind, atol=1e-5)  # figure off: zeros
    with pytest.raises(ValueError, match="figure_input"):
        build_energy(ModelConfig(relational=False, figure_input=True))


@pytest.mark.parametrize("relational", [True, False])
def test_motion_features_reach_trajectories_and_leave_single_states_alone(relational):
    """The first layer's displacement columns change a trajectory's energy but not a single
    state's (its displacement is zero): one-step generation, identification and the robot's
    cost score as without motion features."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=32, code_dim=8, relational=relational, motion_features=True)
    net = build_energy(cfg)
    disp = slice(E.DIM + 1, E.DIM + 3)  # after the entity and the time feature
    columns = [net.g_i.weight, net.g_j.weight] if relational else [net.g[0].weight]
    gate, w, valid = torch.tensor([[1.0, 0, 0, 0]] * 2), torch.randn(2, 8), torch.ones(2, 4).bool()
    state, traj = torch.rand(2, 1, 4, E.DIM), torch.rand(2, 5, 4, E.DIM)
    before = net(state, gate, w, valid), net(traj, gate, w, valid)
    with torch.no_grad():
        for weight in columns:
            weight[:, disp] += torch.randn_like(weight[:, disp])
    assert torch.equal(net(state, gate, w, valid), before[0])
    assert not torch.allclose(net(traj, gate, w, valid), before[1], atol=1e-4)


def test_each_context_infers_its_code_from_its_own_start(batch):
    """w_x and w_a start from separate learned vectors: generation's loss reaches only its own."""
    model = small_model()
    w_x, w_a = model.infer_codes(
        batch.demo_x, batch.demo_att, batch.demo_valid, create_graph=True, contexts="generation"
    )
    assert w_a is None
    w_x.sum().backward()
    grad = model.code_init.grad
    assert grad.shape == (2, 8) and grad[0].abs().sum() > 0 and grad[1].abs().sum() == 0


def test_context_nets_keep_each_contexts_loss_in_its_own_network(batch):
    """With context_nets, Algorithm 1's generation terms reach only generation's network
    and identification's only its own; without, both reach the one network."""
    from energy_model.algorithm import meta_loss
    from energy_model.config import LossConfig

    def grads(model, context):
        model.zero_grad()
        meta_loss(model, batch, LossConfig(contexts=context))["loss"].backward()
        return [
            any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
            for net in (model.net, model.context_net("identification"))
        ]

    split = small_model(context_nets=True)
    assert split.context_net("identification") is split.net_a is not split.net
    assert grads(split, "generation") == [True, False]
    assert grads(split, "identification") == [False, True]
    shared = small_model()
    assert shared.context_net("identification") is shared.net


def test_code_encoder_starts_as_the_shared_start_and_learns_per_task_starts(batch):
    """Untrained, the encoder adds nothing; its output layer gets the meta-gradient, and
    once it is non-zero tasks with different demos start from different codes that ignore
    padding."""
    torch.manual_seed(0)
    with_enc = ConceptModel(ModelConfig(hidden=32, code_dim=8), InferenceConfig(code_encoder=True))
    plain = small_model()
    plain.load_state_dict(with_enc.state_dict(), strict=False)
    demos = (batch.demo_x, batch.demo_att, batch.demo_valid)
    assert torch.allclose(with_enc.infer_codes(*demos)[0], plain.infer_codes(*demos)[0])
    w_x, _ = with_enc.infer_codes(*demos, create_graph=True, contexts="generation")
    w_x.square().sum().backward()
    assert with_enc.encoder.out.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(with_enc.encoder.out.weight)
    offsets = with_enc.encoder(*demos)  # [2, B, 8]
    assert offsets.shape == (2, len(batch.demo_x), 8)
    assert not torch.allclose(offsets[:, 0], offsets[:, 1])
    padded = torch.where(batch.demo_valid[:, :, None, :, None], batch.demo_x, 7.0)
    assert torch.allclose(offsets, with_enc.encoder(padded, *demos[1:]), atol=1e-5)


def test_meta_gradient_reaches_parameters_through_code_inference(batch):
    model = small_model()
    w_x, _ = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid, create_graph=True)
    w_x.sum().backward()
    assert model.code_init.grad is not None and model.code_init.grad.abs().sum() > 0
    assert model.net.f[0].weight.grad.abs().sum() > 0
    model.zero_grad()
    w_x, _ = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid)
    assert not w_x.requires_grad


def _likelihood_and_plain(**likelihood):
    """A small model with a likelihood switch on, and one with the same weights without."""
    torch.manual_seed(0)
    lik = ConceptModel(ModelConfig(hidden=32, code_dim=8), InferenceConfig(**likelihood))
    plain = small_model()
    plain.load_state_dict(lik.state_dict())
    return lik, plain


def _assert_codes_differ_and_carry_gradient(lik, plain, batch, context):
    """The likelihood's codes differ from the energy's alone, and the meta-gradient still
    reaches the parameters through them."""
    demos = (batch.demo_x, batch.demo_att, batch.demo_valid)
    i = ("generation", "identification").index(context)
    w_lik = lik.infer_codes(*demos, create_graph=True, contexts=context)[i]
    w_plain = plain.infer_codes(*demos, contexts=context)[i]
    assert not torch.allclose(w_lik, w_plain)
    w_lik.square().sum().backward()
    assert lik.net.f[0].weight.grad.abs().sum() > 0


def test_code_likelihood_infers_codes_from_the_demos_nll_over_neighbor_masks(batch):
    """code_likelihood: each demo scores -log softmax(-E) of its mask among itself and its
    neighbor masks (non-negative, equal to a direct computation), the codes differ from the
    energy's alone, and the meta-gradient still reaches the parameters."""
    from energy_model.mask_search import neighbor_masks

    lik, plain = _likelihood_and_plain(code_likelihood=True)
    x0, att, valid = batch.demo_x[:, 0, 0], batch.demo_att[:, 0], batch.demo_valid[:, 0]
    w = torch.randn(len(x0), 8)
    nll = lik.demo_nll_fn(x0, att, valid)(w)
    masks, ok = neighbor_masks(att, valid)
    for q in range(len(x0)):
        cands = torch.cat([att[q : q + 1], masks[q][ok[q]]])
        n = len(cands)
        e = lik.identification_energy(x0[q].expand(n, -1, -1), cands, w[q].expand(n, -1),
                                      valid[q].expand(n, -1))  # fmt: skip
        assert torch.isclose(nll[q], -torch.log_softmax(-e, 0)[0], atol=1e-5)
    assert (nll >= 0).all()
    _assert_codes_differ_and_carry_gradient(lik, plain, batch, "identification")


def test_generation_likelihood_infers_codes_from_the_demos_nll_over_contrast_outcomes(batch):
    """generation_likelihood: each demo scores -log softmax(-E) of its outcome among itself,
    the outcome held at its start and its noised copies (which differ from it only where
    generation moves), the codes differ from the energy's alone, and the meta-gradient
    still reaches the parameters."""
    from energy_model.model import GENERATION_LIKELIHOOD_NOISE, contrast_outcomes, generation_mask

    lik, plain = _likelihood_and_plain(generation_likelihood=True)
    traj, att, valid = batch.demo_x[:, 0], batch.demo_att[:, 0], batch.demo_valid[:, 0]
    cands = contrast_outcomes(traj, att)
    assert cands.shape == (1 + len(GENERATION_LIKELIHOOD_NOISE), *traj.shape)
    fixed = generation_mask(traj, att).expand_as(cands) == 0
    assert torch.equal(cands[fixed], traj.expand_as(cands)[fixed])
    w = torch.randn(len(traj), 8)
    torch.manual_seed(1)
    nll = lik.demo_outcome_nll_fn(traj, att, valid)(w)
    torch.manual_seed(1)
    every = torch.cat([traj[None], contrast_outcomes(traj, att)])
    for q in range(len(traj)):
        n = len(every)
        e = lik.generation_energy(every[:, q], att[q].expand(n, -1), w[q].expand(n, -1),
                                  valid[q].expand(n, -1))  # fmt: skip
        assert torch.isclose(nll[q], -torch.log_softmax(-e, 0)[0], atol=1e-5)
    assert (nll >= 0).all()
    _assert_codes_differ_and_carry_gradient(lik, plain, batch, "generation")


def test_only_generations_energy_reads_the_figure_input(batch):
    """Identification scores masks, and a spread that changes with the mask cost the counts
    their success: its energy, by mask and by chain, is the network's with figure=False."""
    torch.manual_seed(0)
    model = ConceptModel(ModelConfig(hidden=32, code_dim=8, figure_input=True), InferenceConfig())
    x, att, valid = batch.query_x[:, :1, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    traj = torch.cat([x, x], 1)
    assert torch.allclose(model.generation_energy(traj, att, w, valid), model.net(x, att, w, valid))
    blind = model.net(x, att, w, valid, figure=False)
    assert not torch.allclose(blind, model.net(x, att, w, valid), atol=1e-5)
    assert torch.allclose(model.identification_energy(x[:, 0], att, w, valid), blind)
    params = model.frozen_params("identification")
    assert torch.allclose(model.identification_energy(x[:, 0], att, w, valid, params), blind)
    assert torch.allclose(model.identification_energy_fn(x[:, 0], w, valid)(att), blind, atol=1e-5)


def test_generation_moves_only_attended_changeable_features(batch):
    model = small_model()
    traj, att, valid = (t.flatten(0, 1) for t in (batch.query_x, batch.query_att,
                                                   batch.query_valid))  # fmt: skip
    w = torch.randn(len(traj), 8)
    out = model.generate(traj, att, w, valid)
    unattended = att < 0.5
    assert torch.equal(out[:, 1][unattended], traj[:, 1][unattended])
    assert torch.equal(out[:, 0], traj[:, 0])
    assert torch.equal(out[..., 5:], traj[..., 5:])  # shapes never change


def test_identification_restarts_keep_each_scenes_lowest_energy_chain(batch):
    model = small_model()
    model.inference_cfg.identification = "langevin"
    x0, valid = batch.query_x[:, 0, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x0), 8)
    r, b = 4, len(x0)
    torch.manual_seed(5)
    record: list[torch.Tensor] = []
    picked = model.identify(x0, w, valid, restarts=r, record=record)
    torch.manual_seed(5)  # the same draws, each chain on its own
    fn = model.identification_energy_fn(x0.repeat(r, 1, 1), w.repeat(r, 1), valid.repeat(r, 1))
    chains = model.sample_attention(fn, valid.repeat(r, 1)).detach()
    energies = fn(torch.sigmoid(chains)).detach().view(r, b)
    lowest = chains.view(r, b, -1)[energies.argmin(0), torch.arange(b)]
    assert torch.equal(picked, lowest)
    assert len(record) == model.inference_cfg.a.steps and torch.equal(record[-1], picked)
    assert (model.identification_energy(x0, torch.sigmoid(picked), w, valid)
            <= energies[0] + 1e-6).all()  # fmt: skip
    with pytest.raises(ValueError, match="test-time"):
        model.identify(x0, w, valid, create_graph=True, restarts=r)
    with pytest.raises(ValueError, match="positive"):
        model.identify(x0, w, valid, restarts=0)


def test_generation_restarts_keep_each_querys_lowest_energy_chain(batch):
    """The first chain starts at x^0 as in training, the others anywhere in the world (what
    generation moves only); each query keeps the chain that ends lowest."""
    model = small_model()
    traj, att, valid = (t.flatten(0, 1) for t in (batch.query_x, batch.query_att,
                                                   batch.query_valid))  # fmt: skip
    w = torch.randn(len(traj), 8)
    r = 5
    record: list[torch.Tensor] = []
    torch.manual_seed(3)
    picked = model.generate(traj, att, w, valid, restarts=r, record=record)
    from_x0 = model.generate(traj, att, w, valid, restarts=1).detach()  # noiseless: chain 0
    e_picked = model.generation_energy(picked, att, w, valid).detach()
    assert (e_picked <= model.generation_energy(from_x0, att, w, valid).detach() + 1e-6).all()
    assert not torch.equal(picked, from_x0)  # some query found a lower end from elsewhere
    unattended = att < 0.5
    assert torch.equal(picked[:, 1][unattended], traj[:, 1][unattended])
    assert torch.equal(picked[:, 0], traj[:, 0]) and torch.equal(picked[..., 5:], traj[..., 5:])
    assert picked[..., :2].abs().max() <= 1.0  # starts and chains stay in the world
    assert len(record) == model.inference_cfg.x.steps and torch.equal(record[-1], picked)
    torch.manual_seed(3)
    assert torch.equal(model.generate(traj, att, w, valid, restarts=r), picked)  # seeded
    with pytest.raises(ValueError, match="test-time"):
        model.generate(traj, att, w, valid, create_graph=True, restarts=r)
    with pytest.raises(ValueError, match="positive"):
        model.generate(traj, att, w, valid, restarts=0)


def test_public_api_runs_one_task_from_numpy_demos():
    """energy_model's few-shot API: codes from a task's demos, then generation and
    identification on its queries, numpy in, detached tensors out."""
    import energy_model
    from particle_world import sample_task

    model = small_model()
    task = sample_task("quantity-2", np.random.default_rng(0), role="argument")
    codes = energy_model.infer_codes(model, task.demos)
    assert codes.w_x.shape == codes.w_a.shape == (1, 8) and not codes.w_a.requires_grad
    q = task.queries
    torch.manual_seed(0)
    probs = energy_model.identify(model, q.x[:, 0], codes.w_a, q.valid, restarts=1)
    torch.manual_seed(0)
    logits = model.identify(torch.as_tensor(q.x[:, 0]), codes.w_a.expand(len(q.x), -1),
                            torch.as_tensor(q.valid), restarts=1)  # fmt: skip
    assert torch.equal(probs, torch.sigmoid(logits) * torch.as_tensor(q.valid))
    assert not probs.requires_grad and (probs[~torch.as_tensor(q.valid)] == 0).all()
    traj = energy_model.generate(model, q.x, q.attention, codes.w_x, q.valid)
    assert traj.shape == q.x.shape and torch.equal(traj[:, 0], torch.as_tensor(q.x[:, 0]))


def test_public_api_refuses_bad_input_with_a_message_naming_it():
    """What a caller can get wrong (shapes, another model's codes, NaN from a broken scene)
    is named before any chain runs, not left to a matmul error or a 'sampler diverged'."""
    import energy_model
    from particle_world import sample_task

    model = small_model()
    q = sample_task("north", np.random.default_rng(0), role="action").queries
    w = torch.zeros(1, 8)
    cases = [
        ((q.x[..., :5], q.attention, w, q.valid), "x must be"),
        ((q.x[0], q.attention[0], w, q.valid[0]), "x must be"),
        ((q.x, q.attention[:, :2], w, q.valid), "attention must be"),
        ((q.x, q.attention, torch.zeros(1, 3), q.valid), "codes must be"),
        ((q.x, q.attention, torch.zeros(3, 8), q.valid), "codes must be"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            energy_model.generate(model, *args)
    broken = q.x.copy()
    broken[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x holds 1 NaN"):
        energy_model.generate(model, broken, q.attention, w, q.valid)
    with pytest.raises(ValueError, match="x0 holds 1 NaN"):
        energy_model.identify(model, broken[:, 0], w, q.valid)
    with pytest.raises(ValueError, match="valid must be"):
        energy_model.identify(model, q.x[:, 0], w, q.valid[:, 1:])


def test_wrong_shapes_are_refused():
    net = build_energy(ModelConfig(hidden=16, code_dim=4))
    with pytest.raises(ValueError, match="x must be"):
        net(torch.zeros(2, 3, 4), torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3).bool())


def test_checkpoint_round_trip_is_exact(tmp_path, batch):
    model = small_model()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(),
                              strict=True):  # fmt: skip
        assert torch.equal(a, b), k
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    assert torch.equal(model.energy(x, att, w, valid), loaded.energy(x, att, w, valid))
    assert dataclasses.asdict(loaded.model_cfg) == dataclasses.asdict(model.model_cfg)


def test_mismatched_checkpoints_fail_clearly(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "m.pt", model)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    del ckpt["model_config"]["fractional_gate"]  # written before the option: the default
    torch.save(ckpt, tmp_path / "before.pt")
    assert load_model(tmp_path / "before.pt").model_cfg.fractional_gate == "input"
    ckpt["format_version"] = 0
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="format version 0"):
        load_model(tmp_path / "old.pt")
    ckpt["format_version"] = FORMAT_VERSION
    ckpt["entity_layout"]["dim"] = 7
    torch.save(ckpt, tmp_path / "layout.pt")
    with pytest.raises(CheckpointError, match="entity layout"):
        load_model(tmp_path / "layout.pt")
    ckpt["entity_layout"]["dim"] = 9
    ckpt["model_config"]["from_the_future"] = True
    torch.save(ckpt, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="from_the_future"):
        load_model(tmp_path / "newer.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a readable torch checkpoint \(\w+\); use one"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="train one"):
        load_model(tmp_path / "missing.pt")


def test_incomplete_or_nonfinite_checkpoints_fail_clearly(tmp_path):
    save_checkpoint(tmp_path / "m.pt", small_model())
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    nan = {**ckpt, "state_dict": {**ckpt["state_dict"]}}
    name = next(iter(nan["state_dict"]))
    nan["state_dict"][name] = torch.full_like(nan["state_dict"][name], float("nan"))
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=f"NaN or inf \\({name}"):
        load_model(tmp_path / "nan.pt")
    del ckpt["state_dict"]
    torch.save(ckpt, tmp_path / "noweights.pt")
    with pytest.raises(CheckpointError, match="not a concept-model checkpoint \\(no state_dict\\)"):
        load_model(tmp_path / "noweights.pt")


def test_checkpoint_from_before_a_new_switch_loads_with_it_off(tmp_path, batch):
    model = small_model()
    save_checkpoint(tmp_path / "m.pt", model)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    del ckpt["model_config"]["motion_features"]
    torch.save(ckpt, tmp_path / "legacy.pt")
    loaded = load_model(tmp_path / "legacy.pt")
    assert loaded.model_cfg.motion_features is False
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    w = torch.randn(len(x), 8)
    assert torch.equal(model.energy(x, att, w, valid), loaded.energy(x, att, w, valid))


def test_evaluation_is_reproducible_and_leaves_the_global_rng_alone():
    """Identification starts from random logits: the eval seed fixes them, and the caller's
    torch stream (e.g. training's) is not consumed."""
    from energy_model.evaluation import evaluate_unit

    model = small_model()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    runs = [evaluate_unit(model, "color", "argument", n_tasks=2, seed=4) for _ in range(2)]
    assert runs[0] == runs[1]
    assert torch.equal(before, torch.get_rng_state())
    # shifting codes by the number of tasks hands every task its own codes again
    assert evaluate_unit(model, "color", "argument", n_tasks=2, seed=4, code_shift=2) == runs[0]


def test_shipped_checkpoint_loads_from_any_working_directory(tmp_path, monkeypatch):
    """The default checkpoint is found relative to the code, not the shell's directory."""
    monkeypatch.chdir(tmp_path)
    model = load_model(DEFAULT_CHECKPOINT)
    assert model.model_cfg.relational and not model.training


@pytest.mark.parametrize(
    "path", sorted(DEFAULT_CHECKPOINT.parent.glob("*.pt")), ids=lambda p: p.name
)
def test_every_shipped_checkpoint_loads_and_infers(path, batch):
    """Each checkpoint in assets/ matches this version's format and configs, and scores
    its batch to finite energies."""
    model = load_model(path)
    w_x, w_a = model.infer_codes(batch.demo_x, batch.demo_att, batch.demo_valid)
    x, att, valid = batch.query_x[:, 0], batch.query_att[:, 0], batch.query_valid[:, 0]
    assert torch.isfinite(model.generation_energy(x, att, w_x, valid)).all()
    assert torch.isfinite(model.identification_energy(x[:, 0], att, w_a, valid)).all()
