"""Beliefs and mixed-state presentations against brute-force Bayes over hidden-state paths."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import piami.theory.beliefs as beliefs_mod
from piami.errors import PiamiError, PiamiValueError
from piami.processes import golden_mean, mess3, random_hmm, rrxor
from piami.theory import belief_trajectories, mixed_state_presentation, stationary_distribution


def brute_force_joint(T, pi, word):
    """Pr(x_0..x_{t-1}, S_t = j) by summing over every hidden path s_0..s_t (no recursion)."""
    n_states = T.shape[1]
    out = np.zeros(n_states)
    for path in itertools.product(range(n_states), repeat=len(word) + 1):
        p = pi[path[0]]
        for k, x in enumerate(word):
            p *= T[x, path[k], path[k + 1]]
        out[path[-1]] += p
    return out


@pytest.mark.parametrize(
    "proc",
    [mess3(0.05, 0.85), rrxor(), random_hmm(3, 2, rng=np.random.default_rng(3))],
    ids=["mess3", "rrxor", "random"],
)
def test_beliefs_match_brute_force_bayes(proc):
    rng = np.random.default_rng(11)
    tokens = proc.sample(2, 4, rng=rng)
    b = proc.beliefs(tokens)
    p = proc.next_token_probs(tokens)
    pi = proc.stationary_distribution()
    for n in range(tokens.shape[0]):
        for t in range(tokens.shape[1] + 1):
            joint = brute_force_joint(proc.T, pi, tokens[n, :t])
            np.testing.assert_allclose(b[n, t], joint / joint.sum(), atol=1e-12)
            for x in range(proc.n_symbols):
                nxt = brute_force_joint(proc.T, pi, [*tokens[n, :t], x]).sum()
                np.testing.assert_allclose(p[n, t, x], nxt / joint.sum(), atol=1e-12)


def test_single_sequence_shape_and_root():
    proc = mess3()
    b = proc.beliefs(np.array([0, 1, 2, 2]))
    assert b.shape == (5, 3)
    np.testing.assert_allclose(b[0], proc.stationary_distribution())
    assert proc.next_token_probs([0, 1]).shape == (3, 3)


def test_long_sequence_is_stable_and_scan_matches_loop():
    proc = mess3(0.05, 0.85)
    # every Mess3 word has positive probability, so 100 sampled pieces joined are a valid sequence
    tokens = proc.sample(100, 1000, rng=np.random.default_rng(0)).reshape(1, 100_000)
    b = proc.beliefs(tokens)  # long and narrow: prefix-product scan
    assert b.shape == (1, 100_001, 3)
    assert np.isfinite(b).all() and (b >= 0).all()
    np.testing.assert_allclose(b.sum(-1), 1.0, atol=1e-12)
    # the per-step loop on a prefix (beliefs depend only on the prefix) agrees with the scan
    prefix = tokens[:, :6000]
    loop = np.concatenate([proc.beliefs(prefix[:, :3000]), proc.beliefs(prefix)[:, 3001:]], axis=1)
    np.testing.assert_allclose(b[:, :6001], loop, atol=1e-12)
    # beliefs keep moving (no collapse onto a vertex or freeze): late beliefs differ among
    # themselves
    assert np.ptp(b[0, -1000:, 0]) > 0.1


def test_scan_path_equals_loop_path(monkeypatch):
    proc = random_hmm(4, 3, rng=np.random.default_rng(1))
    tokens = proc.sample(2, 300, rng=np.random.default_rng(2))
    loop = proc.beliefs(tokens)
    monkeypatch.setattr(beliefs_mod, "SCAN_MIN_LEN", 1)
    scan, probs = belief_trajectories(proc.T, tokens, root=proc.stationary_distribution())
    np.testing.assert_allclose(scan, loop, atol=1e-12)
    np.testing.assert_allclose(probs, proc.next_token_probs(tokens), atol=1e-12)


def test_impossible_token_raises_with_position():
    proc = golden_mean()  # no two 0s in a row
    with pytest.raises(PiamiValueError, match="position 2"):
        proc.beliefs(np.array([[1, 0, 0, 1]]))


@pytest.mark.parametrize(
    "bad", [np.array([[0, 3]]), np.zeros((2, 2, 2), dtype=int), [0.5, 1.0], "ab"]
)
def test_bad_tokens_raise(bad):
    with pytest.raises(PiamiError):
        mess3().beliefs(bad)


def test_stationary_distribution_known_and_invariant():
    np.testing.assert_allclose(rrxor().stationary_distribution(), np.array([2, 1, 1, 1, 1]) / 6)
    np.testing.assert_allclose(mess3(0.05, 0.85).stationary_distribution(), np.full(3, 1 / 3))
    proc = random_hmm(5, 3, rng=np.random.default_rng(4))
    pi = proc.stationary_distribution()
    np.testing.assert_allclose(pi @ proc.T.sum(0), pi, atol=1e-13)


def test_non_ergodic_has_no_stationary_distribution():
    T = np.zeros((1, 2, 2))
    T[0] = np.eye(2)
    with pytest.raises(PiamiValueError, match="not ergodic"):
        stationary_distribution(T)


def test_rrxor_has_36_mixed_states_with_consistent_transitions():
    proc = rrxor()
    msp = proc.mixed_state_presentation(max_depth=100)
    assert msp.complete
    assert msp.n_states == 36
    np.testing.assert_allclose(msp.beliefs[0], proc.stationary_distribution())
    for k in range(msp.n_states):
        for x in range(proc.n_symbols):
            j = msp.next_state[k, x]
            v = msp.beliefs[k] @ proc.T[x]
            if j < 0:
                assert v.sum() < 1e-12
            else:
                np.testing.assert_allclose(msp.beliefs[j], v / v.sum(), atol=1e-9)
                assert msp.symbol_probs[k, x] == pytest.approx(v.sum())


def test_mess3_mixed_states_do_not_close():
    msp = mess3().mixed_state_presentation(max_depth=6)
    assert not msp.complete
    assert msp.n_states == sum(3**d for d in range(7))  # every belief is new: 1 + 3 + ... + 3^6
    small = mixed_state_presentation(
        mess3().T, root=np.full(3, 1 / 3), max_depth=50, max_states=500
    )
    assert not small.complete and small.n_states == 500


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        hnp.arrays(
            st.sampled_from([np.int64, np.int8, np.float64, np.bool_]),
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        ),
        st.lists(st.one_of(st.integers(-3, 5), st.text(max_size=2)), max_size=5),
    )
)
def test_arbitrary_tokens_give_beliefs_or_a_piami_error(tokens):
    proc = golden_mean()
    try:
        b = proc.beliefs(tokens)
    except PiamiError:
        return
    np.testing.assert_allclose(b.sum(-1), 1.0)
