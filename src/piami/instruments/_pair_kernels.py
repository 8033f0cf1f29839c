"""Compiled kernels (Numba) for the lagged correlation operator at scale.

:func:`piami.instruments.statistics.lagged_correlations` needs, at each lag ``n``, the sparse
``V x V`` count matrix of the pairs ``(x_t, x_{t+n})`` and the top singular value of
``C = P - p q^T``. With SciPy alone, the counting is two counting sorts whose passes each scatter
``10**7`` pairs across the whole array, so their cost is cache misses. The kernels here count in
passes that stay in cache:

* **counting, several lags per pass** (:func:`lag_chunk_counts`): one sequential pass writes each
  position's neighbours ``x_{t+n}`` (for a chunk of lags) as a short record into the slot of its
  token's group (a counting sort whose writes go to ``V`` streams); a second pass reads the records
  group by group and counts them in a dense ``V``-entry counter per lag that lives in L2. The
  count matrix comes out in CSR form with each row's columns in first-seen order (no sort: the
  products below do not need sorted columns).
The matrices are those of the counting sorts up to the order of the columns within a row (tested);
the statistics computed from them agree up to the order of floating-point additions, and the same
inputs always give the same numbers.
"""

from __future__ import annotations

import numpy as np

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; SciPy remains as a fallback
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "group_offsets", "lag_chunk_counts", "pair_counts_csr"]


def _jit(fn):
    if not HAVE_NUMBA:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


@_jit
def _group_offsets(keys, v):
    ptr = np.zeros(v + 1, np.int64)
    for t in range(keys.size):
        ptr[keys[t] + 1] += 1
    for r in range(v):
        ptr[r + 1] += ptr[r]
    return ptr


@_jit
def _count_groups(records, ptr, v, cap):
    """Count the records of each group (row) per column of ``records`` (one column per lag).

    ``records[s, j]`` is the second member of pair ``s`` at lag ``j`` (-1: no pair). Returns
    ``(indptr, indices, counts)`` with one row per lag.
    """
    n_lags = records.shape[1]
    cnt = np.zeros((n_lags, v), np.int32)  # int32: the counters of a chunk stay in L2
    touched = np.empty((n_lags, v), np.int32)
    n_touched = np.zeros(n_lags, np.int64)
    out_ptr = np.zeros((n_lags, v + 1), np.int64)
    out_idx = np.empty((n_lags, cap), np.int32)
    out_dat = np.empty((n_lags, cap), np.int32)
    nnz = np.zeros(n_lags, np.int64)
    for r in range(v):
        lo, hi = ptr[r], ptr[r + 1]
        need = nnz.max() + min(v, hi - lo)
        if need > cap:  # grow every lag's buffer (amortized doubling)
            new_cap = max(need, 2 * cap)
            grown_idx = np.empty((n_lags, new_cap), np.int32)
            grown_dat = np.empty((n_lags, new_cap), np.int32)
            for j in range(n_lags):
                grown_idx[j, : nnz[j]] = out_idx[j, : nnz[j]]
                grown_dat[j, : nnz[j]] = out_dat[j, : nnz[j]]
            out_idx, out_dat, cap = grown_idx, grown_dat, new_cap
        n_touched[:] = 0
        for s in range(lo, hi):
            for j in range(n_lags):
                c = records[s, j]
                if c >= 0:
                    if cnt[j, c] == 0:
                        touched[j, n_touched[j]] = c
                        n_touched[j] += 1
                    cnt[j, c] += 1
        for j in range(n_lags):
            base = nnz[j]
            for i in range(n_touched[j]):
                c = touched[j, i]
                out_idx[j, base + i] = c
                out_dat[j, base + i] = cnt[j, c]
                cnt[j, c] = 0
            nnz[j] = base + n_touched[j]
            out_ptr[j, r + 1] = nnz[j]
    return out_ptr, out_idx, out_dat


@_jit
def _scatter_lags(tok, row_len, ptr, lags, records):
    fill = ptr[:-1].copy()
    for t in range(tok.size):
        a = tok[t]
        slot = fill[a]
        fill[a] += 1
        room = row_len - t % row_len  # pairs never cross from one row into the next
        for j in range(lags.size):
            records[slot, j] = tok[t + lags[j]] if lags[j] < room else -1


@_jit
def _scatter_pairs(x, y, ptr, records):
    fill = ptr[:-1].copy()
    for t in range(x.size):
        a = x[t]
        records[fill[a], 0] = y[t]
        fill[a] += 1


def group_offsets(keys: np.ndarray, n_vocab: int) -> np.ndarray:
    """Offsets of a counting sort by key: ``ptr[a+1] - ptr[a]`` positions hold key ``a``.

    Args:
        keys: 1-D int array with values in ``[0, n_vocab)`` (unchecked).
        n_vocab: number of groups.

    Returns:
        the int64 offsets, length ``n_vocab + 1``.
    """
    return _group_offsets(np.ascontiguousarray(keys), int(n_vocab))


def _records(
    scratch: dict | None, shape: tuple[int, int], n_vocab: int, key: str = "records"
) -> np.ndarray:
    dtype = np.int16 if n_vocab < 2**15 else np.int32
    rec = None if scratch is None else scratch.get(key)
    if rec is None or rec.shape != shape or rec.dtype != dtype:
        rec = np.empty(shape, dtype)
        if scratch is not None:
            scratch[key] = rec
    return rec


def _split(out: tuple, n_lags: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out_ptr, out_idx, out_dat = out
    res = []
    for j in range(n_lags):
        nnz = int(out_ptr[j, -1])
        res.append((out_ptr[j], out_idx[j, :nnz], out_dat[j, :nnz]))  # views, no copy
    return res


def lag_chunk_counts(
    tokens: np.ndarray,
    row_len: int,
    offsets: np.ndarray,
    lags: np.ndarray,
    n_vocab: int,
    scratch: dict | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """CSR counts of the pairs ``(x_t, x_{t+n})`` for several lags ``n``, in one pass.

    Args:
        tokens: the flattened token array (1-D, values in ``[0, n_vocab)``, unchecked).
        row_len: length of each row of the original ``(n_seqs, seq_len)`` array (the stream's
            length for a 1-D stream); pairs never cross a row boundary.
        offsets: ``group_offsets(tokens, n_vocab)``, computed once for all chunks.
        lags: 1-D int array of lags, each in ``[1, row_len)``.
        n_vocab: ``V``.
        scratch: a dict in which the working array (``len(tokens) * len(lags)`` small ints) and
            the last size seen are kept for the next call on the same thread.

    Returns:
        one ``(indptr, indices, counts)`` per lag: rows are first members, each row's columns
        distinct and in first-seen order, int32 counts.
    """
    lags = np.ascontiguousarray(lags, dtype=np.int64)
    tokens = np.ascontiguousarray(tokens)
    rec = _records(scratch, (tokens.size, lags.size), n_vocab)
    _scatter_lags(tokens, int(row_len), offsets, lags, rec)
    cap = (scratch or {}).get("nnz_hint", min(tokens.size, n_vocab * n_vocab) // 4)
    out = _count_groups(rec, offsets, int(n_vocab), int(cap) + int(n_vocab))
    if scratch is not None:
        scratch["nnz_hint"] = int(1.05 * out[0][:, -1].max())
    return _split(out, lags.size)


def pair_counts_csr(
    x: np.ndarray, y: np.ndarray, n_vocab: int, scratch: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR counts of the pairs ``(x[k], y[k])``, as :func:`lag_chunk_counts` gives them.

    Members: 1-D int arrays of equal length with values in ``[0, n_vocab)`` (unchecked).
    """
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    ptr = _group_offsets(x, int(n_vocab))
    rec = _records(scratch, (x.size, 1), n_vocab, key="pair_records")
    _scatter_pairs(x, y, ptr, rec)
    cap = (scratch or {}).get("nnz_hint", min(x.size, n_vocab * n_vocab) // 4)
    out = _count_groups(rec, ptr, int(n_vocab), int(cap) + int(n_vocab))
    return _split(out, 1)[0]
