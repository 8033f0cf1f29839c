"""Excess log-loss against closed forms: a model's KL rate to the process it is scored on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.instruments.reconstruction.score import excess_log_loss, smoothed
from piami.processes import from_spec
from piami.processes.hmm import HiddenMarkovModel

COIN = HiddenMarkovModel(np.array([[[0.5]], [[0.5]]]))


def test_the_true_machine_has_zero_excess():
    gm = from_spec("golden_mean")
    r = excess_log_loss(gm, gm, n_seqs=50, seq_len=100, rng=np.random.default_rng(0))
    assert abs(r.value) < 1e-5 and r.impossible == 0.0


def test_a_fair_coin_loses_ln2_minus_the_entropy_rate():
    # against a fair coin, E[ln P(x|past) - ln 1/2] = ln 2 - h exactly
    gm = from_spec("golden_mean")
    r = excess_log_loss(gm, COIN, n_seqs=200, seq_len=200, rng=np.random.default_rng(1))
    assert r.value == pytest.approx(math.log(2) - gm.entropy_rate(), abs=4 * r.stderr)


def test_a_model_that_forbids_a_possible_symbol_is_charged_and_counted():
    gm = from_spec("golden_mean")
    ones = HiddenMarkovModel(np.array([[[0.0]], [[1.0]]]))  # always 1: calls every 0 impossible
    r = excess_log_loss(gm, ones, n_seqs=20, seq_len=100, eps=1e-6, rng=np.random.default_rng(2))
    assert r.impossible == pytest.approx(1 / 3, abs=0.05)  # golden mean emits 0 a third of the time
    # E[ln P] - E[ln Q] = -h + Pr(0) ln(2 / eps) + Pr(1) ln(1 / (1 - eps / 2)), Pr(0) = 1/3
    expected = -gm.entropy_rate() + math.log(2 / 1e-6) / 3
    assert r.value == pytest.approx(expected, abs=4 * r.stderr)


def test_smoothing_keeps_rows_stochastic_and_refuses_other_alphabets():
    gm = from_spec("golden_mean")
    s = smoothed(gm, 1e-3)
    np.testing.assert_allclose(s.T.sum(axis=(0, 2)), 1.0)
    three = HiddenMarkovModel(np.full((3, 1, 1), 1 / 3))
    with pytest.raises(PiamiError):
        excess_log_loss(gm, three, rng=np.random.default_rng(0))


def test_exact_kl_rate_of_a_perturbed_golden_mean_is_the_stationary_mix_of_kls():
    from piami.instruments.reconstruction.score import kl_rate_unifilar

    gm = from_spec("golden_mean")
    T = gm.T.copy()
    T[:, 0, :] = np.array([[0.0, 0.4], [0.6, 0.0]])  # state A emits 0 with 0.4 instead of 0.5
    q = HiddenMarkovModel(T)
    # only state A (stationary weight 2/3) differs: D = 2/3 KL((.5, .5) || (.4, .6))
    expected = 2 / 3 * (0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6))
    assert kl_rate_unifilar(gm, q) == pytest.approx(expected, rel=1e-9)
    assert kl_rate_unifilar(gm, gm) == 0.0
    assert kl_rate_unifilar(gm, COIN) == pytest.approx(math.log(2) - gm.entropy_rate())
    # the sampled estimate agrees with the exact rate
    r = excess_log_loss(gm, q, n_seqs=200, seq_len=300, rng=np.random.default_rng(3))
    assert r.value == pytest.approx(expected, abs=4 * r.stderr)
    # a model forbidding what the process emits in the long run loses without bound
    assert kl_rate_unifilar(from_spec("even_process"), gm) == math.inf
