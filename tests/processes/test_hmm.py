"""HiddenMarkovModel: validation, sampling contracts and sampled word frequencies vs exact ones."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import chisquare

from piami.errors import PiamiError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.processes import (
    GeneralizedHiddenMarkovModel,
    HiddenMarkovModel,
    HMMSample,
    golden_mean,
    mess3,
    random_hmm,
    rrxor,
)


def test_validation_names_the_offending_state():
    T = golden_mean().T.copy()
    T[0, 1, 0] = -0.1
    with pytest.raises(PiamiValueError, match=r"state 1"):
        HiddenMarkovModel(T)
    T = golden_mean().T.copy()
    T[1, 1, 0] = 0.9
    with pytest.raises(PiamiValueError, match=r"state 1: .* 0\.9"):
        HiddenMarkovModel(T)
    T = golden_mean().T.copy()
    T[0, 0, 1] = np.nan
    with pytest.raises(PiamiValueError, match=r"non-finite .*state 0"):
        HiddenMarkovModel(T)


@pytest.mark.parametrize(
    ("T", "err"),
    [
        (np.ones((2, 2)), PiamiShapeError),
        (np.ones((2, 0, 0)), PiamiShapeError),
        (np.ones((2, 2, 3)) / 6, PiamiShapeError),
        ([["a"]], PiamiTypeError),
        (np.ones((1, 2, 2, 1)), PiamiShapeError),
    ],
)
def test_malformed_tensors_raise(T, err):
    with pytest.raises(err):
        HiddenMarkovModel(T)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_arbitrary_arrays_give_a_valid_hmm_or_a_piami_error(A):
    try:
        proc = HiddenMarkovModel(A)
    except PiamiError:
        return
    assert np.allclose(proc.T.sum(axis=(0, 2)), 1.0)
    assert (proc.T >= 0).all()


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 3)).map(lambda s: (s[0], s[1], s[1])),
        elements=st.floats(-2, 2),
    ),
)
def test_arbitrary_signed_tensors_give_a_ghmm_or_a_piami_error(A):
    try:
        g = GeneralizedHiddenMarkovModel(A)
        g.stationary_distribution()
    except PiamiError:
        return
    assert g.T.shape == A.shape


def test_sample_shapes_dtypes_and_determinism():
    proc = mess3()
    a = proc.sample(5, 7, rng=np.random.default_rng(3))
    b = proc.sample(5, 7, rng=np.random.default_rng(3))
    assert a.dtype == np.int64 and a.shape == (5, 7)
    np.testing.assert_array_equal(a, b)
    s = proc.sample(
        5,
        7,
        rng=np.random.default_rng(3),
        return_states=True,
        return_beliefs=True,
        return_probs=True,
    )
    assert isinstance(s, HMMSample)
    np.testing.assert_array_equal(s.tokens, a)  # flags do not change the tokens
    assert s.states.shape == (5, 8) and s.states.dtype == np.int64
    assert s.beliefs.shape == (5, 8, 3) and s.next_token_probs.shape == (5, 8, 3)
    np.testing.assert_allclose(s.beliefs, proc.beliefs(a), rtol=0, atol=1e-14)
    np.testing.assert_allclose(s.next_token_probs, proc.next_token_probs(a), rtol=0, atol=1e-14)
    only = proc.sample(5, 7, rng=np.random.default_rng(3), return_beliefs=True)
    assert only.states is None and only.next_token_probs is None
    assert proc.sample(2, 0, rng=np.random.default_rng(0)).shape == (2, 0)


def test_sampled_states_follow_allowed_edges():
    proc = rrxor()
    s = proc.sample(50, 30, rng=np.random.default_rng(0), return_states=True)
    p = proc.T[s.tokens, s.states[:, :-1], s.states[:, 1:]]
    assert (p > 0).all()


def test_mess3_tokens_do_not_reveal_the_state():
    x, a = 0.05, 0.85
    proc = mess3(x, a)
    s = proc.sample(400, 50, rng=np.random.default_rng(1), return_states=True, return_beliefs=True)
    agree = np.mean(s.tokens == s.states[:, 1:])  # Pr(token names the new state) = a
    assert agree == pytest.approx(a, abs=0.01)  # 20,000 draws: sd 0.0025
    assert s.beliefs[:, 1:].max(-1).max() < 0.999  # never certain of the hidden state
    assert not proc.is_unifilar()


@pytest.mark.parametrize("kind", ["mess3", "rrxor", "random", "ghmm"])
def test_word_frequencies_match_exact_probabilities(kind):
    """Chi-square of sampled 3-words (first 3 symbols of each sequence) against pi T[w] r."""
    proc = {
        "mess3": mess3(0.05, 0.85),
        "rrxor": rrxor(),
        "random": random_hmm(3, 2, rng=np.random.default_rng(2)),
        "ghmm": None,
    }[kind]
    if proc is None:  # signed presentation of a random HMM: sampled from its beliefs
        base = random_hmm(2, 2, rng=np.random.default_rng(4))
        S = np.array([[1.0, 0.7], [-0.5, 1.2]])
        proc = GeneralizedHiddenMarkovModel(np.linalg.inv(S) @ base.T @ S)
    L, n = 3, 20_000
    tokens = proc.sample(n, L, rng=np.random.default_rng(12345))
    words = list(itertools.product(range(proc.n_symbols), repeat=L))
    exact = np.array([proc.word_probability(np.array(w)) for w in words])
    idx = tokens @ (proc.n_symbols ** np.arange(L - 1, -1, -1))
    counts = np.bincount(idx, minlength=len(words))
    assert counts[exact == 0].sum() == 0  # forbidden words never appear
    keep = exact > 0
    stat = chisquare(counts[keep], exact[keep] * n)
    assert stat.pvalue > 1e-3, stat


def test_sampled_initial_states_are_stationary():
    proc = rrxor()
    s = proc.sample(30_000, 1, rng=np.random.default_rng(7), return_states=True)
    counts = np.bincount(s.states[:, 0], minlength=5)
    assert chisquare(counts, proc.stationary_distribution() * 30_000).pvalue > 1e-3


@pytest.mark.parametrize(
    ("args", "kw"),
    [
        ((0, 5), {}),
        ((2, -1), {}),
        ((2.5, 5), {}),
        ((2, 5), {"rng": 0}),
    ],
)
def test_bad_sample_arguments_raise(args, kw):
    kw = {"rng": np.random.default_rng(0), **kw}
    with pytest.raises(PiamiError):
        mess3().sample(*args, **kw)


def test_ghmm_normalizes_by_principal_eigenpair_and_has_no_states():
    base = golden_mean()
    g = GeneralizedHiddenMarkovModel(3.0 * base.T)
    np.testing.assert_allclose(g.T, base.T, atol=1e-14)
    with pytest.raises(PiamiValueError, match="no hidden states"):
        g.sample(2, 3, rng=np.random.default_rng(0), return_states=True)
    assert g.spec.startswith("ghmm(T=")


def test_word_probabilities_sum_to_one():
    proc = random_hmm(3, 3, rng=np.random.default_rng(0))
    total = sum(proc.word_probability(np.array(w)) for w in itertools.product(range(3), repeat=3))
    assert total == pytest.approx(1.0, abs=1e-12)
