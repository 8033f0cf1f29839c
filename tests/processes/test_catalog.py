"""Every catalog process against one contract suite; spec strings and their errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError, PiamiKeyError, PiamiTypeError, PiamiValueError
from piami.processes import (
    PROCESSES,
    HiddenMarkovModel,
    as_process,
    catalog_specs,
    even_process,
    from_spec,
    golden_mean,
    mess3,
    random_hmm,
    rrxor,
    z1r,
)


@pytest.mark.parametrize("spec", catalog_specs())
def test_catalog_contract(spec):
    proc = from_spec(spec)
    X, S = proc.n_symbols, proc.n_states
    assert proc.T.shape == (X, S, S) and proc.T.dtype == np.float64
    assert (proc.T >= 0).all()
    np.testing.assert_allclose(proc.T.sum(axis=(0, 2)), 1.0, atol=1e-12)
    again = from_spec(proc.spec)  # spec round trip
    np.testing.assert_array_equal(again.T, proc.T)
    assert again.spec == proc.spec
    pi = proc.stationary_distribution()
    np.testing.assert_allclose(pi @ proc.T.sum(0), pi, atol=1e-13)
    assert pi.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    s = proc.sample(64, 12, rng=rng, return_states=True, return_beliefs=True, return_probs=True)
    assert s.tokens.shape == (64, 12) and s.tokens.min() >= 0 and s.tokens.max() < X
    np.testing.assert_allclose(s.beliefs.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(s.next_token_probs.sum(-1), 1.0, atol=1e-12)
    # the hidden state always has positive belief (beliefs never rule out the truth)
    assert (np.take_along_axis(s.beliefs, s.states[..., None], -1) > 0).all()
    loss = proc.optimal_loss(8)
    assert loss.shape == (8,) and np.all(np.diff(loss) <= 1e-12)
    np.testing.assert_allclose(
        np.cumsum(loss), [proc.block_entropy(L) for L in range(1, 9)], atol=1e-10
    )
    assert isinstance(proc.is_unifilar(), bool)
    est = proc.entropy_rate_estimate(n_chains=64, n_steps=300, myopic_depth=16)
    assert est.lower - 1e-12 <= est.value + 5 * est.stderr
    assert est.value - 5 * est.stderr <= est.upper + 1e-12
    assert loss[-1] >= est.value - 5 * est.stderr - 1e-12
    assert proc.excess_entropy() >= -1e-12
    msp = proc.mixed_state_presentation(3)
    np.testing.assert_allclose(msp.beliefs[0], pi)


def test_parameters_mean_what_the_docstrings_say():
    # z1r: the random state (2) emits 1 with probability p
    assert z1r(0.3).T[1, 2].sum() == pytest.approx(0.3)
    # golden mean: no two 0s in a row; A emits 0 with probability p
    g = golden_mean(0.2)
    assert g.T[0, 0].sum() == pytest.approx(0.2)
    assert g.word_probability(np.array([0, 0])) == 0.0
    # even process: 1s in even blocks: "0 1 0" is impossible
    assert even_process().word_probability(np.array([0, 1, 0])) == 0.0
    # rrxor: every third symbol is the XOR of the two before it, once synchronized
    t = rrxor().sample(1, 30, rng=np.random.default_rng(0), return_states=True)
    starts = np.flatnonzero(t.states[0, :-3] == 0)
    for k in starts:
        assert t.tokens[0, k + 2] == t.tokens[0, k] ^ t.tokens[0, k + 1]


def test_mess3_structure():
    x = 0.05
    proc = mess3(x, 0.85)
    ev = np.sort(np.linalg.eigvals(proc.T.sum(0)).real)
    np.testing.assert_allclose(ev, [1 - 3 * x, 1 - 3 * x, 1.0], atol=1e-12)
    np.testing.assert_allclose(proc.stationary_distribution(), np.full(3, 1 / 3))


def test_from_spec_forms():
    assert from_spec("mess3").spec == "mess3(x=0.15, a=0.6)"
    assert from_spec("mess3(0.05, 0.85)").spec == "mess3(x=0.05, a=0.85)"
    assert from_spec(" mess3(x=0.05, a=0.85) ").spec == "mess3(x=0.05, a=0.85)"
    p = mess3()
    assert from_spec(p) is p and as_process(p) is p
    r = random_hmm(3, 2, rng=np.random.default_rng(9))
    back = from_spec(r.spec)  # explicit tensor spec
    assert isinstance(back, HiddenMarkovModel)
    np.testing.assert_array_equal(back.T, r.T)
    a = from_spec("random_hmm(n_states=4, n_symbols=3, seed=5)")
    np.testing.assert_array_equal(a.T, from_spec(a.spec).T)


@pytest.mark.parametrize(
    ("spec", "err", "needle"),
    [
        ("mess4", PiamiKeyError, "valid processes: mess3, rrxor"),
        ("mess3(y=1)", PiamiKeyError, "valid parameters: x, a"),
        ("mess3(x=0.7)", PiamiValueError, "(0.0, 0.5]"),
        ("mess3(x='a')", PiamiTypeError, "number"),
        ("mess3(0.1, 0.2, 0.3)", PiamiValueError, "at most 2"),
        ("mess3(0.1, x=0.2)", PiamiValueError, "twice"),
        ("mess3(x=__import__('os'))", PiamiValueError, "literal"),
        ("mess3(", PiamiValueError, "cannot parse"),
        ("random_hmm(n_states=3)", PiamiValueError, "n_symbols"),
        ("1 + 2", PiamiValueError, "NAME"),
        ("", PiamiValueError, "empty"),
    ],
)
def test_bad_specs_raise_and_explain(spec, err, needle):
    with pytest.raises(err, match=None) as info:
        from_spec(spec)
    assert needle in str(info.value)


def test_non_string_spec_raises():
    with pytest.raises(PiamiTypeError):
        from_spec(3)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda n, k, v: f"{n}({k}={v})",
            st.sampled_from(list(PROCESSES)),
            st.sampled_from(["x", "a", "p", "p1", "T", "seed", "n_states", "q"]),
            st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.text(max_size=5).map(repr)),
        ),
    )
)
def test_arbitrary_specs_give_a_process_or_a_piami_error(spec):
    try:
        proc = from_spec(spec)
    except PiamiError:
        return
    assert proc.T.ndim == 3
