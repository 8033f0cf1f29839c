"""theory.learning_curves: the kappa equation, closed forms, the power-law exponent, and
kernel ridge regression simulated on Gaussian features."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from piami.errors import PiamiError
from piami.theory.learning_curves import (
    KernelCurve,
    asymptotic_exponent,
    kernel_learning_curve,
    power_law_spectrum,
)
from piami.theory.random_features import random_feature_learning_curve, random_feature_spectrum

# --------------------------------------------------------------------------- helpers


def _simulate(lam, v, n, *, ridge, noise, seeds, rng):
    """Kernel ridge regression with the linear kernel ``K = x.x'`` on ``x ~ N(0, diag(lam))``.

    The eigenfunctions are ``x_i / sqrt(lam_i)`` with eigenvalues ``lam_i``; the target is
    ``sum_i v_i x_i / sqrt(lam_i)``. The predictor ``K(x, X)(K(X, X) + ridge I)^-1 y`` is
    ``w.x`` with ``w = X^T (X X^T + ridge I)^-1 y``. Returns per-seed test MSE on noisy labels
    (exact over x: ``sum_i lam_i (w_i - beta_i)^2 + noise``), train MSE, and the learned
    coefficients in the eigenbasis ``w_i sqrt(lam_i)``.
    """
    m = lam.size
    beta, sd = v / np.sqrt(lam), np.sqrt(lam)
    test, train, coef = np.empty(seeds), np.empty(seeds), np.empty((seeds, m))
    for s in range(seeds):
        x = rng.standard_normal((n, m)) * sd
        y = x @ beta + math.sqrt(noise) * rng.standard_normal(n)
        if n <= m:
            k = x @ x.T
            k[np.diag_indices(n)] += ridge
            w = x.T @ np.linalg.solve(k, y)
        else:
            a = x.T @ x
            a[np.diag_indices(m)] += ridge
            w = np.linalg.solve(a, x.T @ y)
        test[s] = np.sum(lam * (w - beta) ** 2) + noise
        train[s] = np.mean((x @ w - y) ** 2)
        coef[s] = w * sd
    return test, train, coef


def _z(samples, predicted):
    return (samples.mean() - predicted) / (samples.std(ddof=1) / math.sqrt(samples.size))


def _kappa_brentq(lam, n, ridge):
    f = lambda k: np.sum(lam / (lam + k)) + ridge / k - n  # noqa: E731
    return brentq(f, 1e-300, 1e6 * (lam.sum() + ridge), xtol=1e-300, rtol=1e-15, maxiter=500)


# --------------------------------------------------------------------------- the kappa equation


@pytest.mark.parametrize("ridge", [0.0, 1e-6, 1e-2, 1.0, 30.0])
def test_kappa_equation_and_conservation_law(ridge):
    lam, v = power_law_spectrum(3000, 1.4, 2.2)
    ns = np.array([1.0, 2.5, 10.0, 77.0, 500.0, 2999.0] + ([3000.0, 5000.0] if ridge else []))
    c = kernel_learning_curve(lam, v, ns, ridge=ridge)
    learn = c.learnability()
    assert learn.shape == (ns.size, lam.size)
    # conservation law sum_i L_i = n - delta/kappa (Simon et al.), to 1e-10 relative
    np.testing.assert_allclose(learn.sum(axis=1), ns - c.ridge_share, rtol=1e-10, atol=0)
    if ridge:
        np.testing.assert_allclose(c.ridge_share, ridge / c.kappa, rtol=1e-12)
    # kappa against an independent bracketing solver
    for i, n in enumerate(ns):
        assert c.kappa[i] == pytest.approx(_kappa_brentq(lam, n, ridge), rel=1e-10)
    # E0 is n / (n - sum L^2) and >= 1
    np.testing.assert_allclose(c.e0, ns / (ns - (learn**2).sum(axis=1)), rtol=1e-9)
    assert np.all(c.e0 >= 1.0)


def test_kappa_equation_would_catch_a_missing_ridge_term():
    """Solving sum L = n without delta/kappa is a different kappa: the checks above would fail."""
    lam, v = power_law_spectrum(500, 1.5, 2.0)
    c = kernel_learning_curve(lam, v, 100.0, ridge=0.1)
    wrong = brentq(lambda k: np.sum(lam / (lam + k)) - 100.0, 1e-300, 1e3)
    assert abs(c.kappa[0] / wrong - 1) > 0.1
    assert c.learnability().sum() < 100.0 - 1.0  # the ridge uses up part of the n samples


def test_vectorized_over_n_matches_one_at_a_time_and_scales():
    lam, v = power_law_spectrum(100_000, 1.5, 2.0)
    ns = np.geomspace(1, 20_000, 100)
    c = kernel_learning_curve(lam, v, ns, ridge=1e-4, noise=0.01)
    for i in (0, 37, 99):
        one = kernel_learning_curve(lam, v, ns[i], ridge=1e-4, noise=0.01)
        assert one.kappa[0] == pytest.approx(c.kappa[i], rel=1e-12)
        assert one.test_mse[0] == pytest.approx(c.test_mse[i], rel=1e-12)
    assert c.learnability(slice(0, 10)).shape == (100, 10)
    assert np.all(np.diff(c.kappa) < 0)  # more data, less effective regularization


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize(("n", "ridge"), [(3.0, 0.0), (40.0, 0.0), (40.0, 0.7), (90.0, 5.0)])
def test_flat_spectrum_closed_form(n, ridge):
    """M equal eigenvalues lam: n k^2 + (n lam - M lam - delta) k - delta lam = 0."""
    m, lam0, noise = 60, 0.3, 0.2
    rng = np.random.default_rng(0)
    v = rng.standard_normal(m)
    c = kernel_learning_curve(np.full(m, lam0), v, n, ridge=ridge, noise=noise)
    p = n * lam0 - m * lam0 - ridge
    kappa = (-p + math.sqrt(p * p + 4 * n * ridge * lam0)) / (2 * n)
    learn = lam0 / (lam0 + kappa)
    e0 = n / (n - m * learn**2)
    test = e0 * ((1 - learn) ** 2 * np.sum(v**2) + noise)
    assert c.kappa[0] == pytest.approx(kappa, rel=1e-10)
    assert c.e0[0] == pytest.approx(e0, rel=1e-10)
    assert c.test_mse[0] == pytest.approx(test, rel=1e-10)
    assert c.bias2[0] == pytest.approx((1 - learn) ** 2 * np.sum(v**2), rel=1e-10)
    assert c.train_mse[0] == pytest.approx((ridge / (n * kappa)) ** 2 * test, rel=1e-10, abs=0)
    if ridge == 0:  # kappa = lam (M - n)/n, L = n/M, E = (1 - n/M) |v|^2 + noise M/(M - n)
        assert c.kappa[0] == pytest.approx(lam0 * (m - n) / n, rel=1e-12)
        assert c.test_mse[0] == pytest.approx(
            (1 - n / m) * np.sum(v**2) + noise * m / (m - n), rel=1e-10
        )


def test_one_mode_closed_form():
    n, ridge, noise, v = 4.0, 2.0, 0.3, 1.7
    c = kernel_learning_curve([2.0], [v], n, ridge=ridge, noise=noise)
    # 2/(2 + k) + ridge/k = n  ->  n k^2 + (2n - 2 - ridge) k - 2 ridge = 0
    p = 2 * n - 2 - ridge
    kappa = (-p + math.sqrt(p * p + 8 * n * ridge)) / (2 * n)
    learn = 2 / (2 + kappa)
    test = n / (n - learn**2) * ((1 - learn) ** 2 * v**2 + noise)
    assert c.kappa[0] == pytest.approx(kappa, rel=1e-12)
    assert c.test_mse[0] == pytest.approx(test, rel=1e-12)
    assert c.generalization_error[0] == pytest.approx(test - noise, rel=1e-12)
    assert c.variance[0] == pytest.approx(test - noise - (1 - learn) ** 2 * v**2, rel=1e-10)


def test_ridgeless_interpolation_threshold_and_beyond():
    lam, v = power_law_spectrum(20, 1.5, 2.0)
    noise = 0.25
    c = kernel_learning_curve(lam, v, [10.0, 19.999, 20.0, 30.0, 80.0], noise=noise)
    assert np.all(c.kappa[:2] > 0) and np.all(c.kappa[2:] == 0)
    assert np.all(c.learnability()[2:] == 1.0)
    assert c.e0[2] == math.inf and c.test_mse[2] == math.inf and c.train_mse[2] == 0.0
    for i, n in ((3, 30.0), (4, 80.0)):  # OLS: E = noise n/(n - M), train noise (n - M)/n
        assert c.test_mse[i] == pytest.approx(noise * n / (n - 20), rel=1e-14)
        assert c.train_mse[i] == pytest.approx(noise * (n - 20) / n, rel=1e-14)
        assert c.bias2[i] == 0.0
    assert c.test_mse[1] > 1e3 * noise  # blows up approaching n = M from below
    # the edge is the ridge -> 0+ limit
    tiny = kernel_learning_curve(lam, v, [10.0, 30.0, 80.0], ridge=1e-11, noise=noise)
    np.testing.assert_allclose(tiny.test_mse, c.test_mse[[0, 3, 4]], rtol=1e-6)
    np.testing.assert_allclose(tiny.train_mse[1:], c.train_mse[3:], rtol=1e-6)
    np.testing.assert_allclose(tiny.ridge_share[1:], [10.0, 60.0], rtol=1e-6)
    # noiseless: exact recovery at and past n = M, still E0 = inf at n = M
    clean = kernel_learning_curve(lam, v, [20.0, 30.0])
    assert clean.e0[0] == math.inf
    np.testing.assert_array_equal(clean.test_mse, [0.0, 0.0])


def test_zero_eigenvalue_mode_acts_as_label_noise():
    lam, v = power_law_spectrum(50, 2.0, 2.0)
    u = 0.4
    with_zero = kernel_learning_curve(np.append(lam, 0.0), np.append(v, u), [5.0, 50.0, 70.0])
    as_noise = kernel_learning_curve(lam, v, [5.0, 50.0, 70.0], noise=u**2)
    np.testing.assert_allclose(with_zero.kappa, as_noise.kappa, rtol=1e-13)
    np.testing.assert_allclose(with_zero.test_mse, as_noise.test_mse, rtol=1e-12)
    np.testing.assert_allclose(with_zero.train_mse, as_noise.train_mse, rtol=1e-12)


# --------------------------------------------------------------------------- power laws


def test_power_law_spectrum_and_exponent():
    lam, v = power_law_spectrum(10, 2.0, 3.0)
    assert lam.sum() == pytest.approx(1.0) and np.sum(v**2) == pytest.approx(1.0)
    np.testing.assert_allclose(lam / lam[0], np.arange(1, 11.0) ** -2.0)
    np.testing.assert_allclose(v**2 / v[0] ** 2, np.arange(1, 11.0) ** -3.0)
    raw, rv = power_law_spectrum(5, 1.5, 4.0, normalize=False)
    np.testing.assert_allclose(raw, np.arange(1, 6.0) ** -1.5)
    np.testing.assert_allclose(rv, np.arange(1, 6.0) ** -2.0)
    assert asymptotic_exponent(1.5, 2.0) == 1.0  # b - 1 < 2a
    assert asymptotic_exponent(2.0, 7.0) == 4.0  # b - 1 > 2a
    assert asymptotic_exponent(1.25, 3.5) == 2.5  # the boundary


@pytest.mark.parametrize(("a", "b"), [(1.5, 2.0), (2.0, 2.5), (2.0, 7.0)])
def test_log_log_slope_matches_asymptotic_exponent(a, b):
    """Ridgeless, noiseless, 100 <= n <= 400 << M = 10^5: slope -min(b - 1, 2a) within 0.02."""
    lam, v = power_law_spectrum(100_000, a, b)
    ns = np.geomspace(100, 400, 7)
    c = kernel_learning_curve(lam, v, ns)
    slope = np.polyfit(np.log(ns), np.log(c.test_mse), 1)[0]
    assert -slope == pytest.approx(asymptotic_exponent(a, b), abs=0.02)
    # and not the other candidate exponent: the two regimes are told apart
    other = 2 * a if b - 1 < 2 * a else b - 1
    assert abs(-slope - other) > 0.4


# --------------------------------------------------------------------------- simulation


def test_simulated_ridge_regression_matches_theory():
    """Gaussian features, M = 400 power-law modes, ridge 0.05, noise 0.2: mean test and train MSE
    over 300 seeds within 3 standard errors (Monte Carlo) of the theory at n = 50, 100, 200; the
    mean learned coefficients are L_i v_i (Simon et al.). Wrong variants are rejected."""
    lam, v = power_law_spectrum(400, 1.5, 2.0)
    ridge, noise, ns = 0.05, 0.2, (50, 100, 200)
    c = kernel_learning_curve(lam, v, ns, ridge=ridge, noise=noise)
    rng = np.random.default_rng(2024)
    for i, n in enumerate(ns):
        test, train, coef = _simulate(lam, v, n, ridge=ridge, noise=noise, seeds=300, rng=rng)
        assert abs(_z(test, c.test_mse[i])) < 3
        assert abs(_z(train, c.train_mse[i])) < 3
        top = slice(0, 5)
        se = coef[:, top].std(axis=0, ddof=1) / math.sqrt(coef.shape[0])
        expected = c.learnability(top)[i] * v[top]
        assert np.all(np.abs(coef[:, top].mean(axis=0) - expected) < 4 * se)
        # broken theories fail on the same data: E0 = 1, and kappa without the ridge term
        assert abs(_z(test, c.bias2[i] + noise)) > 3
        k_wrong = brentq(lambda k, n=n: np.sum(lam / (lam + k)) - n, 1e-300, 1e3)
        learn = lam / (lam + k_wrong)
        e_wrong = n / (n - np.sum(learn**2)) * (np.sum((1 - learn) ** 2 * v**2) + noise)
        assert abs(_z(test, e_wrong)) > 3
        assert abs(_z(train, (ridge / (n * k_wrong)) ** 2 * e_wrong)) > 3


@pytest.mark.slow
def test_simulated_4000_features_agree():
    """M = 4000 modes at n = 100 and 400 (below M), M = 400 at n = 800 (above M), ridge 0.01,
    noise 0.1: mean test and train MSE within 3 standard errors of the theory."""
    rng = np.random.default_rng(7)
    for m, n, seeds in ((4000, 100, 60), (4000, 400, 30), (400, 800, 200)):
        lam, v = power_law_spectrum(m, 1.5, 2.0)
        c = kernel_learning_curve(lam, v, n, ridge=0.01, noise=0.1)
        test, train, _ = _simulate(lam, v, n, ridge=0.01, noise=0.1, seeds=seeds, rng=rng)
        assert abs(_z(test, c.test_mse[0])) < 3
        assert abs(_z(train, c.train_mse[0])) < 3


# --------------------------------------------------------------------------- random features


def test_random_feature_spectrum_closed_forms():
    lam, v = power_law_spectrum(30, 1.5, 2.0)
    perm = np.random.default_rng(0).permutation(30)
    mu, u, res = random_feature_spectrum(lam, v, np.eye(30)[perm])  # all latents, permuted
    np.testing.assert_allclose(mu, lam, rtol=1e-12)
    np.testing.assert_allclose(np.abs(u), v, rtol=1e-10)
    assert res == pytest.approx(0.0, abs=1e-14)
    mu, u, res = random_feature_spectrum(lam, v, 3.0 * np.eye(30)[:8])  # the top 8, rescaled
    np.testing.assert_allclose(mu, 9.0 * lam[:8], rtol=1e-12)
    np.testing.assert_allclose(np.abs(u), v[:8], rtol=1e-10)
    assert res == pytest.approx(np.sum(v[8:] ** 2), rel=1e-10)
    # more features than latents: rank M, the rest exactly zero, threshold at n = M
    f = np.random.default_rng(1).standard_normal((50, 30))
    mu, u, res = random_feature_spectrum(lam, v, f)
    assert np.count_nonzero(mu) == 30 and np.all(u[30:] == 0) and res < 1e-10
    c = kernel_learning_curve(mu, u, [30.0, 60.0], noise=0.1 + res)
    assert c.e0[0] == math.inf and c.test_mse[1] == pytest.approx((0.1 + res) * 2.0, rel=1e-12)


def test_random_feature_regression_matches_theory():
    """M = 400 latents, N = 100 Gaussian random features, ridge 1e-3, n = 50 and 200 (both sides
    of N): test and train MSE over 300 seeds within 3 standard errors of the reduced theory."""
    lam, v = power_law_spectrum(400, 1.5, 2.0)
    rng = np.random.default_rng(3)
    f = rng.standard_normal((100, 400)) / math.sqrt(400)
    mu, u, res = random_feature_spectrum(lam, v, f)
    ridge, noise = 1e-3, 0.1
    b, sd = v / np.sqrt(lam), np.sqrt(lam)
    for n in (50, 200):
        c = kernel_learning_curve(mu, u, n, ridge=ridge, noise=noise + res)
        test, train = np.empty(300), np.empty(300)
        for s in range(300):
            x = rng.standard_normal((n, 400)) * sd
            y = x @ b + math.sqrt(noise) * rng.standard_normal(n)
            phi = x @ f.T
            a = phi.T @ phi
            a[np.diag_indices(100)] += ridge
            w = np.linalg.solve(a, phi.T @ y)
            d = f.T @ w - b
            test[s] = np.sum(lam * d * d) + noise
            train[s] = np.mean((phi @ w - y) ** 2)
        assert abs(_z(test, c.test_mse[0])) < 3
        assert abs(_z(train, c.train_mse[0])) < 3
        # leaving out the unexpressed target (residual) is rejected
        wrong = kernel_learning_curve(mu, u, n, ridge=ridge, noise=noise)
        assert abs(_z(test, wrong.test_mse[0])) > 3


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_random_feature_curve_matches_feature_average_of_exact_reduction(ridge):
    """The deterministic equivalent against random_feature_spectrum + kernel_learning_curve
    averaged over 6 draws of F (M = 1000, N = 200): within 2% (O(1/N) corrections) at P below,
    near and above N; ignoring the feature stage (the latent kernel curve) is off by > 5%."""
    lam, v = power_law_spectrum(1000, 1.5, 2.0)
    ns = np.array([40.0, 150.0, 300.0, 800.0])
    de = random_feature_learning_curve(lam, v, ns, n_features=200, ridge=ridge, noise=0.1)
    rng = np.random.default_rng(5)
    tests, trains = [], []
    for _ in range(6):
        f = rng.standard_normal((200, 1000)) / math.sqrt(200)
        mu, u, res = random_feature_spectrum(lam, v, f)
        c = kernel_learning_curve(mu, u, ns, ridge=ridge, noise=0.1 + res)
        tests.append(c.test_mse)
        trains.append(c.train_mse)
    np.testing.assert_allclose(np.mean(tests, axis=0), de.test_mse, rtol=0.02)
    np.testing.assert_allclose(np.mean(trains, axis=0), de.train_mse, rtol=0.02, atol=1e-12)
    latent = kernel_learning_curve(lam, v, ns[1:], ridge=ridge, noise=0.1)
    assert np.all(np.abs(latent.test_mse / de.test_mse[1:] - 1) > 0.05)


def test_random_feature_curve_limits():
    lam, v = power_law_spectrum(300, 1.5, 2.0)
    ns = np.array([20.0, 100.0, 250.0])
    for ridge in (0.0, 0.05):  # infinitely many features: the kernel curve
        rf = random_feature_learning_curve(lam, v, ns, n_features=10**10, ridge=ridge, noise=0.1)
        kr = kernel_learning_curve(lam, v, ns, ridge=ridge, noise=0.1)
        np.testing.assert_allclose(rf.test_mse, kr.test_mse, rtol=1e-6)
        np.testing.assert_allclose(rf.train_mse, kr.train_mse, rtol=1e-6, atol=1e-15)
        np.testing.assert_allclose(rf.kappa, kr.kappa, rtol=1e-6)
    # ridgeless, N < M: latent kappa set by min(N, P); OLS on N features past P = N
    rf = random_feature_learning_curve(lam, v, [30.0, 50.0, 50.0 * 3], n_features=50, noise=0.1)
    at_n = kernel_learning_curve(lam, v, [30.0, 50.0])
    np.testing.assert_allclose(rf.kappa, at_n.kappa[[0, 1, 1]], rtol=1e-10)
    assert rf.e0[1] == math.inf and rf.test_mse[1] == math.inf
    missed = float(np.sum(v**2 * (1 - at_n.learnability()[1])))
    assert rf.test_mse[2] == pytest.approx(1.5 * (missed + 0.1), rel=1e-10)
    assert rf.train_mse[2] == pytest.approx((100 / 150) * (missed + 0.1), rel=1e-10)
    # N > M ridgeless, P >= M: every latent mode learned, E = noise P / (P - M)
    rf = random_feature_learning_curve(lam, v, [600.0], n_features=1000, noise=0.1)
    assert rf.test_mse[0] == pytest.approx(0.1 * 2.0, rel=1e-12)
    bad = ({"n_features": 0}, {"n_features": 2.5}, {"n_features": 5, "projection_variance": -1})
    for kw in bad:
        with pytest.raises(PiamiError):
            random_feature_learning_curve(lam, v, 10.0, **kw)


def test_random_feature_spectrum_bad_input():
    lam, v = power_law_spectrum(5, 1.5, 2.0)
    for args in (
        (lam, v, np.eye(4)),
        (lam, v[:4], np.eye(5)),
        (-lam, v, np.eye(5)),
        (lam, v, np.full((2, 5), np.nan)),
    ):
        with pytest.raises(PiamiError):
            random_feature_spectrum(*args)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("lam", "v", "n", "kw"),
    [
        ([1.0, -0.1], [1.0, 1.0], 5, {}),
        ([1.0, 0.5], [1.0], 5, {}),
        ([[1.0, 0.5]], [[1.0, 1.0]], 5, {}),
        ([], [], 5, {}),
        ([0.0, 0.0], [1.0, 1.0], 5, {}),
        ([1.0, np.nan], [1.0, 1.0], 5, {}),
        ([1.0, 0.5], [1.0, np.inf], 5, {}),
        ([1.0, 0.5], [1.0, 1.0], 0, {}),
        ([1.0, 0.5], [1.0, 1.0], [5, -3], {}),
        ([1.0, 0.5], [1.0, 1.0], 0.5, {}),
        ([1.0, 0.5], [1.0, 1.0], np.nan, {}),
        ([1.0, 0.5], [1.0, 1.0], 5, {"ridge": -1e-3}),
        ([1.0, 0.5], [1.0, 1.0], 5, {"ridge": np.nan}),
        ([1.0, 0.5], [1.0, 1.0], 5, {"ridge": True}),
        ([1.0, 0.5], [1.0, 1.0], 5, {"noise": -1.0}),
        ([1.0, 0.5], [1.0, 1.0], 5, {"noise": "a"}),
    ],
)
def test_bad_input_raises_piami_error(lam, v, n, kw):
    with pytest.raises(PiamiError):
        kernel_learning_curve(lam, v, n, **kw)


@pytest.mark.parametrize(
    "args", [(0, 2.0, 3.0), (10, 1.0, 3.0), (10, 2.0, 0.5), (10, np.nan, 2.0), (2.5, 2.0, 2.0)]
)
def test_power_law_spectrum_bad_input(args):
    with pytest.raises(PiamiError):
        power_law_spectrum(*args)


@pytest.mark.parametrize("ab", [(1.0, 3.0), (2.0, 0.5), (np.nan, 2.0), (2.0, np.inf), ("2", 3.0)])
def test_asymptotic_exponent_bad_input(ab):
    with pytest.raises(PiamiError):
        asymptotic_exponent(*ab)


def test_curve_is_frozen():
    c = kernel_learning_curve([1.0], [1.0], 3.0)
    assert isinstance(c, KernelCurve)
    with pytest.raises(AttributeError):
        c.kappa = np.zeros(1)  # type: ignore[misc]
