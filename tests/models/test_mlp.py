"""MLP, deep linear and two-layer nets: shapes, initializations the theory assumes,
manual gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.models import limit_threads
from piami.models.mlp import MLP, DeepLinearNet, TwoLayerNet
from piami.processes.tasks import LinearTeacher


def test_mlp_shapes_and_parameterizations_agree_at_init():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    ntk = MLP(5, 16, 2, sigma_b=0.3, generator=g1, dtype=torch.float64)
    std = MLP(5, 16, 2, sigma_b=0.3, parameterization="standard", generator=g2, dtype=torch.float64)
    x = torch.randn(7, 5, dtype=torch.float64)
    assert ntk(x).shape == (7, 1) and ntk.features(x).shape == (7, 16)
    torch.testing.assert_close(ntk(x), std(x))  # same function, different parameterization
    with pytest.raises(PiamiError):
        ntk(torch.randn(7, 4, dtype=torch.float64))
    with pytest.raises(PiamiError):
        MLP(5, 16, 2, activation="swish")


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_balanced_aligned_init_and_manual_gradient(depth):
    teacher = LinearTeacher([2.0, 1.0], 6, 5, rng=np.random.default_rng(0))
    net = DeepLinearNet((6, *([4] * (depth - 1)), 5))
    U, V = torch.as_tensor(teacher.U), torch.as_tensor(teacher.V)
    net.init_balanced_aligned(U, V, 1e-2, generator=torch.Generator().manual_seed(1))
    w = net.product().detach().numpy()
    np.testing.assert_allclose(teacher.mode_strengths(w), [1e-2, 1e-2], rtol=1e-10)
    for lo, hi in zip(net.weights[:-1], net.weights[1:], strict=True):  # balanced layers
        torch.testing.assert_close(lo @ lo.T, hi.T @ hi)
    # manual full-batch gradient == autograd
    x, y = (torch.as_tensor(a) for a in teacher.sample(32, rng=np.random.default_rng(2)))
    for p in net.weights:
        p.data += 0.1 * torch.randn(
            p.shape, generator=torch.Generator().manual_seed(3), dtype=p.dtype
        )
    loss = 0.5 * ((y - net(x)) ** 2).sum(1).mean()
    loss.backward()
    expected = [p.detach() - 0.05 * p.grad for p in net.weights]
    net.gd_step(y.T @ x / 32, x.T @ x / 32, 0.05)
    for p, e in zip(net.weights, expected, strict=True):
        torch.testing.assert_close(p.detach(), e)


def test_two_layer_symmetric_init_is_zero_and_limit_threads_restores():
    net = TwoLayerNet(4, 10, scale=0.1, symmetric=True, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(net(torch.randn(3, 4)), torch.zeros(3), atol=1e-6)
    with pytest.raises(PiamiError):
        TwoLayerNet(4, 9, scale=0.1, symmetric=True)
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_staircase_replica_gradient_matches_autograd():
    from piami.experiments.staircase import ReplicaNet

    g = torch.Generator().manual_seed(0)
    net = ReplicaNet(3, 8, 5, generator=g, dtype=torch.float64, device=torch.device("cpu"))
    params = [t.clone().requires_grad_(True) for t in (net.w, net.b, net.a)]
    x = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    y = torch.randn(3, 6, generator=g, dtype=torch.float64)
    w, b, a = params
    f = (
        torch.einsum(
            "rbn,rn->rb", torch.relu(torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))), a
        )
        / 8
    )
    (0.5 * ((f - y) ** 2).mean(dim=1).sum()).backward()
    lr = 0.01
    net.sgd_step(x, y, lr)  # mean-field step: N lr times the gradient
    for new, p in zip((net.w, net.b, net.a), params, strict=True):
        torch.testing.assert_close(new, (p - 8 * lr * p.grad).detach())
