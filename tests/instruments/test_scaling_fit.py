"""Power-law fits: recovery of known parameters, interval coverage, beta and gamma fits."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiTypeError, PiamiValueError
from piami.instruments.entropy import EntropyProfile
from piami.instruments.exponents import (
    calibrate_beta_on_rhm,
    fit_beta,
    fit_gamma,
    fit_gamma_from_losses,
    predict_alpha_d,
    resolvable_lag,
)
from piami.instruments.scaling import PowerLawFit
from piami.instruments.statistics import CorrelationProfile


def test_exact_recovery_with_and_without_offset():
    x = np.geomspace(10, 1e6, 7)
    fit = PowerLawFit(n_boot=20).fit(x, 1.3 + 4.0 * x**-0.35)
    assert (fit.E_, fit.A_, fit.alpha_) == pytest.approx((1.3, 4.0, 0.35), rel=1e-6)
    fit = PowerLawFit(offset=False, n_boot=20).fit(x, 2.0 * x**-1.4)
    assert (fit.A_, fit.alpha_) == pytest.approx((2.0, 1.4), rel=1e-9)
    assert fit.predict(10.0) == pytest.approx(2.0 * 10**-1.4)


def test_parametric_bootstrap_covers_truth():
    """95% intervals from noisy data cover the true exponent in most of 12 repeats."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e6, 8)
    sigma = 0.01
    hits = 0
    for _ in range(12):
        y = 2.0 + 30.0 * x**-0.3 + sigma * rng.standard_normal(x.size)
        fit = PowerLawFit(n_boot=60, loss="linear", random_state=rng).fit(x, y, sigma=sigma)
        lo, hi = fit.ci_["alpha"]
        hits += lo <= 0.3 <= hi
    assert hits >= 9  # binomial(12, 0.95): P(hits < 9) ~ 0.2%


def test_deprecated_rng_warns_and_gives_the_numbers_of_random_state():
    x = np.geomspace(1, 1e4, 8)
    y = 1.0 + 2.0 * x**-0.3 + 0.01 * np.random.default_rng(1).standard_normal(8)
    new = PowerLawFit(n_boot=20, random_state=np.random.default_rng(5)).fit(x, y)
    with pytest.warns(DeprecationWarning, match="random_state"):
        old = PowerLawFit(n_boot=20).fit(x, y, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(old.boot_, new.boot_)
    # the default random_state=0 is what rng=None meant before
    np.testing.assert_array_equal(
        PowerLawFit(n_boot=20).fit(x, y).boot_,
        PowerLawFit(n_boot=20, random_state=np.random.default_rng(0)).fit(x, y).boot_,
    )


def test_robust_loss_resists_one_outlier():
    x = np.geomspace(1, 1e4, 10)
    y = 3.0 * x**-0.8
    y[4] *= 5.0
    robust = PowerLawFit(offset=False, n_boot=0).fit(x, y)
    plain = PowerLawFit(offset=False, n_boot=0, loss="linear").fit(x, y)
    assert abs(robust.alpha_ - 0.8) < abs(plain.alpha_ - 0.8)
    assert robust.alpha_ == pytest.approx(0.8, abs=0.05)


def test_bounds_are_reported():
    x = np.arange(1.0, 8.0)
    fit = PowerLawFit(n_boot=0, offset_bounds=(0.0, 1.0)).fit(x, 1.0 + 0.0 * x + 1e-9 * x)
    assert fit.at_bound_  # a flat curve is no power law


@pytest.mark.parametrize(
    "x, y, kw",
    [
        ([1, 2, 3], [3, 2, 1], {}),
        ([1, 2, -3, 4], [4, 3, 2, 1], {}),
        ([1, 2, 3, 4], [4, 3, 2], {}),
        ([1, 2, 3, 4], [4, 3, 2, np.nan], {}),
        ([1, 2, 3], [1, -1, 1], {"offset": False}),
        ([1, 2, 3, 4], [4, 3, 2, 1], {"loss": "l3"}),
        ([1, 2, 3, 4], [4, 3, 2, 1], {"ci": 2.0}),
        ([1, 2, 3, 4], [4, 3, 2, 1], {"offset_bounds": (1.0, 0.0)}),
    ],
)
def test_bad_input_raises(x, y, kw):
    with pytest.raises(PiamiError):
        PowerLawFit(n_boot=0, **kw).fit(x, y)


def _corr_profile(beta, lags, floor=1e-4, amp=0.1):
    lags = np.asarray(lags)
    s = amp * lags.astype(float) ** -beta
    return CorrelationProfile(
        lags=lags,
        top_sv=s,
        frobenius=np.sqrt(s**2 + floor**2),
        floor_top_sv=np.full(lags.size, floor),
        floor_frobenius=np.full(lags.size, floor),
        n_pairs=np.full(lags.size, 10**6),
        n_vocab=10,
        floor_method="shuffle",
    )


def test_fit_beta_uses_lags_above_floor_and_debiases():
    prof = _corr_profile(1.2, [1, 2, 4, 8, 16, 32, 64, 128, 256])
    b = fit_beta(prof, rng=np.random.default_rng(0), n_boot=50)
    assert b.value == pytest.approx(1.2, rel=1e-6)
    assert b.x.max() < 256  # 0.1 * 256**-1.2 is below 3x the floor
    bf = fit_beta(prof, norm="frobenius", rng=np.random.default_rng(0), n_boot=50)
    assert bf.value == pytest.approx(1.2, rel=1e-6)  # floor removed in quadrature
    with pytest.raises(PiamiValueError, match="above"):
        fit_beta(_corr_profile(1.2, [64, 128, 256]))
    with pytest.raises(PiamiTypeError):
        fit_beta("profile")


def _ent_profile(h, sparse=None):
    h = np.asarray(h, float)
    n = np.arange(h.size)
    sp = np.zeros(h.size, bool) if sparse is None else np.asarray(sparse)
    return EntropyProfile(
        n=n,
        plugin=h,
        miller_madow=h,
        nsb=h,
        nsb_std=np.zeros_like(h),
        block_plugin=np.zeros(h.size + 1),
        unseen_mass=np.zeros_like(h),
        sparse=sp,
        n_samples=np.full(h.size, 1000),
        n_vocab=4,
    )


def test_fit_gamma_and_alpha_d():
    n = np.arange(0, 9, dtype=float)
    h = 1.1 + 0.9 * np.maximum(n, 1) ** -0.4
    h[0] = 3.0  # H_0 is outside the law and excluded
    g = fit_gamma(_ent_profile(h), rng=np.random.default_rng(0), n_boot=50)
    assert g.value == pytest.approx(0.4, rel=1e-5)
    assert g.offset == pytest.approx(1.1, rel=1e-5)
    b = fit_beta(_corr_profile(0.8, [1, 2, 4, 8, 16]), rng=np.random.default_rng(1), n_boot=50)
    a, (lo, hi) = predict_alpha_d(g, b)
    assert a == pytest.approx(0.4 / 1.6, rel=1e-5)
    assert lo <= a <= hi
    sparse = np.arange(9) >= 4
    with pytest.raises(PiamiValueError, match="trusted"):
        fit_gamma(_ent_profile(h, sparse))
    with pytest.raises(PiamiValueError):
        fit_gamma(_ent_profile(h), estimator="best")


def test_fit_gamma_from_losses_recovers_law_and_respects_n_max():
    """L_n = H_inf + A n^-gamma on n <= n_max; beyond n_max a plateau that must not be fitted."""
    n = np.arange(1, 33, dtype=float)
    loss = 1.2 + 1.5 * n**-0.45
    loss[n > 12] = loss[n == 12][0]  # the model resolves no more than 12 tokens
    g = fit_gamma_from_losses(n, loss, n_max=12, rng=np.random.default_rng(0), n_boot=30)
    assert (g.value, g.offset, g.amplitude) == pytest.approx((0.45, 1.2, 1.5), rel=1e-4)
    assert g.x.max() == 12 and not g.offset_at_bound
    flat = fit_gamma_from_losses(n, loss, rng=np.random.default_rng(0), n_boot=0)
    assert abs(flat.value - 0.45) > 0.05  # the plateau biases a fit over all n
    with pytest.raises(PiamiValueError, match="needs 4"):
        fit_gamma_from_losses(n, loss, n_max=3)
    with pytest.raises(PiamiValueError):
        fit_gamma_from_losses(n, loss[:-1])


def test_fit_gamma_from_losses_flags_h_inf_on_its_bound():
    """A loss that stops falling after a few tokens (an undertrained model) has H_inf = min L_n."""
    n = np.arange(1.0, 9.0)
    loss = np.array([3.0, 2.5, 2.42, 2.41, 2.40, 2.41, 2.42, 2.41])
    g = fit_gamma_from_losses(n, loss, rng=np.random.default_rng(0), n_boot=0)
    assert g.offset_at_bound and g.offset == pytest.approx(2.4)


def test_resolvable_lag_rescales_the_floor_to_p_tokens():
    """The floor falls as N^-1/2: fewer tokens resolve fewer lags, and n* stops at the first gap."""
    lags = np.array([1, 2, 4, 8, 16, 32])
    s = 0.1 * lags.astype(float) ** -1.0
    prof = CorrelationProfile(
        lags=lags,
        top_sv=s,
        frobenius=s,
        floor_top_sv=np.full(6, 1e-3),
        floor_frobenius=np.full(6, 1e-3),
        n_pairs=np.full(6, 10**6),
        n_vocab=4,
        floor_method="shuffle",
    )
    # 3 x floor = 3e-3 at 1e6 tokens: 0.1/n > 3e-3 up to n = 32 (3.1e-3)
    assert resolvable_lag(prof, 1e6) == 32
    # at 1e4 tokens the floor is 10x higher: 0.1/n > 3e-2 up to n = 2
    assert resolvable_lag(prof, 1e4) == 2
    assert resolvable_lag(prof, 1.0) == 0
    gap = CorrelationProfile(**{**vars(prof), "top_sv": np.where(lags == 4, 1e-6, s)})
    assert resolvable_lag(gap, 1e6) == 2  # the run above the floor ends at the first gap
    with pytest.raises(PiamiValueError):
        resolvable_lag(prof, 0)
    with pytest.raises(PiamiTypeError):
        resolvable_lag("profile", 1e6)


def test_calibrate_beta_on_rhm_matches_exact_correlations():
    """Sampled beta of an RHM within 10% of the slope of its exact correlations (same lags)."""
    from piami.processes.rhm import RandomHierarchyModel

    rhm = RandomHierarchyModel(v=16, n_classes=16, m=2, s=2, L=6, rng=np.random.default_rng(0))
    fit, exact = calibrate_beta_on_rhm(rhm, 20_000, n_boot=20, rng=np.random.default_rng(1))
    assert fit.x.size >= 3 and fit.x[0] == 1
    assert fit.value == pytest.approx(exact, rel=0.1)
