"""power-law-curves: the quick run passes, shuffled labels fail it, compare() decides synthetic
curves as it should, the ridge solver is the textbook one, and bad configs are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment
from piami.experiments.power_law_curves.compare import compare, deviation_ratio
from piami.experiments.power_law_curves.config import Config
from piami.experiments.power_law_curves.measure import (
    Curve,
    CurveMeasurements,
    _slope,
    ridge_test_mse,
)
from piami.theory import asymptotic_exponent, kernel_learning_curve, power_law_spectrum

NAME = "power-law-curves"


# --------------------------------------------------------------------------- whole runs


@pytest.mark.slow
def test_quick_variant_passes():
    r = run_experiment(NAME, quick=True, progress=False)
    assert r.verdict == "pass", r.summary()
    kinds = {c.kind for c in r.comparisons}
    assert {"prediction", "control", "sanity"} <= kinds
    exps = [c for c in r.comparisons if c.name.endswith("fitted exponent against -min(b-1, 2a)")]
    assert len(exps) == len(get_experiment(NAME).make_config(quick=True).pairs)
    for c in exps:  # the bar, decided (not merely "not identified")
        assert c.passed is True and abs(c.measured - c.predicted) <= 0.05
    assert {f.name for f in r.figures} == {"kernel_curves", "finite_feature_trap"}


@pytest.mark.slow
def test_shuffled_labels_fail_the_run_but_not_the_controls():
    r = run_experiment(NAME, {"shuffle_labels": True, "n_seeds": 10}, quick=True, progress=False)
    assert r.verdict == "fail", r.summary()
    failed = {c.name for c in r.comparisons if c.counted and c.passed is False}
    cfg = get_experiment(NAME).make_config(quick=True)
    for a, b in cfg.pairs:
        assert (
            f"kernel a={a:g} b={b:g}: test MSE against theory, largest deviation / allowance"
            in (failed)
        ), r.summary()
    assert "random features: test MSE against theory, largest deviation / allowance" in failed
    assert not any(c.kind == "control" and c.passed is False for c in r.comparisons), r.summary()


# --------------------------------------------------------------------------- compare on synthetic


def _synthetic(a: float, b: float, *, scale: float = 1.0, spread: float = 0.05, seeds: int = 40):
    """A kernel curve whose seeds scatter by ``spread`` (log) around ``scale`` x theory."""
    lam, v = power_law_spectrum(8192, a, b)
    ns = 2.0 ** np.arange(5, 10)
    th = kernel_learning_curve(lam, v, ns).test_mse
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((ns.size, seeds))
    noise -= noise.mean(axis=1, keepdims=True)  # the mean sits on scale x theory
    test = scale * th[:, None] * np.exp(spread * noise - spread**2 / 2)
    c = Curve(
        name=f"kernel a={a:g} b={b:g}",
        role="kernel",
        a=a,
        b=b,
        n_modes=8192,
        n=ns,
        test=test,
        theory=th,
        control=kernel_learning_curve(*power_law_spectrum(8192, a + 0.5, b), ns).test_mse,
        control_name="wrong",
        fit=np.ones(ns.size, dtype=bool),
    )
    _slope(c, np.random.default_rng(1))
    return c


def _rows(curve, **cfg_kw):
    return {
        r.name.split(": ", 1)[1]: r
        for r in compare(Config(**cfg_kw), CurveMeasurements(curves=[curve]))
    }


def test_compare_passes_a_curve_on_the_theory_and_rejects_the_wrong_one():
    rows = _rows(_synthetic(2.0, 3.0))
    assert rows["test MSE against theory, largest deviation / allowance"].passed is True
    assert rows["wrong rejected by the same test"].passed is True
    assert rows["fitted exponent against -min(b-1, 2a)"].passed is True
    assert rows["the other regime's exponent missed"].passed is True


def test_compare_fails_a_curve_off_the_theory():
    """20% above the theory at every n: log 1.2 = 0.18 > 3 se + 2/32 -> the pointwise row fails;
    the slope is unchanged (a constant factor), so the exponent row still passes."""
    rows = _rows(_synthetic(2.0, 3.0, scale=1.2))
    assert rows["test MSE against theory, largest deviation / allowance"].passed is False
    assert rows["fitted exponent against -min(b-1, 2a)"].passed is True


def test_compare_fails_a_wrong_exponent_and_cannot_decide_a_noisy_one():
    c = _synthetic(1.5, 2.0)
    c.test = c.test * (c.n[:, None] / c.n[0]) ** -0.2  # slope steeper by 0.2
    _slope(c, np.random.default_rng(2))
    assert _rows(c)["fitted exponent against -min(b-1, 2a)"].passed is False
    noisy = _synthetic(1.5, 2.0, spread=2.0, seeds=5)  # a 95% interval far wider than 0.2
    row = _rows(noisy)["fitted exponent against -min(b-1, 2a)"]
    assert row.passed is None and "wider" in row.not_identified


def test_compare_not_identified_on_nan():
    c = _synthetic(2.0, 3.0)
    c.test[0, 0] = np.nan
    _slope(c, np.random.default_rng(3))
    rows = _rows(c)
    assert rows["test MSE against theory, largest deviation / allowance"].passed is None
    assert rows["fitted exponent against -min(b-1, 2a)"].passed is None


def test_deviation_ratio_closed_form():
    c = _synthetic(2.0, 3.0, spread=0.0, seeds=4)  # no scatter: se = 0, ratio = |log r| n / c
    ratio, worst = deviation_ratio(c, c.theory * 1.1, 2.0 / c.n)
    assert worst == 512 and ratio == pytest.approx(math.log(1.1) * 512 / 2.0, rel=1e-9)


# --------------------------------------------------------------------------- the solver


def test_ridge_test_mse_kernel_and_primal_forms_agree_with_lstsq():
    rng = np.random.default_rng(4)
    lam, v = power_law_spectrum(30, 1.5, 2.0)
    sd = np.sqrt(lam)
    for n in (12, 30, 45):  # kernel path, boundary, normal equations
        z = rng.standard_normal((n, 30))
        y = z @ v + 0.1 * rng.standard_normal(n)
        x = z * sd
        w = np.linalg.solve(x.T @ x + 0.3 * np.eye(30), x.T @ y)  # textbook ridge
        assert ridge_test_mse(z, sd, v, y, 0.3) == pytest.approx(np.sum((sd * w - v) ** 2))
    z = rng.standard_normal((50, 30))  # ridgeless, noiseless, n > M: exact recovery
    assert ridge_test_mse(z, sd, v, z @ v, 0.0) < 1e-20


def test_exponent_regimes_of_the_default_pairs():
    """The defaults cover both regimes of min(b - 1, 2a), as the issue asks."""
    pairs = Config().pairs
    assert len(pairs) >= 3
    assert any(b - 1 < 2 * a for a, b in pairs) and any(b - 1 > 2 * a for a, b in pairs)
    assert [asymptotic_exponent(a, b) for a, b in pairs] == [1.0, 2.0, 3.0]


# --------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "bad",
    [
        {"pairs": ()},
        {"pairs": ((1.0, 2.0),)},
        {"pairs": ((1.5,),)},
        {"n_modes": 1000},
        {"n_min": 4},
        {"n_modes": 1024, "n_features": 128, "n_max": 256},  # 1024/16 < 4 x 32
        {"n_features": 128},  # < 8 n_min
        {"n_max": 512},  # < 2 N
        {"n_features": 8192},  # not fewer than the latents
        {"n_seeds": 2},
        {"rf_ridge": 0.0},
        {"exponent_bar": 0.0},
        {"spectrum_shift": -0.5},
    ],
)
def test_bad_configs_raise(bad):
    with pytest.raises(PiamiError):
        get_experiment(NAME).make_config(bad)
