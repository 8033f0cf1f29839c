"""The compiled pair counters give the counting sorts' matrices; the statistics agree either way."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from piami.instruments import _pair_kernels as pk
from piami.instruments import statistics
from piami.instruments.counting import pair_counts
from piami.instruments.statistics import lagged_correlations

pytestmark = pytest.mark.skipif(not pk.HAVE_NUMBA, reason="numba is not installed")


def _matrix(csr: tuple[np.ndarray, np.ndarray, np.ndarray], v: int) -> sp.csr_matrix:
    indptr, indices, data = (a.copy() for a in csr)
    m = sp.csr_matrix((data.astype(np.int64), indices, indptr), shape=(v, v))
    m.sum_duplicates()  # sorts the columns; would also merge duplicates (there must be none)
    return m


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return a.shape == b.shape and (a != b).nnz == 0


@pytest.mark.parametrize("v", [2, 7, 300])
def test_chunk_counts_equal_counting_sorts_for_a_stream(v: int) -> None:
    rng = np.random.default_rng(v)
    x = rng.integers(0, v, 5_000)
    x[100:400] = x[1000:1300]  # a copied span: correlated pairs
    lags = np.array([1, 2, 5, 64])
    got = pk.lag_chunk_counts(x, x.size, pk.group_offsets(x, v), lags, v)
    for d, csr in zip(lags, got, strict=True):
        # no duplicate columns within a row, as promised
        for r in range(v):
            cols = csr[1][csr[0][r] : csr[0][r + 1]]
            assert np.unique(cols).size == cols.size
        assert _same(_matrix(csr, v), pair_counts(x[:-d], x[d:], v))


def test_chunk_counts_never_cross_rows() -> None:
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 5, (40, 9))
    v, lags = 5, np.array([1, 3, 8])
    flat = rows.ravel()
    got = pk.lag_chunk_counts(flat, rows.shape[1], pk.group_offsets(flat, v), lags, v)
    for d, csr in zip(lags, got, strict=True):
        expected = pair_counts(rows[:, :-d].ravel(), rows[:, d:].ravel(), v)
        assert _same(_matrix(csr, v), expected)
        assert csr[2].sum() == rows.shape[0] * (rows.shape[1] - d)
    # a broken kernel that let pairs straddle rows would count the flat stream's pairs instead
    straddling = pair_counts(flat[:-8], flat[8:], v)
    assert not _same(_matrix(got[2], v), straddling)


def test_buffers_grow_past_a_wrong_size_hint() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 50, 20_000)
    scratch = {"nnz_hint": 1}  # far too small: every row forces the growth path
    got = pk.lag_chunk_counts(x, x.size, pk.group_offsets(x, 50), np.array([1, 2]), 50, scratch)
    assert _same(_matrix(got[1], 50), pair_counts(x[:-2], x[2:], 50))
    assert scratch["nnz_hint"] >= got[0][0][-1]


def test_pair_counts_csr_equals_counting_sorts() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 40, 3_000), rng.integers(0, 40, 3_000)
    assert _same(_matrix(pk.pair_counts_csr(a, b, 40), 40), pair_counts(a, b, 40))


@pytest.mark.parametrize("shape", [(30_000,), (300, 100)])
@pytest.mark.parametrize("floor", ["shuffle", "split"])
def test_lagged_correlations_agree_with_and_without_the_kernels(
    shape: tuple[int, ...], floor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(4)
    v = 600  # above DENSE_SVD_MAX_V: the Lanczos path
    x = rng.integers(0, v, int(np.prod(shape)))
    x[5_000:9_000] = x[:4_000]
    x = x.reshape(shape)
    kw = {"n_vocab": v, "floor": floor, "n_floor_lags": 2}
    lags = [1, 2, 3, 5, 8, 13, 21]
    fast = lagged_correlations(x, lags, rng=np.random.default_rng(5), **kw)
    monkeypatch.setattr(statistics._pk, "HAVE_NUMBA", False)
    slow = lagged_correlations(x, lags, rng=np.random.default_rng(5), **kw)
    for name in ("top_sv", "frobenius", "floor_top_sv", "floor_frobenius"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-9)
    np.testing.assert_array_equal(fast.n_pairs, slow.n_pairs)
    # the same inputs give the same numbers, bit for bit, on one or two threads
    again = lagged_correlations(x, lags, rng=np.random.default_rng(5), n_threads=1, **kw)
    monkeypatch.undo()
    one = lagged_correlations(x, lags, rng=np.random.default_rng(5), n_threads=1, **kw)
    two = lagged_correlations(x, lags, rng=np.random.default_rng(5), n_threads=2, **kw)
    np.testing.assert_array_equal(one.top_sv, two.top_sv)
    np.testing.assert_array_equal(one.frobenius, fast.frobenius)
    assert again.lags.tolist() == lags
