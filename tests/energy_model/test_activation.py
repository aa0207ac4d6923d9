"""SiLU's hand-written derivatives: a speed-up that changes nothing."""

import torch
import torch.nn.functional as F

from energy_model import activation
from energy_model.algorithm import meta_loss
from energy_model.config import InferenceConfig, LossConfig, ModelConfig
from energy_model.data import TaskStream
from energy_model.model import ConceptModel


def _derivatives(fn, x, order):
    out, y = [], fn(x).sum()
    for _ in range(order):
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        out.append(g)
        y = g.sum()
    return out


def test_silu_and_its_first_four_derivatives_match_autograds():
    x = torch.linspace(-12, 12, 241, dtype=torch.double, requires_grad=True)
    mine = _derivatives(activation.SiLU(), x, 4)
    for k, (a, b) in enumerate(zip(mine, _derivatives(F.silu, x, 4), strict=True), 1):
        assert torch.allclose(a, b, atol=1e-12), f"derivative {k}"
    x = torch.randn(16, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(activation.SiLU(), (x,))


def test_meta_gradient_is_the_same_with_autograds_silu(monkeypatch):
    """Algorithm 1's loss and its gradient through the unrolled chains, both ways."""
    batch = TaskStream([("north", "action"), ("quantity-2", "argument")], 3, seed=1).batch(0)
    grads = {}
    for hand in (True, False):
        monkeypatch.setattr(activation, "HAND_DERIVATIVES", hand)
        torch.manual_seed(0)
        model = ConceptModel(ModelConfig(hidden=32, code_dim=8), InferenceConfig())
        loss = meta_loss(model, batch, LossConfig())["loss"]
        grads[hand] = [loss, *torch.autograd.grad(loss, list(model.net.parameters()))]
    for a, b in zip(grads[True], grads[False], strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
