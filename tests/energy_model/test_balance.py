"""Per-context gradient balancing: each context's gradient counts by its direction, not its
scale, and the running norms survive a checkpoint."""

import torch

from energy_model.balance import ContextBalancer


def _losses(p: torch.Tensor, big: float) -> dict:
    return {"loss_x": (p * torch.tensor([1.0, 0.0])).sum(), "loss_a": big * p[1].square()}


def test_a_context_a_thousand_times_larger_does_not_drown_the_other():
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    raw = ContextBalancer().backward(_losses(p, 1000.0), [p])
    assert raw == {"grad_norm_x": 1.0, "grad_norm_a": 2000.0}
    assert torch.allclose(p.grad, torch.tensor([1.0, 1.0]))  # each context at unit norm


def test_each_context_is_divided_by_a_running_mean_of_its_own_norm():
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    balancer = ContextBalancer(decay=0.5)
    balancer.backward(_losses(p, 1.0), [p])  # identification's norm 2
    balancer.backward(_losses(p, 3.0), [p])  # now 6: its running mean is 4
    assert balancer.norms == {"loss_x": 1.0, "loss_a": 4.0}
    assert torch.allclose(p.grad, torch.tensor([1.0, 6.0 / 4.0]))


def test_a_context_that_is_not_trained_is_left_out():
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    terms = {"loss_x": (3 * p).sum(), "loss_a": torch.zeros(())}  # contexts='generation'
    raw = ContextBalancer().backward(terms, [p])
    assert set(raw) == {"grad_norm_x"}
    assert torch.allclose(p.grad, torch.full((2,), 3.0) / raw["grad_norm_x"])


def test_running_norms_round_trip_through_state_dict():
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    a = ContextBalancer(decay=0.9)
    a.backward(_losses(p, 5.0), [p])
    b = ContextBalancer()
    b.load_state_dict(a.state_dict())
    assert (b.decay, b.norms) == (a.decay, a.norms)
