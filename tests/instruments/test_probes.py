"""LinearProbe against known answers and an independent implementation (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from piami.errors import PiamiError, PiamiShapeError, PiamiValueError
from piami.instruments.probes import LinearProbe, r2_scores


def data(n=500, d=6, k=3, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    b = rng.normal(size=k)
    return X, X @ W + b + noise * rng.normal(size=(n, k)), W, b


def test_recovers_an_exact_affine_map():
    X, Y, W, b = data(noise=0.0)
    probe = LinearProbe().fit(X, Y)
    np.testing.assert_allclose(probe.coef_, W.T, atol=1e-10)
    np.testing.assert_allclose(probe.intercept_, b, atol=1e-10)
    assert probe.score(X, Y) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(probe.score_per_coordinate(X, Y), 1.0, atol=1e-12)


def test_agrees_with_scikit_learn_weighted_and_unweighted():
    X, Y, _, _ = data()
    w = np.random.default_rng(1).uniform(0.1, 3.0, size=len(X))
    for sw in (None, w):
        ours = LinearProbe().fit(X, Y, sample_weight=sw)
        ref = LinearRegression().fit(X, Y, sample_weight=sw)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-10)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-10)
        Xt, Yt, _, _ = data(seed=2)
        for mo in ("variance_weighted", "uniform_average"):
            np.testing.assert_allclose(
                ours.score(Xt, Yt, multioutput=mo),
                r2_score(Yt, ref.predict(Xt), multioutput=mo),
                atol=1e-12,
            )
        np.testing.assert_allclose(
            ours.score_per_coordinate(Xt, Yt),
            r2_score(Yt, ref.predict(Xt), multioutput="raw_values"),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            ours.score(Xt, Yt, sample_weight=w),
            r2_score(Yt, ref.predict(Xt), sample_weight=w, multioutput="variance_weighted"),
            atol=1e-12,
        )


def test_integer_weights_equal_repeated_rows():
    X, Y, _, _ = data(n=60)
    reps = np.random.default_rng(3).integers(1, 4, size=60)
    a = LinearProbe().fit(X, Y, sample_weight=reps)
    b = LinearProbe().fit(np.repeat(X, reps, 0), np.repeat(Y, reps, 0))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-10)


def test_r2_matches_the_signal_to_noise_ratio():
    """R^2 = var(signal) / (var(signal) + sigma^2) for Y = x . w + noise (Monte Carlo)."""
    rng = np.random.default_rng(4)
    n, sigma = 200_000, 0.5
    X = rng.normal(size=(n, 2))
    w = np.array([1.0, 0.5])
    Y = X @ w + sigma * rng.normal(size=n)
    predicted = 1.25 / (1.25 + 0.25)
    # SE of the R^2 estimate ~ 2 (1 - R^2) sqrt(R^2 / n) ~ 7e-4; 0.005 leaves 7 SE
    probe = LinearProbe().fit(X, Y)
    assert probe.score(X, Y) == pytest.approx(predicted, abs=0.005)
    assert probe.predict(X).shape == (n,)  # a 1-D target gives 1-D predictions


def test_rank_deficient_design_gives_the_least_squares_fit():
    X, Y, _, _ = data()
    X = np.hstack([X, X[:, :2] * 2.0, np.ones((len(X), 1))])  # duplicated and constant columns
    probe = LinearProbe().fit(X, Y)
    A = np.hstack([X, np.ones((len(X), 1))])
    ref = A @ np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(probe.predict(X), ref, atol=1e-9)


def test_torch_inputs_ridge_and_no_intercept():
    X, Y, _, _ = data(noise=0.0)
    p = LinearProbe().fit(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y))
    assert p.score(X, Y) > 0.999999
    ridge = LinearProbe(alpha=1e6).fit(X, Y)
    assert np.abs(ridge.coef_).max() < 1e-2  # a huge penalty shrinks W to ~0
    no_b = LinearProbe(fit_intercept=False).fit(X, Y)
    np.testing.assert_allclose(no_b.intercept_, 0.0)
    assert p.get_params() == {"fit_intercept": True, "alpha": 0.0}
    assert p.set_params(alpha=1.0).alpha == 1.0


def test_constant_target_coordinate_follows_scikit_learn():
    _, Y, _, _ = data(noise=0.0)
    Y[:, 1] = 2.0
    overall, per = r2_scores(Y, Y)
    assert per[1] == 1.0 and overall == 1.0
    Y_hat = Y + 0.1
    _, per = r2_scores(Y, Y_hat)
    np.testing.assert_allclose(per, r2_score(Y, Y_hat, multioutput="raw_values"))


def test_bad_input_raises():
    X, Y, _, _ = data()
    with pytest.raises(PiamiValueError, match="not fitted"):
        LinearProbe().predict(X)
    with pytest.raises(PiamiShapeError):
        LinearProbe().fit(X, Y[:-1])
    with pytest.raises(PiamiShapeError):
        LinearProbe().fit(X[None], Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(PiamiValueError, match="NaN"):
        LinearProbe().fit(bad, Y)
    with pytest.raises(PiamiValueError):
        LinearProbe().fit(X, Y, sample_weight=-np.ones(len(X)))
    with pytest.raises(PiamiShapeError):
        LinearProbe().fit(X, Y).predict(X[:, :2])
    with pytest.raises(PiamiValueError):
        LinearProbe(alpha=-1).fit(X, Y)
    with pytest.raises(PiamiValueError, match="multioutput"):
        LinearProbe().fit(X, Y).score(X, Y, multioutput="mean")
    with pytest.raises(PiamiValueError, match="score_per_coordinate"):
        LinearProbe().fit(X, Y).score(X, Y, multioutput="raw_values")
    with pytest.raises(PiamiShapeError, match="Reshape"):
        LinearProbe().fit(X[:, 0], Y)  # one feature must be a column, as in scikit-learn
    with pytest.raises(PiamiError):
        LinearProbe().fit("abc", Y)


@settings(max_examples=25, deadline=None)
@given(
    shape_x=st.tuples(st.integers(0, 4), st.integers(0, 3)),
    n_y=st.integers(0, 4),
)
def test_mismatched_shapes_raise_or_fit(shape_x, n_y):
    X = np.ones(shape_x)
    Y = np.ones((n_y, 2))
    if shape_x[0] == n_y and n_y > 0 and shape_x[1] > 0:
        LinearProbe().fit(X, Y)
    else:
        with pytest.raises(PiamiError):
            LinearProbe().fit(X, Y)
