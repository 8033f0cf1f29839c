"""Probability of not being synchronized after L symbols, against brute-force enumeration."""

from __future__ import annotations

import itertools

import pytest

from piami.errors import PiamiValueError
from piami.processes import even_process, golden_mean, mess3, rrxor
from piami.theory import unsynchronized_probability


def _brute(proc, length: int) -> float:
    """Every word written out: its probability and the belief it leaves, no merging."""
    root = proc.stationary_distribution()
    total = 0.0
    for word in itertools.product(range(proc.n_symbols), repeat=length):
        v = root.copy()
        for x in word:
            v = v @ proc.T[x]
        p = v.sum()
        if p > 1e-15 and (v / p).max() < 1 - 1e-9:
            total += p
    return total


@pytest.mark.parametrize("make", [even_process, golden_mean, rrxor, mess3])
@pytest.mark.parametrize("length", [0, 1, 3, 6])
def test_matches_enumeration_of_every_word(make, length: int) -> None:
    proc = make()
    got = unsynchronized_probability(proc.T, length, root=proc.stationary_distribution())
    assert got == pytest.approx(_brute(proc, length), abs=1e-12)


def test_closed_forms() -> None:
    even = even_process()
    for length in range(1, 9):  # a word with a 0 fixes the parity: only 1^L is ambiguous
        got = unsynchronized_probability(even.T, length, root=even.stationary_distribution())
        assert got == pytest.approx(even.word_probability([1] * length), abs=1e-12)
    g = golden_mean()  # the last symbol names the state
    assert unsynchronized_probability(g.T, 5, root=g.stationary_distribution()) == 0.0
    m = mess3()  # Mess3 beliefs stay in the interior of the simplex: never synchronized
    assert unsynchronized_probability(m.T, 4, root=m.stationary_distribution()) == pytest.approx(1)


def test_bad_input() -> None:
    g = golden_mean()
    with pytest.raises(PiamiValueError):
        unsynchronized_probability(g.T, -1, root=g.stationary_distribution())
    with pytest.raises(PiamiValueError, match="non-negative"):
        unsynchronized_probability(-g.T, 2, root=g.stationary_distribution())
