"""PCFG: inside algorithm against closed forms, enumeration and Monte Carlo; bad grammars."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError, PiamiValueError
from piami.processes.pcfg import PCFG
from piami.processes.rhm import RandomHierarchyModel


def test_right_branching_closed_form():
    g = PCFG([("S", ("a", "S"), 0.5), ("S", ("a",), 0.5)], start="S")
    for k in range(1, 7):
        assert g.string_probability(("a",) * k) == pytest.approx(0.5**k, abs=1e-15)
    assert g.log_probability(("a",) * 3) == pytest.approx(3 * np.log(0.5))


def test_ambiguous_grammar_inside_matches_monte_carlo():
    """S -> S S | a | b is ambiguous (Catalan many derivations); inside sums them all.

    Frequencies of 20,000 samples agree with the inside probabilities within 4 binomial sigmas.
    """
    g = PCFG([("S", ("S", "S"), 0.3), ("S", ("a",), 0.5), ("S", ("b",), 0.2)], start="S")
    rng = np.random.default_rng(0)
    n = 20_000
    freq = Counter(g.sample_strings(n, rng=rng, max_len=100_000))
    for w in [("a",), ("b",), ("a", "a"), ("a", "b"), ("a", "a", "a"), ("b", "a", "a")]:
        p = g.string_probability(w)
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(freq[w] / n - p) < 4 * sigma + 1e-12, (w, freq[w] / n, p)
    # three-token strings: two derivations each, so p = 2 * 0.3**2 * prod(leaf probs)
    assert g.string_probability(("a", "a", "a")) == pytest.approx(2 * 0.09 * 0.125)


def test_rhm_as_pcfg_sums_to_one_and_matches_data():
    rhm = RandomHierarchyModel(3, 2, 2, 2, 2, rng=np.random.default_rng(0))
    g = rhm.to_pcfg()
    total = sum(g.string_probability(w) for w in itertools.product(range(3), repeat=4))
    assert total == pytest.approx(1.0, abs=1e-12)
    for row in rhm.sample(10, rng=np.random.default_rng(1)):
        assert g.string_probability(tuple(int(t) for t in row)) == pytest.approx(1 / rhm.p_max)


def test_sample_stream_shape_and_separator():
    g = PCFG([("S", ("a", "b"), 1.0)], start="S")
    x = g.sample(3, 5, rng=np.random.default_rng(0), sep=2)
    assert x.shape == (3, 5)
    np.testing.assert_array_equal(x.ravel()[:6], [0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    "rules, kw",
    [
        ([], {"start": "S"}),
        ([("S", (), 1.0)], {"start": "S"}),
        ([("S", "ab", 1.0)], {"start": "S"}),
        ([("S", ("a",), 0.0)], {"start": "S"}),
        ([("S", ("a",), 1.0)], {"start": "T"}),
        ([("S", ("A",), 1.0), ("A", ("S",), 1.0)], {"start": "S"}),
        ([("S", ("A", "b"), 1.0)], {"start": "S", "terminals": ["b"]}),
        ([("S", ("a",), 1.0, 2)], {"start": "S"}),
    ],
)
def test_bad_grammars_raise(rules, kw):
    with pytest.raises(PiamiError):
        PCFG(rules, **kw)


def test_bad_strings_raise():
    g = PCFG([("S", ("a",), 1.0)], start="S")
    with pytest.raises(PiamiValueError):
        g.string_probability(())
    with pytest.raises(PiamiValueError):
        g.string_probability(("z",))
    runaway = PCFG([("S", ("S", "S"), 0.9), ("S", ("a",), 0.1)], start="S")
    with pytest.raises(PiamiValueError, match="max_len"):
        runaway.generate(rng=np.random.default_rng(0), max_len=50)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.text(max_size=2), st.integers()),
            st.one_of(st.none(), st.text(max_size=3), st.lists(st.integers(), max_size=3)),
            st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=2)),
        ),
        max_size=4,
    )
)
def test_malformed_rules_raise_piami_errors(rules):
    try:
        PCFG(rules, start="S")
    except PiamiError:
        pass
