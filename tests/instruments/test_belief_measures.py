"""Belief read-outs (piami.instruments.beliefs) against closed forms and independent computations:
the k-token baseline equals a linear probe on the one-hot code, the bootstrap brackets the sample
R², a probe on shuffled targets scores nothing, KL and intervals match their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.instruments.beliefs import (
    Z95,
    bootstrap_r2,
    kl_rows,
    logprob_r2,
    mean_interval,
    next_token_kl,
    onehot_r2,
    percentile_interval,
    probe_r2_by_layer,
    shuffled_r2,
    window_ids,
    window_means,
)
from piami.instruments.probes import LinearProbe, r2_scores


def test_onehot_baseline_equals_a_linear_probe_on_the_one_hot_code():
    """The k-token baseline is computed as category means; check it against LinearProbe."""
    rng = np.random.default_rng(0)
    fit_in, test_in = rng.integers(0, 3, (400, 5)), rng.integers(0, 3, (300, 5))
    y_fit = rng.normal(size=(2000, 2)) + fit_in.reshape(-1, 1)
    y_test = rng.normal(size=(1500, 2)) + test_in.reshape(-1, 1)
    k = 2
    ids_fit, ids_test = window_ids(fit_in, k, 3), window_ids(test_in, k, 3)
    codes = np.unique(np.concatenate([ids_fit, ids_test]))

    def onehot(ids):
        return (ids[:, None] == codes[None, :]).astype(float)

    probe = LinearProbe().fit(onehot(ids_fit), y_fit)
    assert set(ids_test) <= set(ids_fit)  # every code seen in fitting: the two must agree
    assert onehot_r2(ids_fit, ids_test, y_fit, y_test) == pytest.approx(
        probe.score(onehot(ids_test), y_test), abs=1e-9
    )


def test_window_ids_encode_position_and_last_k_tokens():
    x = np.array([[0, 1, 2, 1], [2, 1, 2, 1]])
    ids = window_ids(x, 2, 3).reshape(2, 4)
    assert ids[0, 3] == ids[1, 3] and ids[0, 2] == ids[1, 2]
    assert ids[0, 1] != ids[1, 1]  # windows (0,1) and (2,1) differ
    assert len(set(window_ids(x, 1, 3))) == len({(t, v) for row in x for t, v in enumerate(row)})


def test_window_means_are_category_means_and_unseen_codes_get_the_overall_mean():
    ids_fit = np.array([5, 5, 7, 7, 7])
    y_fit = np.array([[1.0], [3.0], [0.0], [3.0], [6.0]])
    pred = window_means(ids_fit, np.array([7, 5, 6, 99]), y_fit)
    np.testing.assert_allclose(pred[:, 0], [3.0, 2.0, 2.6, 2.6])


def test_kl_rows_matches_the_definition_and_is_zero_on_equal_rows():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    kl = kl_rows(p, np.log(q))
    assert kl[0] == pytest.approx(np.log(2.0))  # zero-probability terms contribute nothing
    assert kl[1] == pytest.approx(0.0, abs=1e-15)
    assert kl_rows(p.reshape(1, 2, 3), np.log(q).reshape(1, 2, 3)).shape == (1, 2)


def test_next_token_kl_is_zero_when_the_window_determines_the_distribution():
    """When the next-token distribution is a function of the code, the window predictor is exact;
    when it is not, its KL is the mixing gap, here computed by hand."""
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    ids = np.array([0, 1, 0, 1])
    exact = p[[0, 1, 0, 1]]
    assert next_token_kl(ids, ids, exact, exact) == pytest.approx(0.0, abs=1e-12)
    one_code = np.zeros(4, dtype=int)  # the window sees nothing: q = the mean distribution
    q = exact.mean(axis=0)
    expected = np.mean(np.sum(exact * np.log(exact / q), axis=1))
    assert next_token_kl(one_code, one_code, exact, exact) == pytest.approx(expected)


def test_logprob_r2_is_one_when_beliefs_are_linear_in_the_log_probabilities():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 600, 3))
    p = [np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) for z in logits]
    W = rng.normal(size=(3, 2))
    y = [np.log(q) @ W + 0.5 for q in p]
    assert logprob_r2(p[0], p[1], y[0], y[1]) == pytest.approx(1.0, abs=1e-9)
    noise = [rng.normal(size=(600, 2)) for _ in range(2)]
    assert logprob_r2(p[0], p[1], noise[0], noise[1]) < 0.05


def test_probe_r2_by_layer_scores_each_layer_and_their_concatenation():
    rng = np.random.default_rng(4)
    n, d = 1500, 4
    y = [rng.normal(size=(n, 2)) for _ in range(2)]
    noise = [rng.normal(size=(n, d)) for _ in range(2)]  # layer 0: nothing about y
    half = [np.hstack([yy[:, :1], rng.normal(size=(n, d - 1))]) for yy in y]  # one coordinate
    full = [np.hstack([yy, rng.normal(size=(n, d - 2))]) for yy in y]  # both coordinates
    r2, preds = probe_r2_by_layer([noise[0], half[0]], [noise[1], half[1]], y[0], y[1])
    assert len(r2) == 3 and r2[0] < 0.02 and r2[1] == pytest.approx(0.5, abs=0.05)
    assert r2[2] == pytest.approx(r2[1], abs=0.02)  # the noise layer adds nothing
    assert preds["final"].shape == preds["concat"].shape == (n, 2)
    assert r2_scores(y[1], preds["final"])[0] == pytest.approx(r2[1])
    r2, _ = probe_r2_by_layer([full[0]], [full[1]], y[0], y[1])
    assert r2 == pytest.approx([1.0, 1.0], abs=1e-9)


def test_bootstrap_r2_resamples_whole_sequences_around_the_sample_value():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(3000, 2))
    good, bad = y + 0.1 * rng.normal(size=y.shape), y + 0.5 * rng.normal(size=y.shape)
    reps = bootstrap_r2(y, {"good": good, "bad": bad}, 10, rng, n_boot=300)
    for name, pred in (("good", good), ("bad", bad)):
        lo, hi = percentile_interval(reps[name])
        assert lo < r2_scores(y, pred)[0] < hi and hi - lo < 0.05
    assert np.all(reps["good"] > reps["bad"])  # paired: the same resamples for both


def test_a_probe_on_shuffled_targets_scores_no_r2():
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))]
    W = rng.normal(size=(3, 3))
    Y = [x[:, :3] @ W for x in X]  # targets linear in the features
    assert LinearProbe().fit(X[0], Y[0]).score(X[1], Y[1]) > 0.999
    assert shuffled_r2([X[0]], [X[1]], Y[0], Y[1], rng) < 0.01


def test_mean_interval_is_the_normal_interval_of_the_mean():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    m, (lo, hi) = mean_interval(x)
    half = Z95 * np.std(x, ddof=1) / 2.0
    assert m == 2.5 and lo == pytest.approx(2.5 - half) and hi == pytest.approx(2.5 + half)


def test_percentile_interval_of_a_uniform_grid():
    assert percentile_interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0))


@pytest.mark.parametrize(
    "call",
    [
        lambda: window_ids(np.zeros(5, dtype=int), 1, 2),  # not (n_seqs, pos)
        lambda: window_ids(np.zeros((2, 3), dtype=int), 0, 2),  # k < 1
        lambda: window_means(np.zeros(3), np.zeros(2), np.zeros((4, 2))),  # rows differ
        lambda: kl_rows(np.ones((2, 3)) / 3, np.zeros((2, 2))),
        lambda: mean_interval(np.array([1.0])),
        lambda: bootstrap_r2(
            np.zeros((10, 2)), {"a": np.zeros((10, 2))}, 3, np.random.default_rng()
        ),
        lambda: bootstrap_r2(np.zeros((9, 2)), {"a": np.zeros((9, 1))}, 3, np.random.default_rng()),
        lambda: percentile_interval(np.array([])),
        lambda: probe_r2_by_layer([np.zeros((4, 2))], [], np.zeros((4, 1)), np.zeros((4, 1))),
        lambda: logprob_r2(np.ones((4, 2)), np.ones((4, 2)), np.ones((3, 1)), np.ones((4, 1))),
        lambda: shuffled_r2(
            [np.zeros((4, 2))], [np.zeros((4, 2))], np.zeros((5, 1)), np.zeros((4, 1)), None
        ),
    ],
)
def test_malformed_input_raises_a_piami_error(call):
    with pytest.raises(PiamiError):
        call()
