"""One counting engine for token streams: n-grams, words with their codes, lagged pairs.

Everything that counts tokens in piami goes through this module: the n-gram entropies
(:mod:`piami.instruments.entropy`), the lagged correlation operator
(:mod:`piami.instruments.statistics`), reconstruction of machines from data
(:mod:`piami.instruments.reconstruction`), ``piami stats`` and the statistics benchmark.

Token arrays are a 1-D stream or a 2-D ``(n_seqs, seq_len)`` array of int ids; windows and pairs
never cross from one row into the next.

How it counts, without a Python dictionary:

* **n-gram codes** (:func:`ngram_codes`): the n-gram ``(x_1, ..., x_n)`` is packed exactly into the
  int64 ``sum_k x_k V**(n-k)`` while ``n * ceil(log2 V) <= 62``, and by a 64-bit polynomial
  rolling hash beyond (collision probability about ``N**2 / 2**64``, negligible at ``N = 10**8``).
* **distinct values** (:func:`count_values`, :func:`word_counts`): a dense histogram
  (``np.bincount``) when the codes span a small range, else a sort and a run-length read. Either
  way the counts come in ascending code order.
* **pairs** (:func:`pair_counts`): two stable counting sorts -- by the second member into ``V``
  buckets, then by the first -- give the pair list in ``(a, b)`` order in linear time; equal
  neighbours are merged. The result is the sparse ``V x V`` count matrix in canonical CSR form
  (sorted column indices, no duplicates).
* **all n-gram orders at once** (:func:`count_spectra`): the k-grams are grouped by refining the
  groups of (k-1)-grams by the next token (two stable counting sorts per order, as for pairs). A
  (k-1)-gram seen once has every extension seen once, so its positions leave the working set;
  beyond the first few orders only repeated contexts are left to sort. What is returned per order
  is the count spectrum (how many distinct k-grams were seen ``r`` times, for each ``r``), which
  is all an entropy estimator needs, and it is exact: no hashing.

The counting sorts use SciPy's compiled sparse-format conversions (``coo_tocsr``, ``csr_tocsc``),
which run in linear time and release the GIL; where they are unavailable a NumPy stable sort
takes their place, with the same results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from piami.errors import PiamiTypeError, PiamiValueError

try:  # compiled linear-time bucket sorts: a private SciPy module, so its absence is handled
    from scipy.sparse import _sparsetools as _st

    _HAVE_SPARSETOOLS = all(
        hasattr(_st, f) for f in ("coo_tocsr", "csr_tocsc", "csr_sum_duplicates")
    )
except ImportError:  # pragma: no cover - SciPy without the module
    _st = None
    _HAVE_SPARSETOOLS = False

_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden ratio)
_DENSE_FACTOR = 4  # a histogram is used when the code range is below this times the sample size
_DENSE_MIN = 1 << 16  # ... or below this many bins


def check_tokens(tokens: object, n_vocab: int | None = None) -> tuple[np.ndarray, int]:
    """Validate a token array (1-D stream or 2-D rows of int ids) and return it with ``V``.

    Args:
        tokens: integer ids ``>= 0``; a NumPy array, anything ``np.asarray`` reads, or a torch
            tensor.
        n_vocab: vocabulary size ``V``; default ``max + 1``.

    Returns:
        ``(tokens as int64, V)``.

    Raises:
        PiamiTypeError: non-integer tokens or a non-int ``n_vocab``.
        PiamiValueError: empty or wrongly shaped tokens, negative ids, or ids ``>= n_vocab``.

    Examples:
        >>> check_tokens([0, 2, 1])[1]
        3
    """
    if not isinstance(tokens, np.ndarray):
        if hasattr(tokens, "numpy"):  # torch tensor
            tokens = tokens.detach().cpu().numpy()
        else:
            try:
                tokens = np.asarray(tokens)
            except (TypeError, ValueError) as exc:
                raise PiamiTypeError(
                    f"tokens must be an integer array, got {type(tokens)}"
                ) from exc
    if tokens.dtype.kind not in "iu":
        raise PiamiTypeError(
            f"tokens must be integer ids, got dtype {tokens.dtype}; tokenize the text first"
        )
    if tokens.ndim not in (1, 2) or tokens.size == 0:
        raise PiamiValueError(
            f"tokens must be a non-empty 1-D stream or 2-D (n_seqs, seq_len) array, got shape "
            f"{tokens.shape}"
        )
    if tokens.min() < 0:
        raise PiamiValueError(f"token ids must be >= 0, got min {tokens.min()}")
    top = int(tokens.max()) + 1
    if n_vocab is None:
        n_vocab = top
    elif isinstance(n_vocab, bool) or not isinstance(n_vocab, (int, np.integer)):
        raise PiamiTypeError(f"n_vocab must be an int, got {n_vocab!r}")
    elif n_vocab < top:
        raise PiamiValueError(
            f"n_vocab={n_vocab} but tokens hold id {top - 1}; pass n_vocab >= {top}"
        )
    return tokens.astype(np.int64, copy=False), int(n_vocab)


def _check_order(n: object, length: int, what: str = "n-gram order") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise PiamiValueError(f"{what} must be an int >= 1, got {n!r}")
    if n > length:
        raise PiamiValueError(f"{what} {n} exceeds the sequence length {length}")
    return int(n)


def _packs_exactly(n: int, n_vocab: int) -> bool:
    return n * max(1, math.ceil(math.log2(max(n_vocab, 2)))) <= 62


def ngram_codes(tokens: np.ndarray, n: int, n_vocab: int) -> np.ndarray:
    """One code per n-gram of a 1-D stream or within each row of a 2-D array.

    Exact packing ``sum_k x_k V**(n-1-k)`` (int64, lexicographic order) while
    ``n * ceil(log2 V) <= 62``, else a 64-bit polynomial rolling hash (uint64).

    Args:
        tokens: validated int ids (see :func:`check_tokens`), 1-D or 2-D.
        n: the n-gram order, ``1 <= n <= tokens.shape[-1]``.
        n_vocab: vocabulary size ``V``.

    Returns:
        1-D codes, row-major over the n-gram start positions of every row.

    Examples:
        >>> ngram_codes(np.array([1, 0, 1]), 2, 2).tolist()
        [2, 1]
    """
    n = _check_order(n, tokens.shape[-1])
    if _packs_exactly(n, n_vocab):
        return _packed_codes(tokens, n, n_vocab)
    return _hashed_codes(tokens, n)


def _windows(tokens: np.ndarray, n: int) -> list[np.ndarray]:
    length = tokens.shape[-1]
    return [tokens[..., k : length - n + 1 + k] for k in range(n)]


def _packed_codes(tokens: np.ndarray, n: int, n_vocab: int) -> np.ndarray:
    """Exact int64 codes ``sum_k x_k V**(n-1-k)`` (needs ``V**n < 2**63``)."""
    views = _windows(tokens, n)
    code = views[0].astype(np.int64)
    for w in views[1:]:
        code = code * n_vocab + w
    return code.ravel()


def _hashed_codes(tokens: np.ndarray, n: int) -> np.ndarray:
    """64-bit polynomial rolling hash of each n-gram (uint64), any ``n`` and ``V``."""
    views = _windows(tokens, n)
    with np.errstate(over="ignore"):
        code = views[0].astype(np.uint64) + np.uint64(1)
        for w in views[1:]:
            code = code * _HASH_MULT + (w.astype(np.uint64) + np.uint64(1))
        code ^= code >> np.uint64(29)
    return code.ravel()


def _dense_span(codes: np.ndarray) -> int | None:
    """``max + 1`` when the codes are non-negative and span a range worth a histogram."""
    if codes.dtype.kind not in "iu" or codes.size == 0:
        return None
    lo, hi = codes.min(), codes.max()
    if lo < 0 or hi >= max(_DENSE_FACTOR * codes.size, _DENSE_MIN):
        return None
    return int(hi) + 1


def _unique_counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct codes and their counts (``np.unique(..., return_counts=True)``)."""
    codes = np.ravel(codes)
    if codes.size == 0:
        return codes[:0].copy(), np.zeros(0, dtype=np.int64)
    span = _dense_span(codes)
    if span is not None:
        hist = np.bincount(codes.astype(np.intp, copy=False), minlength=span)
        uniq = np.flatnonzero(hist)
        return uniq.astype(codes.dtype, copy=False), hist[uniq].astype(np.int64, copy=False)
    s = np.sort(codes)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return s[starts], np.diff(np.append(starts, s.size))


def count_values(codes: np.ndarray) -> np.ndarray:
    """Counts of each distinct value, in ascending order of the value.

    Args:
        codes: 1-D array of codes (e.g. from :func:`ngram_codes`).

    Returns:
        int64 counts, one per distinct value.

    Examples:
        >>> count_values(np.array([5, 3, 5, 5])).tolist()
        [1, 3]
    """
    return _unique_counts(codes)[1]


def word_counts(
    tokens: object, length: int, n_vocab: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct words of a given length and how often each occurs.

    Words are counted at every start position of a 1-D stream, or within each row of a 2-D array.

    Args:
        tokens: int ids, 1-D stream or ``(n_seqs, seq_len)``.
        length: word length ``L >= 1``.
        n_vocab: vocabulary size ``V`` (default ``max + 1``).

    Returns:
        ``(codes, counts)``: the sorted distinct codes of :func:`ngram_codes` (int64 exact packing
        or uint64 hashes) and their int64 counts, as ``np.unique(ngram_codes(tokens, length, V),
        return_counts=True)`` would give them.

    Raises:
        PiamiValueError, PiamiTypeError: bad tokens, or a length outside ``1..seq_len``.

    Examples:
        >>> codes, counts = word_counts([0, 1, 0, 1, 1], 2)
        >>> codes.tolist(), counts.tolist()
        ([1, 2, 3], [2, 1, 1])
    """
    tokens, v = check_tokens(tokens, n_vocab)
    return _unique_counts(ngram_codes(tokens, length, v))


def lag_pairs(
    tokens: np.ndarray, lag: int, *, anchor: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The aligned pair members ``(x_i, x_{i+lag})`` of a 1-D stream or within 2-D rows.

    Args:
        tokens: validated int ids, 1-D or ``(n_seqs, seq_len)``.
        lag: distance ``1 <= lag < seq_len``.
        anchor: ``None`` pools all pairs; ``"last"`` keeps only the pair ending at the last
            position of each row (2-D only).

    Returns:
        ``(x, y)``, two 1-D arrays of equal length (views where the layout allows).

    Examples:
        >>> [a.tolist() for a in lag_pairs(np.array([1, 2, 3]), 2)]
        [[1], [3]]
    """
    length = tokens.shape[-1]
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or not 1 <= lag < length:
        raise PiamiValueError(f"lag must be an int in [1, {length}), got {lag!r}")
    if anchor == "last":
        if tokens.ndim != 2:
            raise PiamiValueError("anchor='last' needs 2-D (n_seqs, seq_len) tokens")
        return tokens[:, length - 1 - lag], tokens[:, length - 1]
    if anchor is not None:
        raise PiamiValueError(f"anchor must be None (pooled) or 'last', got {anchor!r}")
    if tokens.ndim == 1:
        return tokens[:-lag], tokens[lag:]
    return tokens[:, :-lag].ravel(), tokens[:, lag:].ravel()


def _index_dtype(*sizes: int) -> type:
    return np.int32 if max(sizes) < 2**31 - 1 else np.int64


def _bucket_sort(
    keys: np.ndarray, n_buckets: int, pay_a: np.ndarray, pay_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable counting sort of two payloads by ``keys`` in ``[0, n_buckets)``.

    Returns ``(indptr, a, b)``: bucket ``g`` holds ``a[indptr[g]:indptr[g+1]]`` (and ``b``), in
    their input order. ``keys`` and ``pay_a`` must share one index dtype (int32 or int64).
    """
    m = keys.size
    if _HAVE_SPARSETOOLS:
        idx = keys.dtype
        indptr = np.empty(n_buckets + 1, dtype=idx)
        out_a = np.empty(m, dtype=idx)
        out_b = np.empty(m, dtype=pay_b.dtype)
        _st.coo_tocsr(n_buckets, 1, m, keys, pay_a, pay_b, indptr, out_a, out_b)
        return indptr, out_a, out_b
    perm = np.argsort(keys, kind="stable")
    indptr = np.zeros(n_buckets + 1, dtype=keys.dtype)
    np.cumsum(np.bincount(keys, minlength=n_buckets), out=indptr[1:])
    return indptr, pay_a[perm], pay_b[perm]


def pair_counts(x: np.ndarray, y: np.ndarray, n_vocab: int) -> sp.csr_matrix:
    """Sparse ``(V, V)`` int64 counts of the pairs ``(x[k], y[k])``.

    Two stable counting sorts (by ``y``, then by ``x``) in linear time; the result is canonical
    CSR (column indices sorted within each row, no duplicates).

    Args:
        x: 1-D int array with values in ``[0, n_vocab)``.
        y: int array of the same length and range.
        n_vocab: ``V``.

    Returns:
        a ``scipy.sparse.csr_matrix`` of shape ``(V, V)``.

    Raises:
        PiamiValueError: arrays of different lengths, values outside ``[0, V)``, or a bad ``V``.
        PiamiTypeError: members that are not integer arrays.

    Examples:
        >>> pair_counts(np.array([0, 0, 1]), np.array([1, 1, 0]), 2).toarray().tolist()
        [[0, 2], [1, 0]]
    """
    x, y = np.ravel(x), np.ravel(y)
    if x.shape != y.shape:
        raise PiamiValueError(f"pair members must have equal lengths, got {x.size} and {y.size}")
    if isinstance(n_vocab, bool) or not isinstance(n_vocab, (int, np.integer)) or n_vocab < 1:
        raise PiamiValueError(f"n_vocab must be an int >= 1, got {n_vocab!r}")
    v = int(n_vocab)
    for name, arr in (("x", x), ("y", y)):
        if arr.dtype.kind not in "iu":
            raise PiamiTypeError(f"pair member {name} must hold int ids, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= v):
            raise PiamiValueError(
                f"pair member {name} holds ids outside [0, {v}); pass n_vocab > {arr.max()}"
            )
    return _pair_counts(x, y, v)


def _buffer(
    store: dict | None, name: str, size: int, dtype: type, fill: int | None = None
) -> np.ndarray:
    """A scratch array of ``size`` elements, reused from ``store`` across calls when possible."""
    if store is None:
        return np.full(size, fill, dtype=dtype) if fill is not None else np.empty(size, dtype)
    a = store.get(name)
    if a is None or a.size < size or a.dtype != dtype:
        store[name] = a = (
            np.full(size, fill, dtype=dtype) if fill is not None else np.empty(size, dtype)
        )
    return a[:size]


def _pair_counts(
    x: np.ndarray, y: np.ndarray, v: int, scratch: dict | None = None
) -> sp.csr_matrix:
    """:func:`pair_counts` on members already known to lie in ``[0, v)``.

    ``scratch``: a dict in which the working arrays (18 bytes per pair) are kept for the next call
    on the same thread.
    """
    if x.size == 0:
        return sp.csr_matrix((v, v), dtype=np.int64)
    idx = _index_dtype(x.size, v)
    x, y = x.astype(idx, copy=False), y.astype(idx, copy=False)
    m = x.size
    if not _HAVE_SPARSETOOLS:
        uniq, counts = _unique_counts(x.astype(np.int64) * v + y)
        rows, cols = np.divmod(uniq, v)
        indptr = np.zeros(v + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=v), out=indptr[1:])
        out = sp.csr_matrix((counts, cols.astype(idx), indptr.astype(idx)), shape=(v, v))
        out.has_canonical_format = True
        return out
    cnt = np.int32 if m < 2**31 - 1 else np.int64
    ones = _buffer(scratch, "ones", m, cnt, fill=1)
    tp, pp = np.empty(v + 1, dtype=idx), np.empty(v + 1, dtype=idx)
    tj = _buffer(scratch, "tj", m, idx)
    pj = _buffer(scratch, "pj", m, idx)
    px = _buffer(scratch, "px", m, cnt)
    # bucket by y (rows y, columns x in position order; its data, one byte per pair, is unused),
    # then transpose: rows x, columns y ascending, data all ones; then merge equal neighbours
    ones8, junk8 = (
        _buffer(scratch, "ones8", m, np.int8, fill=1),
        _buffer(scratch, "junk8", m, np.int8),
    )
    _st.coo_tocsr(v, v, m, y, x, ones8, tp, tj, junk8)
    _st.csr_tocsc(v, v, tp, tj, ones, pp, pj, px)
    _st.csr_sum_duplicates(v, v, pp, pj, px)  # in place; pp[v] is the new nnz
    nnz = int(pp[v])
    out = sp.csr_matrix((px[:nnz].astype(np.int64), pj[:nnz].copy(), pp), shape=(v, v))
    out.has_canonical_format = True
    return out


@dataclass(frozen=True)
class CountSpectrum:
    """How many distinct words were seen ``r`` times, for each ``r`` (Good's ``N_r``).

    Attributes:
        r: ``(m,)`` ascending distinct counts, int64.
        n_r: ``(m,)`` number of distinct words seen exactly ``r[i]`` times, int64.
    """

    r: np.ndarray
    n_r: np.ndarray

    @property
    def n_samples(self) -> int:
        """Number of words counted, ``sum r N_r``."""
        return int(self.r @ self.n_r)

    @property
    def n_distinct(self) -> int:
        """Number of distinct words seen, ``sum N_r``."""
        return int(self.n_r.sum())

    @property
    def n_singletons(self) -> int:
        """Number of words seen exactly once, ``N_1``."""
        return int(self.n_r[0]) if self.r.size and self.r[0] == 1 else 0

    def counts(self) -> np.ndarray:
        """The counts themselves, ascending (``np.sort(count_values(...))``)."""
        return np.repeat(self.r, self.n_r)


def _spectrum(counts: np.ndarray, extra_ones: int = 0) -> CountSpectrum:
    r, n_r = _unique_counts(counts)
    r, n_r = r.astype(np.int64, copy=False), n_r.astype(np.int64, copy=False)
    if extra_ones:
        if r.size and r[0] == 1:
            n_r = n_r.copy()
            n_r[0] += extra_ones
        else:
            r, n_r = np.append(np.int64(1), r), np.append(np.int64(extra_ones), n_r)
    return CountSpectrum(r=r, n_r=n_r)


def count_spectra(tokens: object, n_max: int, n_vocab: int | None = None) -> list[CountSpectrum]:
    """Count spectra of the k-grams for every order ``k = 1..n_max``, exactly.

    The k-grams of a 1-D stream, or within each row of a 2-D array, are grouped by refining the
    groups of (k-1)-grams by their next token; contexts seen once drop out of the work (their
    extensions are seen once too), so the higher orders cost only as much as the repeated
    contexts. No hashing is involved, so there are no collisions at any order.

    Args:
        tokens: int ids, 1-D stream or ``(n_seqs, seq_len)``.
        n_max: the largest order, ``1 <= n_max <= seq_len``.
        n_vocab: vocabulary size ``V`` (default ``max + 1``).

    Returns:
        ``n_max`` :class:`CountSpectrum` objects, for ``k = 1..n_max``.

    Examples:
        >>> [s.counts().tolist() for s in count_spectra([0, 1, 0, 1, 1], 2)]
        [[2, 3], [1, 1, 2]]
    """
    tokens, v = check_tokens(tokens, n_vocab)
    if tokens.ndim == 1:
        tokens = tokens[None, :]
    n_rows, row_len = tokens.shape
    n_max = _check_order(n_max, row_len, "n_max")
    idx = _index_dtype(tokens.size + row_len, v)
    flat = tokens.astype(idx).ravel()
    unigram = np.bincount(flat, minlength=v)
    out = [_spectrum(unigram[unigram > 0])]
    if n_max == 1:
        return out
    # order 2 from all positions with a successor: groups are the tokens themselves
    if n_rows == 1:
        pos = np.arange(row_len - 1, dtype=idx)
        gid, nxt = flat[:-1], flat[1:]
    else:
        pos = (
            np.arange(n_rows, dtype=idx)[:, None] * idx(row_len)
            + np.arange(row_len - 1, dtype=idx)[None, :]
        ).ravel()
        gid, nxt = flat[pos], flat[pos + 1]
    n_groups = v
    for k in range(2, n_max + 1):
        n_valid = n_rows * (row_len - k + 1)
        if k > 2:
            keep = (pos % row_len) <= row_len - k if n_rows > 1 else pos <= row_len - k
            if not keep.all():
                pos, gid = pos[keep], gid[keep]
            nxt = flat[pos + (k - 1)]
        if pos.size == 0:
            out.append(_spectrum(np.zeros(0, np.int64), n_valid))
            continue
        # stable: by next token, then by context group -> sorted by (context, next token)
        ptr, pos1, gid1 = _bucket_sort(nxt, v, pos, gid)
        nxt1 = np.repeat(np.arange(v, dtype=idx), np.diff(ptr))
        ptr, pos, nxt = _bucket_sort(gid1, n_groups, pos1, nxt1)
        del pos1, gid1, nxt1
        m = pos.size
        new = np.empty(m, dtype=bool)
        new[0] = True
        np.not_equal(nxt[1:], nxt[:-1], out=new[1:])
        starts = ptr[:-1][ptr[:-1] < m]
        new[starts] = True
        run_start = np.flatnonzero(new)
        run_len = np.diff(np.append(run_start, m))
        out.append(_spectrum(run_len, n_valid - m))
        if k == n_max:
            break
        repeated = run_len >= 2
        run_of = np.cumsum(new, dtype=idx) - 1
        keep = repeated[run_of]
        new_id = np.cumsum(repeated, dtype=idx) - 1
        gid = new_id[run_of[keep]]
        pos = pos[keep]
        n_groups = int(repeated.sum())
    return out
