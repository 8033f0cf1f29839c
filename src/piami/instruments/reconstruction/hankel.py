"""Hankel matrices of word probabilities, from counts or from an exact process, and their rank.

``H[u, v] = Pr(u v)`` over pasts ``u`` and futures ``v``; its rank is the dimension of the
smallest (generalized) HMM presentation of the process (Jaeger 2000; Upper 1997). Empirical word
probabilities come from one count of the windows of the longest length, so that every shorter
word's probability is a marginal of the same distribution (see :mod:`spectral`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments.counting import check_tokens, ngram_codes, word_counts

__all__ = [
    "EmpiricalWordProbabilities",
    "empirical_word_probabilities",
    "exact_hankel_rank",
    "hankel_matrix",
]

_MAX_TABLE = 2**24  # largest dense table of word probabilities (V**length entries) we build


def _check_int(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise PiamiTypeError(f"{name} must be an int; got {v!r}")
    if v < minimum:
        raise PiamiValueError(f"{name} must be >= {minimum}; got {v}")
    return int(v)


def _check_table(n_symbols: int, length: int) -> None:
    if n_symbols**length > _MAX_TABLE:
        raise PiamiValueError(
            f"words of length {length} over {n_symbols} symbols are {n_symbols**length:,} "
            f"entries, above the limit of {_MAX_TABLE:,}; use shorter words (smaller lengths)"
        )


class EmpiricalWordProbabilities:
    """Sliding-window word frequencies of a token stream (or of each row), up to a length.

    ``p(w)`` is the fraction of the length-``|w|`` windows (within rows) equal to ``w``, so
    ``p(empty) = 1`` and the words of each length sum to 1: the standard substring estimator of
    the stationary word probabilities (Balle et al. 2014).

    Attributes:
        n_symbols: alphabet size ``V``.
        max_length: longest word counted.
        n_windows: ``n_windows[L]`` windows of length ``L`` (``n_windows[0]`` = symbols).
    """

    def __init__(self, tokens: np.ndarray, max_length: int, n_symbols: int) -> None:
        self.n_symbols = n_symbols
        self.max_length = max_length
        rows, length = (1, tokens.shape[0]) if tokens.ndim == 1 else tokens.shape
        self.n_windows = [rows * (length - n + 1) for n in range(max_length + 1)]
        self._codes: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self._counts: list[np.ndarray] = [np.array([self.n_windows[0]], dtype=np.int64)]
        for n in range(1, max_length + 1):
            codes, counts = word_counts(tokens, n, n_symbols)
            self._codes.append(codes)
            self._counts.append(counts)

    def _code(self, words: np.ndarray) -> np.ndarray:
        n = words.shape[1]
        if n == 0:
            return np.zeros(words.shape[0], dtype=np.int64)
        return ngram_codes(words, n, self.n_symbols)

    def probabilities(self, words: Any) -> np.ndarray:
        """Frequencies of a batch of words of one length, ``(n_words, L)`` int -> ``(n_words,)``."""
        w = np.atleast_2d(np.asarray(words, dtype=np.int64))
        n = w.shape[1]
        if n > self.max_length:
            raise PiamiValueError(
                f"words of length {n} were not counted (max_length={self.max_length}); "
                "count with a larger max_length"
            )
        if w.size and (w.min() < 0 or w.max() >= self.n_symbols):
            raise PiamiValueError(f"word symbols must lie in [0, {self.n_symbols})")
        if n == 0:
            return np.ones(w.shape[0])
        codes, counts = self._codes[n], self._counts[n]
        q = self._code(w)
        i = np.minimum(np.searchsorted(codes, q), max(codes.size - 1, 0))
        hit = codes[i] == q if codes.size else np.zeros(q.shape, dtype=bool)
        return np.where(hit, counts[i] / self.n_windows[n], 0.0)

    def __call__(self, word: Any) -> float:
        """Frequency of one word (a sequence of ints; the empty word has probability 1)."""
        return float(self.probabilities(np.asarray(word, dtype=np.int64).reshape(1, -1))[0])

    def table(self, length: int) -> np.ndarray:
        """All ``V**length`` word frequencies in lexicographic order (index = base-``V`` code)."""
        _check_table(self.n_symbols, length)
        if length > self.max_length:
            raise PiamiValueError(
                f"words of length {length} were not counted (max_length={self.max_length})"
            )
        out = np.zeros(self.n_symbols**length)
        if length == 0:
            out[0] = 1.0
            return out
        bits = max(1, math.ceil(math.log2(max(self.n_symbols, 2))))
        if length * bits > 62:  # hashed codes: look the words up instead
            return self.probabilities(_all_words(self.n_symbols, length))
        out[self._codes[length]] = self._counts[length] / self.n_windows[length]
        return out


def empirical_word_probabilities(
    tokens: Any, max_length: int, n_symbols: int | None = None
) -> EmpiricalWordProbabilities:
    """Count every word up to ``max_length`` in a 1-D stream or within the rows of a 2-D array.

    Counting packs each window into one integer (``ngram_codes``) and sorts; lookups are binary
    searches. Windows never cross row boundaries.

    Args:
        tokens: int array ``(N,)`` or ``(n_seqs, seq_len)`` of symbols ``0..V-1``.
        max_length: longest word to count (>= 1, at most the row length).
        n_symbols: alphabet size (default: largest symbol + 1).

    Returns:
        A callable ``f(word) -> float`` with vectorized ``probabilities`` and dense ``table``.

    Example:
        >>> f = empirical_word_probabilities(np.array([0, 1, 0, 1, 1]), 2)
        >>> f([0, 1]), f([1, 1]), f([])
        (0.5, 0.25, 1.0)
    """
    arr, V = check_tokens(tokens, n_symbols)
    max_length = _check_int("max_length", max_length, 1)
    if max_length > arr.shape[-1]:
        raise PiamiValueError(
            f"max_length={max_length} exceeds the sequence length {arr.shape[-1]}; "
            "give longer sequences or a smaller max_length"
        )
    return EmpiricalWordProbabilities(arr, max_length, V)


def _all_words(n_symbols: int, length: int) -> np.ndarray:
    """All words of a length in lexicographic order, ``(V**length, length)`` int64."""
    idx = np.arange(n_symbols**length, dtype=np.int64)
    powers = n_symbols ** np.arange(length - 1, -1, -1, dtype=np.int64)
    return (idx[:, None] // powers[None, :]) % n_symbols


def _probability_table(
    word_probability: Callable[[Any], float], n_symbols: int, length: int
) -> np.ndarray:
    _check_table(n_symbols, length)
    if isinstance(word_probability, EmpiricalWordProbabilities):
        return word_probability.table(length)
    words = _all_words(n_symbols, length)
    out = np.array([float(word_probability(w)) for w in words], dtype=np.float64)
    if not np.isfinite(out).all():
        raise PiamiValueError(f"word_probability returned a non-finite value at length {length}")
    return out


class _Windows:
    """The empirical distribution of the length-``L`` windows and its marginals.

    Every Hankel entry read from it is a marginal of one distribution, as HKZ estimate ``P_1``,
    ``P_21`` and ``P_3x1`` from the same triples, so ``sum_x H[u, x] = H[u, empty]`` and ``sum_x
    H[x, v] = H[empty, v]`` hold exactly and the ends of rows add no spurious dimension.
    """

    def __init__(self, tokens: np.ndarray, n_symbols: int, length: int) -> None:
        if length * max(1, math.ceil(math.log2(max(n_symbols, 2)))) > 62:
            raise PiamiValueError(f"words of length {length} are too long to count exactly")
        codes, counts = word_counts(tokens, length, n_symbols)
        P = np.zeros(n_symbols**length)
        P[codes] = counts / counts.sum()
        self._P = P.reshape((n_symbols,) * length)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def marginal(self, start: int, n: int) -> np.ndarray:
        """Frequencies of the words at window positions ``start .. start + n - 1``, flattened."""
        key = (start, n)
        if key not in self._cache:
            axes = tuple(k for k in range(self._P.ndim) if not start <= k < start + n)
            self._cache[key] = self._P.sum(axis=axes).reshape(-1)
        return self._cache[key]


Tables = list[np.ndarray] | _Windows


def _table(src: Tables, start: int, n: int) -> np.ndarray:
    return src.marginal(start, n) if isinstance(src, _Windows) else src[n]


def _hankel_blocks(
    src: Tables, n_symbols: int, past: int, future: int, shift: int | None = None
) -> np.ndarray:
    """``H[u, v] = p(u v)`` (or ``p(u x v)`` with ``shift = x``) from dense probability tables.

    ``src`` is a list of stationary tables by word length, or windows whose position ``past``
    is the present (pasts end just before it). Rows are the pasts by length then
    lexicographically (empty word first), columns likewise.
    """
    V = n_symbols
    rows = []
    for a in range(past + 1):
        row = []
        for b in range(future + 1):
            if shift is None:
                row.append(_table(src, past - a, a + b).reshape(V**a, V**b))
            else:
                t = _table(src, past - a, a + 1 + b)
                row.append(t.reshape(V**a, V, V**b)[:, shift, :])
        rows.append(np.hstack(row))
    return np.vstack(rows)


def hankel_matrix(
    word_probability: Callable[[Any], float],
    n_symbols: int,
    *,
    past_length: int,
    future_length: int,
) -> np.ndarray:
    """The Hankel matrix ``H[u, v] = Pr(u v)`` over pasts and futures up to given lengths.

    Rows are the ``sum_{a <= past_length} V**a`` pasts ordered by length, then lexicographically
    (the empty word first); columns likewise for futures (Jaeger 2000; Balle et al. 2014).

    Args:
        word_probability: ``f(word) -> float`` for an int sequence ``word`` (possibly empty), e.g.
            ``process.word_probability`` or :func:`empirical_word_probabilities`. Each distinct
            word is asked for once.
        n_symbols: alphabet size ``V``.
        past_length: longest past.
        future_length: longest future.

    Returns:
        float64 array of shape ``(n_pasts, n_futures)``.

    Example:
        >>> from piami.processes import from_spec
        >>> H = hankel_matrix(from_spec("golden_mean").word_probability, 2,
        ...                   past_length=1, future_length=1)
        >>> H.shape, int(np.linalg.matrix_rank(H))
        ((3, 3), 2)
    """
    if not callable(word_probability):
        raise PiamiTypeError(
            f"word_probability must be callable f(word) -> float; got {type(word_probability)}"
        )
    V = _check_int("n_symbols", n_symbols, 1)
    past = _check_int("past_length", past_length, 0)
    future = _check_int("future_length", future_length, 0)
    _check_table(V, past + future)
    tables = [_probability_table(word_probability, V, n) for n in range(past + future + 1)]
    return _hankel_blocks(tables, V, past, future)


def _exact_tables(process: Any, max_length: int) -> list[np.ndarray]:
    """Dense word-probability tables ``pi T[w] r`` of a (G)HMM, by a forward recursion."""
    T = np.asarray(process.T, dtype=np.float64)
    pi = np.asarray(process.stationary_distribution(), dtype=np.float64)
    vals, vecs = np.linalg.eig(T.sum(axis=0))
    r = vecs[:, int(np.argmax(vals.real))].real
    r = r / (pi @ r)  # the right eigenvector with pi r = 1 (all ones for an HMM)
    F = pi[None, :]
    tables = [np.ones(1)]
    for _ in range(max_length):
        F = np.einsum("ws,xst->wxt", F, T).reshape(-1, T.shape[1])
        tables.append(F @ r)
    return tables


def exact_hankel_rank(process: Any, *, max_length: int, tol: float = 1e-10) -> int:
    """Rank of the exact Hankel matrix with pasts and futures of up to ``max_length`` symbols.

    The rank is non-decreasing in ``max_length`` and reaches the process's minimal generalized-HMM
    dimension (Jaeger 2000): golden mean and even 2, Mess3 3, RRXOR 5 (4 while words stop
    at length 3, since a length-3 window cannot see which phase of the XOR cycle it is in).

    Args:
        process: a piami (generalized) HMM (anything with ``T`` and ``stationary_distribution()``),
            or any object with ``word_probability(word)`` and ``n_symbols``.
        max_length: longest past and longest future (>= 0).
        tol: singular values at most ``tol`` times the largest count as zero.

    Returns:
        The numerical rank.

    Example:
        >>> from piami.processes import from_spec
        >>> exact_hankel_rank(from_spec("rrxor"), max_length=3)
        4
    """
    L = _check_int("max_length", max_length, 0)
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise PiamiValueError(f"tol must be a number in (0, 1); got {tol!r}")
    V = _check_int("process.n_symbols", getattr(process, "n_symbols", None), 1)
    _check_table(V, 2 * L)
    if hasattr(process, "T") and hasattr(process, "stationary_distribution"):
        tables = _exact_tables(process, 2 * L)
    elif hasattr(process, "word_probability"):
        tables = [_probability_table(process.word_probability, V, n) for n in range(2 * L + 1)]
    else:
        raise PiamiTypeError(
            f"process must be a piami process with T or word_probability; got {type(process)}"
        )
    s = np.linalg.svd(_hankel_blocks(tables, V, L, L), compute_uv=False)
    return int(np.count_nonzero(s > tol * s[0]))
