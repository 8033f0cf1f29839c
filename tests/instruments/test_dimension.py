"""Intrinsic-dimension estimators on manifolds of known dimension."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.instruments.dimension import (
    box_counting_dimension,
    correlation_dimension,
    h0_persistence,
    has_ripser,
    mle_dimension,
    persistence_diagrams,
    twonn_dimension,
)


def sphere(n, d, rng):
    z = rng.normal(size=(n, d + 1))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def torus(n, d, rng):
    th = rng.uniform(0, 2 * np.pi, size=(n, d))
    return np.concatenate([np.cos(th), np.sin(th)], axis=1)


def noisy_subspace(n, d, rng, ambient=30, noise=1e-4):
    q, _ = np.linalg.qr(rng.normal(size=(ambient, d)))
    return rng.normal(size=(n, d)) @ q.T + noise * rng.normal(size=(n, ambient))


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_twonn_within_5_percent_on_spheres_at_2000_points(d):
    # the MLE's relative standard error is 1/sqrt(n) = 2.2% at n = 2000, so 5% is a ~2-sigma bar
    est = twonn_dimension(sphere(2000, d, np.random.default_rng(d)))
    assert abs(est.dimension / d - 1) < 0.05
    assert est.low < est.dimension < est.high


@pytest.mark.parametrize("maker", [torus, noisy_subspace])
@pytest.mark.parametrize("d", [2, 4])
def test_twonn_and_mle_on_tori_and_subspaces(maker, d):
    X = maker(2000, d, np.random.default_rng(10 + d))
    assert abs(twonn_dimension(X).dimension / d - 1) < 0.08
    assert abs(twonn_dimension(X, method="fit").dimension / d - 1) < 0.08
    assert abs(mle_dimension(X, k=20).dimension / d - 1) < 0.08


def test_twonn_interval_covers_truth_at_nominal_rate():
    # On exactly Pareto-distributed ratios (a d-dim Poisson process at small scale) the exact
    # Gamma interval should cover d about 95% of the time: check 40 draws, allow 33..40 hits.
    hits = 0
    for s in range(40):
        est = twonn_dimension(noisy_subspace(400, 3, np.random.default_rng(100 + s), noise=0.0))
        hits += est.low <= 3 <= est.high
    assert hits >= 33


def test_box_and_correlation_on_filled_square_and_line():
    rng = np.random.default_rng(0)
    square = rng.uniform(size=(20000, 2))
    assert abs(box_counting_dimension(square).dimension - 2) < 0.1
    assert abs(correlation_dimension(square).dimension - 2) < 0.1
    t = rng.uniform(size=5000)
    line = np.stack([t, 2 * t, -t], axis=1)
    assert abs(box_counting_dimension(line).dimension - 1) < 0.05
    assert abs(correlation_dimension(line).dimension - 1) < 0.05


def test_h0_persistence_equals_mst_of_collinear_points():
    X = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert np.allclose(h0_persistence(X), [1.0, 2.0, 3.0])


def test_persistence_diagrams_noisy_circle_or_clean_skip():
    rng = np.random.default_rng(0)
    th = rng.uniform(0, 2 * np.pi, 200)
    X = np.stack([np.cos(th), np.sin(th)], 1) + 0.05 * rng.normal(size=(200, 2))
    if not has_ripser():
        with pytest.raises(PiamiError, match="ripser"):
            persistence_diagrams(X)
        pytest.skip("ripser (optional extra 'topology') is not installed")
    h1 = persistence_diagrams(X, maxdim=1)[1]
    life = np.sort(h1[:, 1] - h1[:, 0])[::-1]
    assert life[0] > 0.5 and life[1] < 0.2 * life[0]


@pytest.mark.parametrize(
    "fn", [twonn_dimension, mle_dimension, box_counting_dimension, correlation_dimension]
)
@pytest.mark.parametrize(
    "bad", [np.ones((1, 2)), np.full((10, 2), np.nan), "abc", np.ones((3, 2, 2)), np.ones((50, 2))]
)
def test_bad_input_raises_piami_error(fn, bad):
    with pytest.raises(PiamiError):
        fn(bad)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=40),
    st.integers(1, 4),
)
def test_fuzz_estimators_only_raise_piami_errors(values, width):
    X = np.array(values[: len(values) // width * width], dtype=float).reshape(-1, width)
    for fn in (twonn_dimension, mle_dimension, h0_persistence):
        try:
            fn(X)
        except PiamiError:
            pass
