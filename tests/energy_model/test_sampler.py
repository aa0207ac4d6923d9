"""The Langevin sampler against analytic energies."""

import pytest
import torch

from energy_model.config import SamplerConfig
from energy_model.langevin import Langevin, SamplerDiverged


def quadratic(center):
    return lambda v: ((v - center) ** 2).sum(-1)


def test_descends_to_the_minimum_of_a_quadratic():
    torch.manual_seed(0)
    center = torch.tensor([0.3, -0.7, 1.2])
    sampler = Langevin(SamplerConfig(steps=40, step_size=0.2, learn_step_size=False), 3)
    out = sampler(quadratic(center), torch.randn(64, 3))
    assert (out - center).abs().max() < 1e-3


def test_noise_spreads_samples_around_the_minimum():
    torch.manual_seed(0)
    center = torch.tensor([0.5, 0.5])
    cfg = SamplerConfig(steps=200, step_size=0.05, noise=0.1, learn_step_size=False)
    out = Langevin(cfg, 2)(quadratic(center), torch.zeros(2000, 2))
    assert (out.mean(0) - center).abs().max() < 0.02
    assert 0.05 < out.std(0).mean() < 0.3


def test_mask_freezes_coordinates():
    sampler = Langevin(SamplerConfig(steps=5, learn_step_size=False), 2)
    start = torch.zeros(4, 2)
    mask = torch.tensor([1.0, 0.0])
    out = sampler(quadratic(torch.tensor([1.0, 1.0])), start, mask)
    assert torch.all(out[:, 1] == 0) and torch.all(out[:, 0] > 0)


def test_zero_steps_return_the_start_and_negative_steps_are_refused():
    sampler = Langevin(SamplerConfig(steps=5, learn_step_size=False), 2)
    start = torch.randn(4, 2)
    assert torch.equal(sampler(quadratic(torch.ones(2)), start, steps=0), start)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        sampler(quadratic(torch.ones(2)), start, steps=-1)


def test_gradient_flows_through_the_unrolled_chain_only_when_asked():
    sampler = Langevin(SamplerConfig(steps=3), 2)
    target = torch.tensor([1.0, -1.0], requires_grad=True)
    out = sampler(quadratic(target), torch.zeros(5, 2), create_graph=True)
    out.sum().backward()
    assert target.grad is not None and target.grad.abs().sum() > 0
    assert sampler.log_step.grad is not None
    detached = sampler(quadratic(target), torch.zeros(5, 2), create_graph=False)
    assert not detached.requires_grad


def test_nan_energy_stops_with_a_clear_error():
    sampler = Langevin(SamplerConfig(steps=3), 2)
    with pytest.raises(SamplerDiverged, match="NaN"):
        sampler(lambda v: (v * float("nan")).sum(-1), torch.zeros(2, 2))


def test_normalized_steps_have_the_step_size_over_the_moving_coordinates():
    """A row's step is step_size long in RMS over what moves, however steep the energy and
    however large the gradient on frozen coordinates."""
    cfg = SamplerConfig(steps=1, step_size=0.1, learn_step_size=False, normalize=True)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    for slope in (1e-3, 1.0, 1e3):
        energy = lambda v, s=slope: s * (v * torch.tensor([1.0, -1.0, 50.0, 50.0])).sum(-1)  # noqa: E731
        out = Langevin(cfg, 4)(energy, torch.zeros(1, 4), mask)
        assert torch.allclose(out, torch.tensor([[-0.1, 0.1, 0.0, 0.0]]), atol=1e-6)
