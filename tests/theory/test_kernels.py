"""NNGP / NTK closed forms against Monte Carlo over Gaussian pre-activations and finite networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.theory.kernels import dual_activation, nngp_ntk


def _mc_dual(k: np.ndarray, act: str, n: int, rng: np.random.Generator):
    """Monte Carlo E[phi(u)phi(v)], E[phi'(u)phi'(v)] with (u, v) ~ N(0, k)."""
    z = rng.multivariate_normal(np.zeros(k.shape[0]), k, size=n)
    if act == "relu":
        phi, dphi = np.maximum(z, 0), (z > 0).astype(float)
    else:
        from scipy.special import erf

        phi, dphi = erf(z), 2 / math.sqrt(math.pi) * np.exp(-(z**2))
    return phi.T @ phi / n, dphi.T @ dphi / n


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_dual_activation_matches_monte_carlo(act):
    rng = np.random.default_rng(0)
    k = np.array([[1.3, 0.6, -0.4], [0.6, 0.8, 0.1], [-0.4, 0.1, 2.0]])
    e_phi, e_dphi = dual_activation(k, act)
    mc_phi, mc_dphi = _mc_dual(k, act, 400_000, rng)
    # 4e5 samples: standard error of each entry < 3e-3 for these O(1) moments; allow 5 s.e.
    np.testing.assert_allclose(e_phi, mc_phi, atol=1.5e-2)
    np.testing.assert_allclose(e_dphi, mc_dphi, atol=1.5e-2)


def test_relu_closed_form_known_value():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    k, theta = nngp_ntk(x, depth=1, activation="relu", sigma_w2=2.0)
    # K^1 = I; orthogonal inputs: E[relu relu] = 1/(2 pi); K^2 = 2/(2 pi); Kdot = 2 * 1/4
    assert k[0, 1] == pytest.approx(1 / math.pi)
    assert k[0, 0] == pytest.approx(1.0)  # He init keeps the variance
    assert theta[0, 1] == pytest.approx(1 / math.pi + 0.5 * 0.0)
    assert theta[0, 0] == pytest.approx(1.0 + 1.0 * 1.0)


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_kernels_match_wide_network_average(act):
    """Seed-averaged empirical kernels of wide random nets vs the closed forms (Monte Carlo)."""
    from piami.experiments.kernel_limit import empirical_kernels
    from piami.models import limit_threads
    from piami.models.mlp import MLP

    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    x *= math.sqrt(5) / np.linalg.norm(x, axis=1, keepdims=True)
    k_th, t_th = nngp_ntk(x, depth=2, activation=act, sigma_w2=2.0, sigma_b2=0.1)
    gen = torch.Generator().manual_seed(0)
    ks, ts = [], []
    for _ in range(12):
        net = MLP(
            5,
            256,
            2,
            activation=act,
            sigma_w=math.sqrt(2),
            sigma_b=math.sqrt(0.1),
            generator=gen,
            dtype=torch.float64,
        )
        with limit_threads(1):
            k, t = empirical_kernels(net, torch.as_tensor(x))
        ks.append(k)
        ts.append(t)
    for emp, th in ((np.array(ks), k_th), (np.array(ts), t_th)):
        se = emp.std(axis=0, ddof=1) / math.sqrt(emp.shape[0])
        # unbiased up to O(1/n) = 0.4%: the mean lies within 5 standard errors (+ 1% of |K|)
        assert np.all(np.abs(emp.mean(axis=0) - th) <= 5 * se + 0.01 * np.abs(th).max())


def test_bad_inputs():
    with pytest.raises(PiamiError):
        nngp_ntk(np.ones(3), depth=1)
    with pytest.raises(PiamiError):
        nngp_ntk(np.ones((2, 3)), depth=0)
    with pytest.raises(PiamiError):
        nngp_ntk(np.ones((2, 3)), depth=1, activation="gelu")
    with pytest.raises(PiamiError):
        nngp_ntk(np.zeros((2, 3)), depth=1, sigma_b2=0.0)
    with pytest.raises(PiamiError):
        dual_activation(np.ones((2, 3)), "relu")
