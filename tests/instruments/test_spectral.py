"""Spectral reconstruction against exact Hankel ranks, exact word probabilities and sofic."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiTypeError, PiamiValueError
from piami.instruments.reconstruction.hankel import (
    empirical_word_probabilities,
    exact_hankel_rank,
    hankel_matrix,
)
from piami.instruments.reconstruction.spectral import observable_operator_model, spectral
from piami.processes import from_spec
from piami.processes.ghmm import GeneralizedHiddenMarkovModel

MESS3 = "mess3"  # Mess3(x=0.15, a=0.6): the smallest Hankel singular values of the catalog
MESS3_SHAI = "mess3(x=0.05, a=0.85)"
# Sampling-noise multiple for word probabilities: |p_spectral - p_exact| <= Z_MAX batch-means
# standard errors of the empirical frequency (20 batches; the max over 30-120 words of a t_19
# variable, which stays below 4 in the runs recorded here).
Z_MAX = 6.0


def words(n_symbols: int, length: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(n_symbols), repeat=length))


def sample(spec: str, n: int, seed: int) -> np.ndarray:
    """``n`` symbols as rows of 1000 (rows start in the stationary distribution)."""
    return from_spec(spec).sample(n // 1000, 1000, rng=np.random.default_rng(seed))


def excess_log_loss(proc, machine, test: np.ndarray) -> float:
    """Mean KL(exact || model) of the next-symbol distributions along test sequences (nats)."""
    p = proc.next_token_probs(test)
    q = machine.next_token_probs(test)
    q = np.clip(q, 1e-12, None)
    q = q / q.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / q), 0.0)
    return float(kl.sum(-1).mean())


# -- exact Hankel ranks ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "max_length", "rank"),
    [
        ("golden_mean", 4, 2),
        ("even_process", 4, 2),
        ("mess3", 3, 3),
        ("mess3(x=0.05, a=0.85)", 3, 3),
        ("rrxor", 4, 5),
        ("rrxor", 5, 5),
        ("rrxor", 3, 4),  # words that stop at length 3 miss one dimension
    ],
)
def test_exact_hankel_rank(spec: str, max_length: int, rank: int) -> None:
    assert exact_hankel_rank(from_spec(spec), max_length=max_length) == rank


def test_exact_hankel_rank_grows_to_the_process_dimension() -> None:
    rrxor = from_spec("rrxor")
    assert [exact_hankel_rank(rrxor, max_length=n) for n in range(6)] == [1, 1, 3, 4, 5, 5]


def test_hankel_matrix_closed_form_golden_mean() -> None:
    # Golden mean (p = 1/2, no 00): Pr(0) = 1/3, Pr(1) = 2/3; Pr(00) = 0, the other pairs 1/3.
    H = hankel_matrix(from_spec("golden_mean").word_probability, 2, past_length=1, future_length=1)
    want = np.array([[1, 1 / 3, 2 / 3], [1 / 3, 0, 1 / 3], [2 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(H, want, atol=1e-15)


@pytest.mark.parametrize(("spec", "n"), [("rrxor", 3), ("mess3", 2)])
def test_hankel_matrix_from_word_probability_matches_fast_path(spec: str, n: int) -> None:
    proc = from_spec(spec)
    H = hankel_matrix(proc.word_probability, proc.n_symbols, past_length=n, future_length=n)
    # entry by entry against the definition
    pasts = [w for k in range(n + 1) for w in words(proc.n_symbols, k)]
    for i in (0, 1, len(pasts) - 1):
        for j in (0, 2, len(pasts) - 1):
            assert H[i, j] == pytest.approx(proc.word_probability(pasts[i] + pasts[j]), abs=1e-15)
    assert np.linalg.matrix_rank(H, tol=1e-10) == exact_hankel_rank(proc, max_length=n)


# -- counting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(500,), (7, 60)])
def test_empirical_word_probabilities_match_brute_force(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(3).integers(0, 3, size=shape)
    f = empirical_word_probabilities(x, 3, n_symbols=3)
    rows = np.atleast_2d(x)
    assert f([]) == 1.0
    for n in (1, 2, 3):
        c = Counter(tuple(r[i : i + n]) for r in rows for i in range(len(r) - n + 1))
        total = sum(c.values())
        for w in words(3, n):
            assert f(w) == pytest.approx(c.get(w, 0) / total, abs=1e-15)
        assert f.table(n).sum() == pytest.approx(1.0)
        np.testing.assert_array_equal(f.table(n), [f(w) for w in words(3, n)])


# -- exact observable operators ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "rank", "length"), [("golden_mean", 2, 1), ("mess3", 3, 1), ("rrxor", 5, 4)]
)
def test_observable_operators_reproduce_exact_word_probabilities(spec, rank, length) -> None:
    proc = from_spec(spec)
    g = observable_operator_model(
        proc.word_probability, proc.n_symbols, rank=rank, past_length=length, future_length=length
    )
    assert g.n_states == rank
    for n in range(1, 7):
        for w in words(proc.n_symbols, n):
            assert g.word_probability(w) == pytest.approx(proc.word_probability(w), abs=1e-12)


# -- reconstruction from samples -------------------------------------------------------------------
def batch_standard_errors(x: np.ndarray, n: int, n_symbols: int, n_batches: int = 20):
    tabs = [
        empirical_word_probabilities(part, n, n_symbols).table(n)
        for part in np.array_split(x, n_batches, axis=0)
    ]
    return np.std(tabs, axis=0, ddof=1) / np.sqrt(n_batches)


@pytest.mark.parametrize(
    ("spec", "n"),
    [("golden_mean", 10**5), ("golden_mean", 10**6), (MESS3, 10**5), (MESS3, 10**6)],
)
def test_spectral_word_probabilities_and_rank(spec: str, n: int) -> None:
    proc = from_spec(spec)
    x = sample(spec, n, seed=1)
    rec = spectral(x)
    assert rec.method == "spectral"
    assert rec.n_samples == n and rec.max_length == 3
    assert rec.n_states == rec.details["rank"] == exact_hankel_rank(proc, max_length=1)
    # observed max z: golden mean 0.61 (1e5), 3.93 (1e6); Mess3 1.82 (1e5), 2.35 (1e6)
    worst = 0.0
    for length in range(1, 5):
        se = np.maximum(batch_standard_errors(x, length, proc.n_symbols), 1.0 / n)
        for w, s in zip(words(proc.n_symbols, length), se, strict=True):
            z = abs(rec.machine.word_probability(w) - proc.word_probability(w)) / s
            worst = max(worst, z)
    assert worst <= Z_MAX, worst


# Mess3(0.05, 0.85): at N = 10^4 one fit in five of Mess3(0.15, 0.6) gives some observed symbol a
# negative probability and next_token_probs refuses the sequence (see the module's Limits).
@pytest.mark.parametrize("spec", ["golden_mean", MESS3_SHAI])
def test_excess_log_loss_falls_with_n(spec: str) -> None:
    proc = from_spec(spec)
    test = proc.sample(100, 100, rng=np.random.default_rng(99))
    losses = [
        excess_log_loss(proc, spectral(sample(spec, n, seed=2)).machine, test)
        for n in (10**4, 10**6)
    ]
    # observed (nats/symbol): golden mean 4.9e-5 -> 1.7e-8, Mess3(0.05, 0.85) 2.8e-3 -> 2.1e-5;
    # an efficient estimator's excess falls as 1/N (x100 here)
    assert 0 <= losses[1] < losses[0] / 10, losses


def test_shuffled_sequence_has_rank_one() -> None:
    x = sample(MESS3, 10**5, seed=4)
    assert spectral(x).n_states == 3
    shuffled = np.random.default_rng(5).permutation(x.ravel()).reshape(x.shape)
    for length in (3, 5):
        assert spectral(shuffled, max_length=length).n_states == 1


def test_constant_and_periodic_sequences() -> None:
    const = spectral(np.zeros(2000, dtype=np.int64), n_symbols=2)
    assert const.n_states == 1
    assert const.machine.word_probability([0, 0, 0, 0]) == pytest.approx(1.0)
    cycle = spectral(np.tile([0, 1], 1000))
    assert cycle.n_states == 2
    p = cycle.machine.next_token_probs(np.array([0, 1, 0]))
    np.testing.assert_allclose(p[1:], [[0, 1], [1, 0], [0, 1]], atol=1e-9)


def test_rrxor_needs_long_words() -> None:
    x = sample("rrxor", 10**6, seed=0)
    assert spectral(x, max_length=7).n_states == 4  # pasts and futures of 3: rank 4
    assert spectral(x, max_length=9).n_states == 5


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tokens", "kwargs", "error"),
    [
        (np.array([0, 1]), {}, PiamiValueError),  # shorter than max_length
        (np.array([0, 1] * 20), {}, PiamiValueError),  # too short to choose the rank
        (np.array([0.5, 1.0, 0.0] * 100), {}, PiamiTypeError),  # non-integer
        (np.zeros((2, 2, 50), dtype=int), {}, PiamiValueError),  # 3-D
        (np.array([0, -1, 1] * 100), {}, PiamiValueError),  # negative symbol
        (np.array([0, 1] * 500), {"rank": 4}, PiamiValueError),  # larger than the 3x3 Hankel
        (np.zeros(1000, dtype=int), {"rank": 2, "n_symbols": 2}, PiamiValueError),  # rank 1 data
        (np.array([0, 1] * 500), {"max_length": 0}, PiamiValueError),
        (np.array([0, 1] * 500), {"tol": -1.0}, PiamiValueError),
        (np.arange(30).repeat(10), {}, PiamiValueError),  # 27,000 words from 298 windows
    ],
)
def test_bad_input(tokens, kwargs, error) -> None:
    with pytest.raises(error):
        spectral(tokens, **kwargs)


def test_bad_input_elsewhere() -> None:
    with pytest.raises(PiamiTypeError):
        hankel_matrix([0.5, 0.5], 2, past_length=1, future_length=1)
    with pytest.raises(PiamiValueError):
        hankel_matrix(lambda w: 0.5, 2, past_length=-1, future_length=1)
    with pytest.raises(PiamiError):
        exact_hankel_rank(from_spec("golden_mean"), max_length=-1)
    with pytest.raises(PiamiValueError):
        exact_hankel_rank(from_spec("mess3"), max_length=20)  # 3**40 words
    with pytest.raises(PiamiValueError):
        empirical_word_probabilities(np.array([0, 1, 0]), 5)
    f = empirical_word_probabilities(np.array([0, 1, 0, 1]), 2)
    with pytest.raises(PiamiValueError):
        f([0, 1, 0])


# -- sofic as an independent oracle ---------------------------------------------------------------
def test_exact_ranks_agree_with_sofic() -> None:
    inference = pytest.importorskip("sofic.inference.spectral")
    for spec, length in [("golden_mean", 3), ("even_process", 3), ("mess3", 2), ("rrxor", 4)]:
        proc = from_spec(spec)

        def oracle(w, proc=proc):
            return proc.word_probability(np.asarray(w, dtype=np.int64))

        qr = inference.learn_spectral_wfa(
            word_probability=oracle, alphabet=list(range(proc.n_symbols)), prefix_length=length
        )
        assert qr.pi.shape[0] == exact_hankel_rank(proc, max_length=length), spec


@pytest.mark.parametrize(("spec", "length"), [("golden_mean", 5), (MESS3, 5)])
def test_same_data_as_sofic(spec: str, length: int) -> None:
    inference = pytest.importorskip("sofic.inference.spectral")
    proc = from_spec(spec)
    V = proc.n_symbols
    x = sample(spec, 10**4, seed=1)
    seqs = [r.tolist() for r in x]
    past = (length - 1) // 2
    kw = {"prefix_length": past, "suffix_length": length - 1 - past}
    true_rank = exact_hankel_rank(proc, max_length=past)
    # 1. the same sliding-window estimate (sofic's estimator) gives the same model at one rank:
    # sofic's operators, as a stationary GHMM, assign every word the probability ours does
    f = empirical_word_probabilities(x, length, V)
    ours = observable_operator_model(
        f, V, rank=true_rank, past_length=past, future_length=kw["suffix_length"]
    )
    qr = inference.learn_spectral_wfa(
        word_probability=f, alphabet=list(range(V)), rank=true_rank, **kw
    )
    theirs = GeneralizedHiddenMarkovModel(np.stack([qr.symbol_maps[v] for v in range(V)]))
    for w in words(V, 4):
        assert ours.word_probability(w) == pytest.approx(theirs.word_probability(w), abs=1e-12)
    # 2. from the samples: the Hankel singular values agree up to the row-end terms (sofic counts
    # each word length over its own windows, piami reads all from the length-L windows)
    rec = spectral(x, max_length=length)
    s = np.array(rec.details["singular_values"])
    s_sofic = np.sort(inference.spectral_singular_values(seqs, **kw))[::-1]
    # (observed 1.9e-4 against the bound rows * L / N = 5e-3)
    np.testing.assert_allclose(s_sofic[: s.size], s, atol=x.shape[0] * length / x.size)
    # 3. the rank: piami's noise rule finds the exact rank; sofic's rule (singular values above
    # 1e-3 of the largest) ignores the sample size and keeps noise directions at N = 10^4
    assert rec.n_states == true_rank
    assert inference.learn_spectral_wfa(seqs, **kw).pi.shape[0] > true_rank
