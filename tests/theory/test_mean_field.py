"""The high-dimensional mean-field limit of online SGD: each term against an
independent computation."""

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.theory.mean_field import (
    hypercube_points,
    mean_field_velocity,
    smoothed_relu,
    staircase_mean_field,
)

LEAP1 = ([(0,), (0, 1), (0, 1, 2)], [1.0, 1.0, 1.0])


def test_smoothed_relu_matches_monte_carlo_and_its_derivatives():
    rng = np.random.default_rng(0)
    g = rng.standard_normal(2_000_000)
    for u, rho in [(0.3, 0.7), (-1.1, 2.0), (0.0, 0.05)]:
        h, big_phi, small_phi = smoothed_relu(np.array(u), np.array(rho))
        mc = np.maximum(u + rho * g, 0.0)
        assert h == pytest.approx(mc.mean(), abs=4 * mc.std() / np.sqrt(g.size))
        eps = 1e-6
        dh_du = (
            smoothed_relu(np.array(u + eps), np.array(rho))[0]
            - smoothed_relu(np.array(u - eps), np.array(rho))[0]
        ) / (2 * eps)
        dh_drho = (
            smoothed_relu(np.array(u), np.array(rho + eps))[0]
            - smoothed_relu(np.array(u), np.array(rho - eps))[0]
        ) / (2 * eps)
        assert big_phi == pytest.approx(dh_du, rel=1e-6)
        assert small_phi == pytest.approx(dh_drho, rel=1e-6)


def test_velocity_is_minus_the_mean_field_gradient():
    """Without noise the limit is gradient flow on 1/2 E_x (F - y)^2 with step P per particle."""
    rng = np.random.default_rng(1)
    p, k = 7, 3
    a, b = rng.standard_normal(p), rng.standard_normal(p)
    w, rho = rng.standard_normal((p, k)), rng.uniform(0.2, 1.5, p)
    pts = hypercube_points(k)
    y = pts[:, 0] + pts[:, 0] * pts[:, 1] + pts.prod(axis=1)
    da, db, dw, drho, res = mean_field_velocity(a, b, w, rho, pts, y)
    ta, tb, tw, tr = (torch.tensor(v, requires_grad=True) for v in (a, b, w, rho))
    u = tb[None, :] + torch.as_tensor(pts) @ tw.T
    s = u / tr
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    h = u * normal.cdf(s) + tr * torch.exp(normal.log_prob(s))
    f = (h * ta).mean(dim=1)
    loss = 0.5 * ((f - torch.as_tensor(y)) ** 2).mean()
    loss.backward()
    for mine, t in ((da, ta), (db, tb), (dw, tw), (drho, tr)):
        np.testing.assert_allclose(mine, -p * t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res, f.detach().numpy() - y, atol=1e-12)


def test_noise_term_matches_the_tail_change_of_explicit_sgd_steps():
    """d(rho^2)/dt of one neuron under single-sample SGD steps at finite d, averaged over samples.

    Two neurons with opposite a and identical first layers make f = 0 exactly, so the residual is
    -y for the network and for the limit alike.
    """
    d, k, lr0 = 400, 3, 0.5
    eta = lr0 / d
    gen = torch.Generator().manual_seed(0)
    a, b = 0.8, 0.2
    w_sup = torch.tensor([0.6, -0.3, 0.4], dtype=torch.float64)
    w_tail = torch.randn(d - k, generator=gen, dtype=torch.float64)
    rho = 0.9
    w_tail *= rho / w_tail.norm()
    sums, n = 0.0, 0
    for _ in range(20):
        x = 2.0 * torch.randint(0, 2, (20_000, d), generator=gen).double() - 1.0
        y = x[:, 0] + x[:, 0] * x[:, 1] + x[:, 0] * x[:, 1] * x[:, 2]
        z = b + x[:, :k] @ w_sup + x[:, k:] @ w_tail
        r = -y  # f = 0
        step = -eta * a * r[:, None] * (z > 0).double()[:, None] * x[:, k:]  # (B, d - k)
        new = ((w_tail[None, :] + step) ** 2).sum(dim=1)
        sums += float((new - rho**2).sum())
        n += x.shape[0]
    measured = sums / n / eta  # per unit time t = eta * samples
    pts = hypercube_points(k)
    yp = pts[:, 0] + pts[:, 0] * pts[:, 1] + pts.prod(axis=1)
    args = (np.array([a, -a]), np.array([b, b]), np.tile(w_sup.numpy(), (2, 1)), np.full(2, rho))
    *_, drho, res = mean_field_velocity(*args, pts, yp, noise=eta * (d - k))
    np.testing.assert_allclose(res, -yp, atol=1e-12)
    *_, drho_flow, _ = mean_field_velocity(*args, pts, yp)
    predicted = 2 * rho * drho[0]
    assert abs(2 * rho * (drho[0] - drho_flow[0])) > 0.3 * abs(predicted)  # the noise term matters
    assert measured == pytest.approx(predicted, rel=0.05)


def test_gradient_flow_never_raises_the_loss():
    traj = staircase_mean_field(*LEAP1, t_max=15.0, n_particles=300, rng=np.random.default_rng(2))
    assert np.all(np.diff(traj.loss) <= 1e-9)
    assert traj.loss[0] == pytest.approx(3.0, abs=0.05) and traj.loss[-1] < 0.7


@pytest.mark.parametrize(
    "supports,coefs,level",
    [
        ([(0,), (0, 1, 2)], [1.0, 1.0], 1.0),  # leap 2: x1 learned, x1x2x3 never starts
        ([(0, 1, 2)], [1.0], 1.0),  # leap 3: f = 0 is a saddle
        ([(0,), (0, 1), (0, 1, 2, 3)], [1.0, 0.5, 0.7], 0.49),  # leap 2 after a leap-1 step
    ],
)
def test_limit_from_zero_overlap_stays_on_leap_2_and_3_saddles(supports, coefs, level):
    """The plateau is the summed c_S^2 of the monomials it cannot start (Abbe et al. 2023)."""
    traj = staircase_mean_field(
        supports, coefs, t_max=40.0, n_particles=400, noise=0.1, rng=np.random.default_rng(3)
    )
    assert traj.loss[-1] == pytest.approx(level, abs=2e-3)
    assert np.all(np.abs(traj.coefficients[:, -1]) < 1e-12)  # the new coordinates get no gradient


def test_integration_converges_in_the_step():
    kw = dict(t_max=12.0, n_particles=500, noise=0.1, record_dt=0.1)
    coarse = staircase_mean_field(*LEAP1, dt=0.05, rng=np.random.default_rng(4), **kw)
    fine = staircase_mean_field(*LEAP1, dt=0.0125, rng=np.random.default_rng(4), **kw)
    assert np.max(np.abs(coarse.loss - fine.loss)) < 0.01


def test_same_seed_same_curve():
    one = staircase_mean_field(*LEAP1, t_max=2.0, n_particles=200, rng=np.random.default_rng(5))
    two = staircase_mean_field(*LEAP1, t_max=2.0, n_particles=200, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(one.loss, two.loss)


@pytest.mark.parametrize(
    "kw",
    [
        {"supports": [], "coefficients": []},
        {"supports": [(0,)], "coefficients": [1.0, 2.0]},
        {"supports": [(0, 20)], "coefficients": [1.0]},
        {"supports": [(0,)], "coefficients": [1.0], "noise": -1.0},
        {"supports": [(0,)], "coefficients": [1.0], "dt": 0.5},
        {"supports": [(0,)], "coefficients": [1.0], "dt": 0.03},
    ],
)
def test_bad_input_raises(kw):
    with pytest.raises(PiamiError):
        staircase_mean_field(t_max=1.0, rng=np.random.default_rng(0), **kw)


def test_loss_on_uniform_weights_is_the_loss_and_weights_reweight_points():
    traj = staircase_mean_field(*LEAP1, t_max=3.0, n_particles=200, rng=np.random.default_rng(6))
    np.testing.assert_allclose(traj.loss_on(np.ones(8)), traj.loss, rtol=1e-12)
    only_first = np.eye(8)[0]  # the point (-1, -1, -1), where y = -1 + 1 - 1 = -1
    np.testing.assert_allclose(traj.loss_on(only_first), (traj.outputs[:, 0] + 1.0) ** 2)
    with pytest.raises(PiamiError):
        traj.loss_on(np.zeros(8))


def test_noise_gain_is_the_mean_of_a2_times_the_smoothed_step():
    """At t = 0 the gain E_x E_p[a^2 Phi(b / rho)] is known in closed form for w = 0."""
    rng = np.random.default_rng(3)
    traj = staircase_mean_field(*LEAP1, t_max=0.2, rng=rng, n_particles=300, rho0=0.8)
    a = np.random.default_rng(3).standard_normal(300)
    b = np.random.default_rng(3).standard_normal(600)[300:]  # a then b drawn from one stream
    from scipy.special import ndtr

    assert traj.noise_gain.shape == traj.times.shape
    assert traj.noise_gain[0] == pytest.approx(float(np.mean(a * a * ndtr(b / 0.8))), rel=1e-12)
