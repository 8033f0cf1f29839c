"""Correlation operator and conditional entropies against brute force and known processes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiValueError
from piami.instruments import statistics as stats_mod
from piami.instruments.entropy import (
    _fixed_beta_moments,
    conditional_entropies,
    count_values,
    entropy_miller_madow,
    entropy_nsb,
    entropy_plugin,
    ngram_codes,
)
from piami.instruments.statistics import (
    frobenius_floor,
    lagged_correlation,
    lagged_correlations,
    pair_counts,
)


def markov_chain(T, n, rng):
    """A stationary Markov chain of length n with transition matrix T."""
    cum = np.cumsum(T, axis=1)
    x = np.empty(n, dtype=np.int64)
    x[0] = 0
    u = rng.random(n)
    for t in range(1, n):
        x[t] = np.searchsorted(cum[x[t - 1]], u[t], side="right")
    return x


T3 = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.25, 0.25, 0.5]])


def stationary(T):
    w, v = np.linalg.eig(T.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def test_pair_counts_match_dictionary_counting():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 37, 5000), rng.integers(0, 37, 5000)
    dense = pair_counts(x, y, 37).toarray()
    for (a, b), c in Counter(zip(x.tolist(), y.tolist(), strict=True)).items():
        assert dense[a, b] == c
    assert dense.sum() == 5000


def test_markov_correlation_matches_closed_form():
    """C(n)_ab = pi_a (T^n_ab - pi_b) for a stationary chain; error is noise-sized."""
    rng = np.random.default_rng(1)
    x = markov_chain(T3, 200_000, rng)
    pi = stationary(T3)
    for n in (1, 2, 5):
        exact = pi[:, None] * (np.linalg.matrix_power(T3, n) - pi[None, :])
        est = lagged_correlation(x, n)
        # pairs of a Markov chain are dependent: allow 5x the i.i.d. floor
        assert np.linalg.norm(est - exact) < 5 * frobenius_floor(pi, pi, x.size)
    prof = lagged_correlations(x, [1, 2, 4, 8, 16], rng=np.random.default_rng(2))
    # geometric decay with the second eigenvalue of T: ||C(n)|| ~ |lambda_2|^n
    lam2 = sorted(np.abs(np.linalg.eigvals(T3)))[-2]
    ok = prof.above_floor(5)
    slope = np.polyfit(prof.lags[ok], np.log(prof.top_sv[ok]), 1)[0]
    assert slope == pytest.approx(np.log(lam2), rel=0.15)


def test_shuffle_floor_matches_closed_form_on_iid_tokens():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(20, 20.0))  # near uniform: ~400 effective entries
    x = rng.choice(20, size=100_000, p=p)
    prof = lagged_correlations(x, [1, 2, 3, 5, 8], rng=rng, n_floor_lags=None)
    predicted = frobenius_floor(p, p, x.size)
    # ~400 entries: the Frobenius norm of the noise has a relative spread of a few percent
    np.testing.assert_allclose(prof.floor_frobenius, predicted, rtol=0.15)
    np.testing.assert_allclose(prof.frobenius, predicted, rtol=0.15)
    assert not prof.above_floor(3).any()
    split = lagged_correlations(x, [1, 2], rng=rng, floor="split")
    np.testing.assert_allclose(split.floor_frobenius, predicted, rtol=0.2)


def test_sparse_svd_path_matches_dense(monkeypatch):
    rng = np.random.default_rng(4)
    x = markov_chain(T3, 20_000, rng) * 7 + rng.integers(0, 7, 20_000)  # V = 21 structured
    dense = lagged_correlations(x, [1, 3], rng=np.random.default_rng(0), floor="split")
    monkeypatch.setattr(stats_mod, "DENSE_SVD_MAX_V", 2)
    sparse = lagged_correlations(x, [1, 3], rng=np.random.default_rng(0), floor="split")
    np.testing.assert_allclose(sparse.top_sv, dense.top_sv, rtol=1e-6)
    np.testing.assert_allclose(sparse.frobenius, dense.frobenius, rtol=1e-9)
    np.testing.assert_allclose(sparse.floor_frobenius, dense.floor_frobenius, rtol=1e-9)


@pytest.mark.parametrize(
    "bad",
    [np.array([0.5, 1.5]), np.array([-1, 2]), np.zeros((2, 2, 2), int), np.array([], int), "abc"],
)
def test_bad_tokens_raise(bad):
    with pytest.raises(PiamiError):
        lagged_correlations(bad, [1])
    with pytest.raises(PiamiError):
        conditional_entropies(bad, 1)


def test_bad_lags_raise():
    x = np.arange(10) % 3
    for lags in ([0], [10], [1.5]):
        with pytest.raises(PiamiValueError):
            lagged_correlations(x, lags)
    with pytest.raises(PiamiValueError):
        lagged_correlations(x, [1], anchor="last")  # needs 2-D
    with pytest.raises(PiamiValueError):
        lagged_correlations(x, [1], floor="magic")


# ------------------------------------------------------------------------------ entropies
def test_plugin_and_miller_madow_known_values():
    assert entropy_plugin([5, 5]) == pytest.approx(np.log(2))
    assert entropy_miller_madow([5, 5]) == pytest.approx(np.log(2) + 1 / 20)
    assert entropy_plugin([7, 0, 0]) == 0.0


def test_nsb_fixed_beta_moments_match_dirichlet_monte_carlo():
    """Posterior mean and variance of S under Dir(n + beta): closed form vs 200,000 draws."""
    c = np.array([5, 3, 0, 0, 1, 7, 0, 2.0])
    rng = np.random.default_rng(0)
    for beta in (0.1, 1.3):
        vals, mult = np.unique(c[c > 0], return_counts=True)
        m, v = _fixed_beta_moments(vals, mult.astype(float), 3.0, beta, c.sum(), beta * 8)
        draws = rng.dirichlet(c + beta, size=200_000)
        s = -(draws * np.log(draws)).sum(1)
        assert m == pytest.approx(s.mean(), abs=4 * s.std() / np.sqrt(s.size))
        assert v == pytest.approx(s.var(), rel=0.02)


def test_nsb_beats_plugin_when_undersampled():
    rng = np.random.default_rng(5)
    errs = []
    for _ in range(5):
        p = rng.dirichlet(np.full(1000, 0.1))
        counts = np.bincount(rng.choice(1000, 300, p=p), minlength=1000)
        h = -(p[p > 0] @ np.log(p[p > 0]))
        mean, std = entropy_nsb(counts, 1000)
        errs.append((abs(mean - h), abs(entropy_plugin(counts) - h), std))
    errs = np.array(errs)
    assert errs[:, 0].mean() < 0.5 * errs[:, 1].mean()
    assert np.all(errs[:, 2] > 0)


def test_ngram_hash_path_counts_like_tuples():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 8192, 20_000)  # 13 bits: 5-grams need the hash
    x[5000:5100] = x[:100]  # plant repeats
    for n in (2, 5):
        got = np.sort(count_values(ngram_codes(x, n, 8192)))
        ref = np.sort(list(Counter(tuple(x[i : i + n]) for i in range(x.size - n + 1)).values()))
        np.testing.assert_array_equal(got, ref)


def test_conditional_entropies_of_markov_chain():
    """H_0 = H(pi); H_n = entropy rate for n >= 1 (first-order chain)."""
    x = markov_chain(T3, 200_000, np.random.default_rng(7))
    pi = stationary(T3)
    rate = -np.sum(pi[:, None] * T3 * np.log(T3))
    prof = conditional_entropies(x, 4)
    assert prof.nsb[0] == pytest.approx(-(pi @ np.log(pi)), abs=0.01)
    np.testing.assert_allclose(prof.miller_madow[1:], rate, atol=0.01)
    np.testing.assert_allclose(prof.nsb[1:], rate, atol=0.01)
    assert not prof.sparse.any()
    sparse = conditional_entropies(np.random.default_rng(8).integers(0, 50, 3000), 3)
    assert sparse.sparse[2:].all() and not sparse.sparse[0]
