"""The counting engine against dictionary counting, and the statistics built on it.

Every count is checked against ``collections.Counter`` over explicit tuples (windows taken row by
row, so they never cross rows); the estimators on top are checked against independent
computations from those dictionary counts (dense SVD, exact Frobenius norm, ``math.fsum``
entropies, the NSB estimator applied to the dictionary counts).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments import counting
from piami.instruments import statistics as stats_mod
from piami.instruments.counting import (
    check_tokens,
    count_spectra,
    count_values,
    lag_pairs,
    ngram_codes,
    pair_counts,
    word_counts,
)
from piami.instruments.entropy import conditional_entropies, entropy_nsb
from piami.instruments.statistics import lagged_correlations


def rows_of(x: np.ndarray) -> np.ndarray:
    return x[None, :] if x.ndim == 1 else x


def dict_ngrams(x: np.ndarray, n: int) -> Counter:
    """n-gram counts by a dictionary, window by window within each row."""
    return Counter(tuple(r[i : i + n].tolist()) for r in rows_of(x) for i in range(r.size - n + 1))


def decode(code: int, n: int, v: int) -> tuple[int, ...]:
    word = []
    for _ in range(n):
        code, d = divmod(code, v)
        word.append(d)
    return tuple(reversed(word))


def random_tokens(rng: np.random.Generator, v: int, shape: tuple[int, ...]) -> np.ndarray:
    """Skewed random ids with planted repeats, so that counts above 1 occur at every order."""
    x = np.minimum(rng.geometric(0.3, size=shape) - 1, v - 1)
    flat = x.reshape(-1)
    flat[flat.size // 2 : flat.size // 2 + 7] = flat[:7]
    return x


CASES = [((300,), 3), ((257,), 40), ((6, 23), 5), ((9, 11), 700), ((1, 40), 2), ((40, 3), 4)]


@pytest.mark.parametrize(("shape", "v"), CASES)
def test_word_counts_match_dictionary(shape, v):
    rng = np.random.default_rng(sum(shape) + v)
    x = random_tokens(rng, v, shape)
    for n in range(1, min(6, shape[-1]) + 1):
        codes, counts = word_counts(x, n, v)
        ref = dict_ngrams(x, n)
        assert counts.sum() == sum(ref.values())
        assert np.all(codes[1:] > codes[:-1])  # sorted, distinct
        assert codes.dtype == ngram_codes(x, n, v).dtype
        if codes.dtype == np.int64:  # exact packing: decode every word
            got = {decode(int(c), n, v): int(k) for c, k in zip(codes, counts, strict=True)}
            assert got == dict(ref)
        else:
            assert sorted(counts.tolist()) == sorted(ref.values())
        np.testing.assert_array_equal(count_values(ngram_codes(x, n, v)), counts)


@pytest.mark.parametrize(("shape", "v"), CASES)
def test_count_spectra_match_dictionary(shape, v):
    rng = np.random.default_rng(7 * sum(shape) + v)
    x = random_tokens(rng, v, shape)
    n_max = min(8, shape[-1])
    spectra = count_spectra(x, n_max, v)
    assert len(spectra) == n_max
    for n, spec in enumerate(spectra, start=1):
        ref = dict_ngrams(x, n)
        np.testing.assert_array_equal(spec.counts(), sorted(ref.values()))
        assert spec.n_samples == sum(ref.values())
        assert spec.n_distinct == len(ref)
        assert spec.n_singletons == sum(1 for c in ref.values() if c == 1)


def test_hash_and_exact_packing_count_alike():
    """Where both codes apply they give the same counts; beyond, the hash agrees with a dict."""
    rng = np.random.default_rng(3)
    x = random_tokens(rng, 8192, (4, 5000))
    for n in (1, 2, 3, 4):  # 13 bits per token: exact packing up to n = 4
        exact = counting._packed_codes(x, n, 8192)
        hashed = counting._hashed_codes(x, n)
        np.testing.assert_array_equal(exact, ngram_codes(x, n, 8192))
        np.testing.assert_array_equal(np.sort(count_values(exact)), np.sort(count_values(hashed)))
        # the two codes induce the same partition of the positions (no collision)
        n_e, n_h = np.unique(exact).size, np.unique(hashed).size
        assert n_e == n_h == np.unique(np.stack([exact, hashed.view(np.int64)]), axis=1).shape[1]
    for n in (5, 9):  # hashed in ngram_codes; exact in count_spectra
        assert ngram_codes(x, n, 8192).dtype == np.uint64
        ref = sorted(dict_ngrams(x, n).values())
        np.testing.assert_array_equal(np.sort(count_values(ngram_codes(x, n, 8192))), ref)
        np.testing.assert_array_equal(count_spectra(x, n, 8192)[-1].counts(), ref)


def test_pair_counts_match_dictionary_and_are_canonical():
    rng = np.random.default_rng(4)
    for v, m in ((1, 10), (5, 1000), (37, 5000), (3000, 4000)):
        x, y = rng.integers(0, v, m), rng.integers(0, v, m)
        c = pair_counts(x, y, v)
        assert isinstance(c, sp.csr_matrix) and c.shape == (v, v) and c.dtype == np.int64
        ref = Counter(zip(x.tolist(), y.tolist(), strict=True))
        assert c.nnz == len(ref)
        for (a, b), k in ref.items():
            assert c[a, b] == k
        assert c.has_canonical_format
        for i in range(v):  # sorted, distinct columns in every row
            cols = c.indices[c.indptr[i] : c.indptr[i + 1]]
            assert np.all(np.diff(cols) > 0)
    empty = pair_counts(np.zeros(0, int), np.zeros(0, int), 4)
    assert empty.shape == (4, 4) and empty.nnz == 0


def test_lag_pairs_never_cross_rows():
    x = np.arange(12).reshape(3, 4)
    a, b = lag_pairs(x, 2)
    pairs = list(zip(a.tolist(), b.tolist(), strict=True))
    assert pairs == [(0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11)]
    a, b = lag_pairs(x, 1, anchor="last")
    assert a.tolist() == [2, 6, 10] and b.tolist() == [3, 7, 11]
    rng = np.random.default_rng(5)
    t = rng.integers(0, 6, (7, 30))
    for lag in (1, 5, 29):
        ref = Counter((int(r[i]), int(r[i + lag])) for r in t for i in range(30 - lag))
        c = pair_counts(*lag_pairs(t, lag), 6).toarray()
        assert {(a, b): int(c[a, b]) for a, b in zip(*np.nonzero(c), strict=True)} == dict(ref)


def test_numpy_fallback_counts_alike(monkeypatch):
    """Without SciPy's compiled bucket sorts the NumPy path gives identical arrays."""
    rng = np.random.default_rng(6)
    x = random_tokens(rng, 50, (5, 200))
    fast_pairs = pair_counts(*lag_pairs(x, 3), 50)
    fast_spec = count_spectra(x, 6, 50)
    monkeypatch.setattr(counting, "_HAVE_SPARSETOOLS", False)
    slow_pairs = pair_counts(*lag_pairs(x, 3), 50)
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(slow_pairs, attr), getattr(fast_pairs, attr))
    for a, b in zip(count_spectra(x, 6, 50), fast_spec, strict=True):
        np.testing.assert_array_equal(a.r, b.r)
        np.testing.assert_array_equal(a.n_r, b.n_r)


def test_dense_histogram_and_sort_paths_agree(monkeypatch):
    codes = np.random.default_rng(8).integers(0, 50, 1000)
    dense = counting._unique_counts(codes)
    monkeypatch.setattr(counting, "_DENSE_MIN", 0)
    monkeypatch.setattr(counting, "_DENSE_FACTOR", 0)
    sort = counting._unique_counts(codes)
    for a, b in zip(dense, sort, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sort[0].dtype == dense[0].dtype == codes.dtype


def fsum_entropy(counts: list[int]) -> float:
    n = sum(counts)
    return -math.fsum(c / n * math.log(c / n) for c in counts)


@pytest.mark.parametrize("shape", [(20_000,), (50, 300)])
def test_conditional_entropies_match_dictionary_counts(shape):
    """H_n from the engine equals H_n from dictionary counts: plug-in and Miller-Madow to 1e-12
    (the spectrum sums fewer terms, so it is the more accurate of the two), NSB bit for bit."""
    rng = np.random.default_rng(9)
    x = random_tokens(rng, 12, shape)
    prof = conditional_entropies(x, 4, n_vocab=12)
    s_pi, s_mm, s_nsb = [0.0], [0.0], [0.0]
    for n in range(1, 6):
        c = list(dict_ngrams(x, n).values())
        s_pi.append(fsum_entropy(c))
        s_mm.append(s_pi[-1] + (len(c) - 1) / (2 * sum(c)))
        s_nsb.append(entropy_nsb(np.array(c), 12.0**n)[0])
        assert prof.n_samples[n - 1] == sum(c)
        assert prof.unseen_mass[n - 1] == sum(1 for k in c if k == 1) / sum(c)
    np.testing.assert_allclose(prof.block_plugin, s_pi, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(prof.plugin, np.diff(s_pi), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(prof.miller_madow, np.diff(s_mm), rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(prof.nsb, np.diff(s_nsb))


def dense_strength(x: np.ndarray, y: np.ndarray, v: int) -> tuple[float, float]:
    joint = np.zeros((v, v))
    for (a, b), k in Counter(zip(x.tolist(), y.tolist(), strict=True)).items():
        joint[a, b] = k
    joint /= x.size
    c = joint - np.outer(joint.sum(1), joint.sum(0))
    return float(np.linalg.norm(c, 2)), float(np.linalg.norm(c))


def test_lagged_correlations_match_dense_reference(monkeypatch):
    """Sparse path (Lanczos) against a dense SVD of dictionary counts, and the random draws in
    their documented order: per lag a start vector, then (floor lags) the permutation of the
    second members and the floor's start vector."""
    monkeypatch.setattr(stats_mod, "DENSE_SVD_MAX_V", 2)  # force the sparse path at small V
    rng = np.random.default_rng(10)
    v = 9
    x = random_tokens(rng, v, (8, 400))
    x[:, 1::3] = x[:, ::3][:, : x[:, 1::3].shape[1]]  # correlations at short lags
    lags = [1, 2, 3, 5, 8]
    prof = lagged_correlations(x, lags, n_vocab=v, rng=np.random.default_rng(11), n_floor_lags=2)
    replay = np.random.default_rng(11)
    for k, lag in enumerate(lags):
        a, b = lag_pairs(x, lag)
        top, frob = dense_strength(a, b, v)
        assert prof.top_sv[k] == pytest.approx(top, rel=1e-10)
        assert prof.frobenius[k] == pytest.approx(frob, rel=1e-12)
        assert prof.n_pairs[k] == a.size
        replay.standard_normal(v)
        if k in (0, len(lags) - 1):  # the floor lags
            f_top, f_frob = dense_strength(a, replay.permutation(b), v)
            replay.standard_normal(v)
            assert prof.floor_top_sv[k] == pytest.approx(f_top, rel=1e-10)
            assert prof.floor_frobenius[k] == pytest.approx(f_frob, rel=1e-12)


def test_lagged_correlations_do_not_depend_on_threads():
    rng = np.random.default_rng(12)
    x = rng.integers(0, 700, 30_000)  # V > DENSE_SVD_MAX_V: the Lanczos path
    x[5000:5300] = x[:300]
    runs = [
        lagged_correlations(x, np.arange(1, 9), rng=np.random.default_rng(13), n_threads=t)
        for t in (1, 2, 3)
    ]
    for r in runs[1:]:
        for name in ("top_sv", "frobenius", "floor_top_sv", "floor_frobenius", "n_pairs"):
            np.testing.assert_array_equal(getattr(r, name), getattr(runs[0], name))
    split = [
        lagged_correlations(
            x, [1, 4], floor="split", rng=np.random.default_rng(1), n_threads=t
        ).floor_top_sv
        for t in (1, 2)
    ]
    np.testing.assert_array_equal(split[0], split[1])


def test_bad_input_raises():
    with pytest.raises(PiamiTypeError, match="integer ids"):
        check_tokens(np.array([0.5, 1.0]))
    with pytest.raises(PiamiValueError, match=">= 0"):
        check_tokens(np.array([0, -1]))
    with pytest.raises(PiamiValueError, match="1-D stream or 2-D"):
        check_tokens(np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(PiamiValueError, match="1-D stream or 2-D"):
        check_tokens(np.zeros(0, dtype=int))
    with pytest.raises(PiamiValueError, match="pass n_vocab >= 4"):
        check_tokens(np.array([0, 3]), 2)
    with pytest.raises(PiamiTypeError, match="n_vocab must be an int"):
        check_tokens(np.array([0, 3]), True)
    x = np.array([0, 1, 1, 0])
    for bad in (0, -1, True, 2.0, 5):
        with pytest.raises(PiamiValueError, match="n-gram order"):
            ngram_codes(x, bad, 2)
        with pytest.raises(PiamiValueError, match="n-gram order"):
            word_counts(x, bad, 2)
    with pytest.raises(PiamiValueError, match="n_max"):
        count_spectra(x, 5, 2)
    with pytest.raises(PiamiValueError, match="equal lengths"):
        pair_counts(np.array([0, 1]), np.array([1]), 2)
    with pytest.raises(PiamiValueError, match="outside"):
        pair_counts(np.array([0, 2]), np.array([1, 1]), 2)
    with pytest.raises(PiamiValueError, match="outside"):
        pair_counts(np.array([0, 1]), np.array([-1, 1]), 2)
    with pytest.raises(PiamiTypeError, match="int ids"):
        pair_counts(np.array([0.0, 1.0]), np.array([1, 1]), 2)
    with pytest.raises(PiamiValueError, match="n_vocab"):
        pair_counts(np.array([0]), np.array([0]), 0)
    with pytest.raises(PiamiValueError, match="lag must be"):
        lag_pairs(x, 4)
    with pytest.raises(PiamiValueError, match="anchor='last' needs 2-D"):
        lag_pairs(x, 1, anchor="last")
    with pytest.raises(PiamiValueError, match="n_threads"):
        lagged_correlations(x, [1], n_threads=0)
    with pytest.raises(PiamiTypeError, match="n_threads"):
        lagged_correlations(x, [1], n_threads=1.5)
