"""Random Hierarchy Model: rules, sampling, exact joints vs enumeration and vs sampling, beta."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiTypeError, PiamiValueError
from piami.instruments.scaling import PowerLawFit
from piami.instruments.statistics import frobenius_floor, lagged_correlation
from piami.processes.rhm import RandomHierarchyModel


def make(v=3, n_classes=2, m=2, s=2, L=2, seed=0):
    return RandomHierarchyModel(v, n_classes, m, s, L, rng=np.random.default_rng(seed))


def enumerate_data(rhm):
    """Every datum (leaves) with its probability, by expanding all derivations."""
    out = {}
    for c in range(rhm.n_classes):
        frontier = [((c,), 1.0 / rhm.n_classes)]
        for rules in rhm.rules:
            new = []
            for nodes, p in frontier:
                for choice in itertools.product(range(rhm.m), repeat=len(nodes)):
                    kids = tuple(
                        int(x) for a, r in zip(nodes, choice, strict=True) for x in rules[a, r]
                    )
                    new.append((kids, p / rhm.m ** len(nodes)))
            frontier = new
        for leaves, p in frontier:
            out[leaves] = out.get(leaves, 0.0) + p
    return out


def test_rules_are_unambiguous_and_distinct():
    rhm = make(v=4, n_classes=3, m=3, s=2, L=3)
    for level, rules in enumerate(rhm.rules):
        tuples = [tuple(t) for t in rules.reshape(-1, rhm.s)]
        assert len(set(tuples)) == len(tuples)  # no tuple belongs to two symbols or twice to one
        assert rules.shape == ((3 if level == 0 else 4), 3, 2)
        assert rules.min() >= 0 and rules.max() < 4


def test_p_max_matches_enumeration_and_probabilities_uniform():
    rhm = make()
    data = enumerate_data(rhm)
    assert len(data) == rhm.p_max == 2 * 2**3
    assert all(math.isclose(p, 1 / rhm.p_max) for p in data.values())
    assert rhm.p_star == 2 * 2**2
    assert math.isclose(rhm.beta, 1.0)


def test_pair_joint_and_marginals_match_enumeration():
    rhm = make(v=3, n_classes=2, m=2, s=2, L=3, seed=1)
    data = enumerate_data(rhm)
    d = rhm.seq_len
    for i, j in [(0, 1), (0, 7), (2, 5), (3, 4), (6, 7)]:
        brute = np.zeros((3, 3))
        for leaves, p in data.items():
            brute[leaves[i], leaves[j]] += p
        np.testing.assert_allclose(rhm.pair_joint(i, j), brute, atol=1e-12)
    marg = np.zeros((d, 3))
    for leaves, p in data.items():
        marg[np.arange(d), leaves] += p
    np.testing.assert_allclose(rhm.all_leaf_marginals, marg, atol=1e-12)


def test_sampling_is_seeded_and_lm_prepends_the_class():
    rhm = make(v=5, n_classes=3, m=2, s=2, L=3)
    a = rhm.sample(50, rng=np.random.default_rng(3))
    b = rhm.sample(50, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 8) and a.dtype == np.int64
    lm = rhm.sample_lm(40, rng=np.random.default_rng(4))
    assert lm.shape == (40, 9) and lm[:, 0].min() >= 5 and lm[:, 1:].max() < 5
    _, classes = rhm.sample_labeled(40, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(lm[:, 0] - 5, classes)


@pytest.mark.parametrize("anchor", [None, "last"])
def test_exact_and_sampled_correlations_agree_within_noise_floor(anchor):
    """||C_hat - C_exact||_F is noise-sized: its ratio to the split-sample noise level is ~1.

    The noise level comes from two independent samples, ||C_1 - C_2||_F / sqrt(2) (same
    estimator, so it includes the correlation of pairs inside one tree); for 64 entries the ratio
    fluctuates by ~15%, so [0.6, 1.5] is a ~3-sigma band. The signal at lag 1 is far above it.
    """
    rhm = make(v=8, n_classes=8, m=2, s=2, L=5, seed=2)
    x1 = rhm.sample(10_000, rng=np.random.default_rng(5))
    x2 = rhm.sample(10_000, rng=np.random.default_rng(6))
    exact_anchor = "pooled" if anchor is None else "last"
    for lag in (1, 3, 8):
        exact = rhm.exact_correlation(lag, anchor=exact_anchor)
        c1 = lagged_correlation(x1, lag, n_vocab=8, anchor=anchor)
        c2 = lagged_correlation(x2, lag, n_vocab=8, anchor=anchor)
        noise = np.linalg.norm(c1 - c2) / np.sqrt(2)
        ratio = np.linalg.norm(c1 - exact) / noise
        assert 0.6 < ratio < 1.5, (lag, ratio)
        if anchor == "last":  # independent pairs: the closed-form floor holds too
            n = x1.shape[0]
            p = np.bincount(x1[:, -1 - lag], minlength=8) / n
            q = np.bincount(x1[:, -1], minlength=8) / n
            floor = frobenius_floor(p, q, n)
            assert 0.6 < noise / floor < 1.5
    assert np.linalg.norm(rhm.exact_correlation(1, anchor=exact_anchor)) > 10 * noise


def test_beta_from_exact_correlations_within_ten_percent():
    """Frobenius norm at one lag per level, v = n_c = 64, m = 3, s = 2, L = 6: beta = ln3/ln2."""
    for seed in range(3):
        rhm = make(v=64, n_classes=64, m=3, s=2, L=6, seed=seed)
        lags = rhm.level_lags()
        norms = [np.linalg.norm(rhm.exact_correlation(n, anchor="last")) for n in lags]
        fit = PowerLawFit(offset=False, n_boot=0).fit(lags, norms)
        assert abs(fit.alpha_ / rhm.beta - 1) < 0.10, (seed, fit.alpha_)


def test_bad_parameters_raise():
    with pytest.raises(PiamiValueError, match="m <= v"):
        make(v=2, m=3, s=2)
    with pytest.raises(PiamiValueError, match="n_classes"):
        make(v=2, n_classes=3, m=2, s=2)
    with pytest.raises(PiamiTypeError):
        RandomHierarchyModel(2.5, 2, 2, 2, 2, rng=np.random.default_rng(0))
    with pytest.raises(PiamiTypeError):
        RandomHierarchyModel(3, 2, 2, 2, 2, rng=0)
    rhm = make()
    for bad in (
        lambda: rhm.pair_joint(0, 9),
        lambda: rhm.exact_correlation(0),
        lambda: rhm.exact_correlation(1, anchor="x"),
        lambda: rhm.sample(0, rng=np.random.default_rng()),
        lambda: rhm.sample(3, 5, rng=np.random.default_rng()),
    ):
        with pytest.raises(PiamiError):
            bad()
