"""Token correlations at a distance: the lagged correlation operator and its noise floor.

For a token stream ``X`` the correlation operator at lag ``n`` is the ``V x V`` matrix

    C(n)_{ab} = Pr(X_i = a, X_{i+n} = b) - Pr(X_i = a) Pr(X_{i+n} = b),

estimated from the ``N`` pairs ``(x_i, x_{i+n})``: the joint from their counts, the two marginals
from the joint's row and column sums. Its strength is the top singular value ``||C(n)||`` (the
Frobenius norm decays alike). In language and in hierarchical grammars ``||C(n)|| ~ n**(-beta)``
(Cagnetta and Wyart 2024; Cagnetta, Raventos, Ganguli and Wyart 2026). A lag is *resolvable* from
``N`` pairs only while ``||C(n)||`` stands above the sampling noise of the estimate, which is about
``(sigma**2 log V / N)**(1/2)``; that noise floor is measured here, not assumed:

* ``"shuffle"``: the second member of every pair is permuted, which keeps both marginals exactly
  and destroys the dependence; the strength of that estimate is the noise level at this ``N``.
* ``"split"``: ``(C_first_half - C_second_half) / 2``, which has the variance of the full-sample
  estimate and also sees non-stationarity (different books).

For the Frobenius norm the floor has a closed form under independence,
``E ||C_noise||_F**2 = (1 - sum_a p_a**2)(1 - sum_b q_b**2) / N`` (multinomial counts with
estimated marginals), which the tests check the shuffle floor against.

Pairs are counted by :func:`piami.instruments.counting.pair_counts` (two linear-time stable
counting sorts into a canonical CSR matrix). The top singular value of ``P - p q^T`` (never formed
densely) comes from a Lanczos iteration on ``C^T C`` with full reorthogonalisation when ``V`` is
large (it stops when the Ritz residual is below ``1e-5`` of the Ritz value; the value returned is
then exact to about ``1e-10`` relative, tested against a dense SVD), and from a dense SVD below
``DENSE_SVD_MAX_V``. Where Numba is installed (a dependency) the pairs of a 1-D stream or of rows
are counted by the compiled kernels of :mod:`piami.instruments._pair_kernels`, several lags per
pass over the stream; the count matrices are the same. The lags are measured on up to
``n_threads`` threads at once (the counting sorts and sparse products release the GIL); all random
draws stay on the calling thread, in a fixed order, so results do not depend on the threads.
Token arrays may be a 1-D stream or a 2-D ``(n_seqs, seq_len)`` array (pairs never straddle two
rows); ``anchor="last"`` keeps only the pairs ending at the last position of each row (the
next-token setting of Cagnetta and Wyart 2024).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, svds

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments import _pair_kernels as _pk
from piami.instruments.counting import _pair_counts, check_tokens, lag_pairs, pair_counts

__all__ = [
    "DENSE_SVD_MAX_V",
    "CorrelationProfile",
    "check_tokens",
    "frobenius_floor",
    "lag_pairs",
    "lagged_correlation",
    "lagged_correlations",
    "log_spaced_lags",
    "pair_counts",
]

DENSE_SVD_MAX_V = 512  # below this vocabulary size the SVD is dense (exact and fast)
# Ritz residual / Ritz value at which the top singular value is accepted: the value returned,
# ||C y||, is then off by about (tol * theta / gap)**2 / 2 relative (1e-10 at theta/gap = 10), far
# below any sampling noise; each factor 10 tighter costs one more Lanczos step
_LANCZOS_TOL = 1e-5
_LANCZOS_MAX = 300  # Lanczos steps before falling back to ARPACK
_LAG_CHUNK = 4  # lags counted in one pass of the compiled kernel (working memory ~ 8 B/token/lag)


def _csr(counts: tuple[np.ndarray, np.ndarray, np.ndarray], v: int) -> sp.csr_matrix:
    """SciPy CSR over the compiled kernel's ``(indptr, indices, counts)`` (columns unsorted)."""
    indptr, indices, data = counts
    idx = np.int32 if indices.size < 2**31 - 1 else np.int64
    # int32 counts as they come (sums of them accumulate in int64; no 8-byte copy of every count)
    out = sp.csr_matrix(
        (data, indices.astype(idx, copy=False), indptr.astype(idx)), shape=(v, v), copy=False
    )
    out.has_sorted_indices = False
    return out


def _top_singular_value(
    matvec: Callable[[np.ndarray], np.ndarray],
    rmatvec: Callable[[np.ndarray], np.ndarray],
    v0: np.ndarray,
    *,
    tol: float = _LANCZOS_TOL,
    gram: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """Largest singular value of ``C`` (given ``C z`` and ``C^T z``) by Lanczos on ``C^T C``.

    Full reorthogonalisation; stops when the residual of the top Ritz pair, ``beta_j |s_j|``, is
    at most ``tol`` times the Ritz value ``theta`` (Golub and Van Loan, Matrix Computations,
    section 10.1.4); the eigenvalue error is then about ``(tol theta)**2 / gap``. The value
    returned is ``||C y||`` for the Ritz vector ``y``, not ``sqrt(theta)``: squaring ``C`` costs
    digits when ``||P||`` is much larger than ``||C||``. Falls back to ARPACK (``svds``) if the
    iteration takes more than ``_LANCZOS_MAX`` steps. ``gram``, where given, computes
    ``C^T C z`` in one call (the compiled one-pass product) in place of ``rmatvec(matvec(z))``.
    """
    n = v0.size
    m_max = min(n, _LANCZOS_MAX)
    basis = np.empty((m_max, n))
    alpha, beta = np.empty(m_max), np.empty(m_max)
    q = v0 / np.linalg.norm(v0)
    for j in range(m_max):
        basis[j] = q
        w = gram(q) if gram is not None else rmatvec(matvec(q))
        if j:
            w -= beta[j - 1] * basis[j - 1]
        alpha[j] = q @ w
        w -= alpha[j] * q
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        if j == 0:
            theta, vec = alpha[0], np.ones(1)
        else:
            ev, es = eigh_tridiagonal(alpha[: j + 1], beta[:j], select="i", select_range=(j, j))
            theta, vec = ev[0], es[:, 0]
        if beta[j] * abs(vec[-1]) <= tol * abs(theta) or j + 1 == n:
            # ||C y|| for the unit Ritz vector y: free of the rounding that squaring C into C^T C
            # puts on theta (scipy's svds does the same)
            y = basis[: j + 1].T @ vec
            return float(np.linalg.norm(matvec(y)) / np.linalg.norm(y))
        q = w / beta[j]
    op = LinearOperator((n, n), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    sv = svds(op, k=1, tol=1e-10, v0=v0, return_singular_vectors=False, maxiter=5000)
    return float(sv[0])


def _strength(counts: sp.csr_matrix, *, v0: np.ndarray | None) -> tuple[float, float]:
    """Top singular value and Frobenius norm of ``P - p q^T`` from pair counts.

    ``v0``: the Lanczos start vector (``None`` where ``V <= DENSE_SVD_MAX_V``: dense SVD).
    """
    n = counts.data.sum()  # (the matrix's own sum() would sort an unsorted one's columns first)
    # data * (1/n), as scipy divides a sparse matrix by a scalar (keeps the values bit for bit)
    joint = sp.csr_matrix((counts.data * (1.0 / n), counts.indices, counts.indptr), counts.shape)
    joint.has_canonical_format = counts.has_canonical_format
    p = np.asarray(joint.sum(axis=1)).ravel()
    q = np.asarray(joint.sum(axis=0)).ravel()
    # ||P - p q^T||_F^2 = ||P||^2 - 2 p^T P q + |p|^2 |q|^2, never forming the dense matrix
    frob2 = joint.data @ joint.data - 2.0 * p @ (joint @ q) + (p @ p) * (q @ q)
    frob = float(np.sqrt(max(frob2, 0.0)))
    v = joint.shape[0]
    if v <= DENSE_SVD_MAX_V:
        dense = joint.toarray() - np.outer(p, q)
        return float(np.linalg.norm(dense, 2)), frob
    jt = joint.T  # CSC view: its matvec needs no conversion
    top = _top_singular_value(
        lambda z: joint @ np.ravel(z) - p * (q @ np.ravel(z)),
        lambda z: jt @ np.ravel(z) - q * (p @ np.ravel(z)),
        v0,
    )
    return top, frob


def lagged_correlation(
    tokens: object, lag: int, *, n_vocab: int | None = None, anchor: str | None = None
) -> np.ndarray:
    """Dense estimate of ``C(lag)``, shape ``(V, V)`` (for small vocabularies and tests)."""
    tokens, v = check_tokens(tokens, n_vocab)
    x, y = lag_pairs(tokens, lag, anchor=anchor)
    joint = pair_counts(x, y, v).toarray() / x.size
    return joint - np.outer(joint.sum(1), joint.sum(0))


def log_spaced_lags(n_max: int, n_lags: int) -> np.ndarray:
    """Up to ``n_lags`` distinct integer lags from 1 to ``n_max``, log-spaced (int64)."""
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 1:
        raise PiamiValueError(f"n_max must be an int >= 1, got {n_max!r}")
    if isinstance(n_lags, bool) or not isinstance(n_lags, (int, np.integer)) or n_lags < 1:
        raise PiamiValueError(f"n_lags must be an int >= 1, got {n_lags!r}")
    return np.unique(np.round(np.geomspace(1, n_max, n_lags)).astype(np.int64))


@dataclass(frozen=True, kw_only=True)
class CorrelationProfile:
    """Strength of ``C(n)`` at each lag, with the measured noise floor.

    Attributes:
        lags: ``(n_lags,)`` int lags.
        top_sv: ``(n_lags,)`` top singular value of the estimated ``C(n)``.
        frobenius: ``(n_lags,)`` Frobenius norm.
        floor_top_sv: ``(n_lags,)`` noise level of ``top_sv`` (interpolated in log-lag between
            the lags where it was measured).
        floor_frobenius: ``(n_lags,)`` noise level of ``frobenius``.
        n_pairs: ``(n_lags,)`` number of pairs behind each estimate.
        n_vocab: vocabulary size ``V``.
        floor_method: ``"shuffle"`` or ``"split"``.
        anchor: ``None`` (pooled) or ``"last"``.
    """

    lags: np.ndarray
    top_sv: np.ndarray
    frobenius: np.ndarray
    floor_top_sv: np.ndarray
    floor_frobenius: np.ndarray
    n_pairs: np.ndarray
    n_vocab: int
    floor_method: str
    anchor: str | None = None
    extra: dict = field(default_factory=dict)  # anything else worth keeping

    def above_floor(self, factor: float = 3.0, *, norm: str = "top_sv") -> np.ndarray:
        """Boolean mask of the lags whose strength exceeds ``factor`` times the floor."""
        s, f = (
            (self.top_sv, self.floor_top_sv)
            if norm == "top_sv"
            else (
                self.frobenius,
                self.floor_frobenius,
            )
        )
        return s > factor * f

    def to_dict(self) -> dict:
        return {
            "lags": self.lags.tolist(),
            "top_sv": self.top_sv.tolist(),
            "frobenius": self.frobenius.tolist(),
            "floor_top_sv": self.floor_top_sv.tolist(),
            "floor_frobenius": self.floor_frobenius.tolist(),
            "n_pairs": self.n_pairs.tolist(),
            "n_vocab": self.n_vocab,
            "floor_method": self.floor_method,
            "anchor": self.anchor,
        }


def lagged_correlations(
    tokens: object,
    lags: object = None,
    *,
    n_vocab: int | None = None,
    n_max: int = 64,
    n_lags: int = 16,
    anchor: str | None = None,
    floor: str = "shuffle",
    n_floor_lags: int | None = 4,
    rng: np.random.Generator | None = None,
    progress: bool = False,
    n_threads: int | None = None,
) -> CorrelationProfile:
    """Measure ``||C(n)||`` at log-spaced lags, with its sampling-noise floor.

    Args:
        tokens: int ids, a 1-D stream or ``(n_seqs, seq_len)``.
        lags: explicit lags (ints >= 1); default ``log_spaced_lags(n_max, n_lags)``.
        n_vocab: vocabulary size (default ``max + 1``).
        n_max: largest default lag.
        n_lags: number of default lags.
        anchor: ``None`` pools all pairs; ``"last"`` only pairs ending at the last position.
        floor: ``"shuffle"`` or ``"split"`` (see the module docstring).
        n_floor_lags: measure the floor at this many of the lags (log-spread) and interpolate in
            log-lag; ``None`` measures it at every lag. The shuffle floor depends on the lag only
            through ``N`` and the marginals, so a few lags suffice.
        rng: generator for the shuffle and the SVD start vectors (default: seed 0).
        progress: show a tqdm bar.
        n_threads: lags measured at once (default ``min(2, cores)``); each thread holds up to
            about 40 bytes per pair of working memory. The results do not depend on it.

    Returns:
        a :class:`CorrelationProfile`.

    Example:
        >>> x = np.random.default_rng(0).integers(0, 4, 10_000)
        >>> prof = lagged_correlations(x, [1, 2], rng=np.random.default_rng(1))
        >>> bool(prof.above_floor().any())  # i.i.d. tokens: nothing above the floor
        False
    """
    tokens, v = check_tokens(tokens, n_vocab)
    length = tokens.shape[-1]
    if lags is None:
        lags = log_spaced_lags(min(n_max, length - 1), n_lags)
    lags = np.atleast_1d(np.asarray(lags))
    if lags.dtype.kind not in "iu" or lags.ndim != 1 or lags.size == 0:
        raise PiamiValueError(f"lags must be a non-empty 1-D list of ints, got {lags!r}")
    if lags.min() < 1 or lags.max() >= length:
        raise PiamiValueError(f"lags must lie in [1, {length}), got {lags.min()}..{lags.max()}")
    if floor not in ("shuffle", "split"):
        raise PiamiValueError(f"floor must be 'shuffle' or 'split', got {floor!r}")
    if rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if n_floor_lags is None or n_floor_lags >= lags.size:
        floor_idx = np.arange(lags.size)
    else:
        floor_idx = np.unique(np.round(np.linspace(0, lags.size - 1, max(n_floor_lags, 1))))
        floor_idx = floor_idx.astype(np.int64)
    if n_threads is None:
        n_threads = min(2, os.cpu_count() or 1)
    elif isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise PiamiTypeError(f"n_threads must be an int >= 1 or None, got {n_threads!r}")
    elif n_threads < 1:
        raise PiamiValueError(f"n_threads must be an int >= 1 or None, got {n_threads}")
    # counting copy in the narrowest index type; ids were checked against V above
    work = tokens.astype(np.int32) if v < 2**31 - 1 and tokens.size < 2**31 - 1 else tokens
    sparse_svd = v > DENSE_SVD_MAX_V  # the dense SVD draws no start vector

    def start() -> np.ndarray | None:
        return rng.standard_normal(v) if sparse_svd else None

    local = threading.local()  # counting buffers, one set per thread, freed on return

    def scratch() -> dict:
        if not hasattr(local, "store"):
            local.store = {}
        return local.store

    compiled = _pk.HAVE_NUMBA and anchor is None and work.ndim in (1, 2)
    if compiled:  # positions grouped by token once; every chunk of lags reuses the grouping
        flat = np.ascontiguousarray(work).ravel()
        offsets = _pk.group_offsets(flat, v)

    def one(x: np.ndarray, y: np.ndarray, v0: np.ndarray | None) -> tuple[float, float]:
        if compiled:
            pairs = _pk.pair_counts_csr(np.ravel(x), np.ravel(y), v, scratch())
            return _strength(_csr(pairs, v), v0=v0)
        return _strength(_pair_counts(x, y, v, scratch()), v0=v0)

    def chunk(ks: list[int], starts: list) -> list[tuple[float, float]]:
        counts = _pk.lag_chunk_counts(flat, length, offsets, lags[ks], v, scratch())
        return [_strength(_csr(c, v), v0=v0) for c, v0 in zip(counts, starts, strict=True)]

    def split(x: np.ndarray, y: np.ndarray, v0: np.ndarray | None) -> tuple[float, float]:
        h = x.size // 2
        c1 = _pair_counts(x[:h], y[:h], v, scratch()).astype(np.float64) / h
        c2 = _pair_counts(x[h : 2 * h], y[h : 2 * h], v, scratch()).astype(np.float64) / h
        return _split_strength(c1, c2, v0=v0)

    top, frob, npairs = (np.zeros(lags.size) for _ in range(3))
    f_top, f_frob = np.full(lags.size, np.nan), np.full(lags.size, np.nan)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=lags.size, desc="correlations", leave=False)
    pending: list[tuple[bool, list[int], Future]] = []

    def collect(n_left: int) -> None:
        while len(pending) > n_left:
            is_floor, ks, fut = pending.pop(0)
            if is_floor:
                f_top[ks[0]], f_frob[ks[0]] = fut.result()
                continue
            for k, (t, f) in zip(ks, fut.result(), strict=True):
                top[k], frob[k] = t, f
            if bar is not None:
                bar.update(len(ks))

    # every random draw happens here, in the order of the lags: the threads only compute
    with ThreadPoolExecutor(max_workers=n_threads) if n_threads > 1 else _Inline() as pool:
        ks: list[int] = []
        starts: list = []
        for k in range(lags.size):
            x, y = lag_pairs(work, int(lags[k]), anchor=anchor)
            npairs[k] = x.size
            if compiled:  # lags are counted in chunks, one pass over the stream per chunk
                ks.append(k)
                starts.append(start())
                if len(ks) == _LAG_CHUNK or k == lags.size - 1:
                    pending.append((False, ks, pool.submit(chunk, ks, starts)))
                    ks, starts = [], []
            else:
                pending.append((False, [k], pool.submit(lambda *a: [one(*a)], x, y, start())))
            if k in floor_idx:
                if floor == "shuffle":
                    pending.append((True, [k], pool.submit(one, x, rng.permutation(y), start())))
                elif x.size < 2:
                    raise PiamiValueError("floor='split' needs at least 2 pairs per lag")
                else:
                    pending.append((True, [k], pool.submit(split, x, y, start())))
            collect(n_threads)  # bounded look-ahead: bounded memory
        collect(0)
    if bar is not None:
        bar.close()
    measured = ~np.isnan(f_top)
    loglag = np.log(lags.astype(np.float64))
    f_top = np.exp(np.interp(loglag, loglag[measured], np.log(f_top[measured])))
    f_frob = np.exp(np.interp(loglag, loglag[measured], np.log(f_frob[measured])))
    return CorrelationProfile(
        lags=lags.astype(np.int64),
        top_sv=top,
        frobenius=frob,
        floor_top_sv=f_top,
        floor_frobenius=f_frob,
        n_pairs=npairs.astype(np.int64),
        n_vocab=v,
        floor_method=floor,
        anchor=anchor,
    )


class _Inline:
    """A stand-in for a one-thread executor: runs each task at once, on the calling thread."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable, *args: object) -> Future:
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut


def _split_strength(
    p1: sp.csr_matrix, p2: sp.csr_matrix, *, v0: np.ndarray | None
) -> tuple[float, float]:
    """Strength of ``(C1 - C2) / 2`` for two half-sample joints."""
    a1, b1 = np.asarray(p1.sum(1)).ravel(), np.asarray(p1.sum(0)).ravel()
    a2, b2 = np.asarray(p2.sum(1)).ravel(), np.asarray(p2.sum(0)).ravel()
    d = ((p1 - p2) / 2.0).tocsr()
    v = d.shape[0]
    if v <= DENSE_SVD_MAX_V:
        dense = d.toarray() - (np.outer(a1, b1) - np.outer(a2, b2)) / 2.0
        return float(np.linalg.norm(dense, 2)), float(np.linalg.norm(dense))
    dt = d.T.tocsr()

    def mv(z: np.ndarray) -> np.ndarray:
        z = np.ravel(z)
        return d @ z - (a1 * (b1 @ z) - a2 * (b2 @ z)) / 2.0

    def rmv(z: np.ndarray) -> np.ndarray:
        z = np.ravel(z)
        return dt @ z - (b1 * (a1 @ z) - b2 * (a2 @ z)) / 2.0

    sv = _top_singular_value(mv, rmv, v0)
    # Frobenius by probing: exact via the Gram identity on the low-rank part
    lo = np.stack([a1, -a2], 1) / 2.0
    hi = np.stack([b1, b2], 1)
    frob2 = (d.data @ d.data) - 2.0 * np.sum(lo * (d @ hi)) + np.sum((lo.T @ lo) * (hi.T @ hi))
    return sv, float(np.sqrt(max(frob2, 0.0)))


def frobenius_floor(p: np.ndarray, q: np.ndarray, n_pairs: int) -> float:
    """Expected Frobenius norm of ``C`` estimated from ``n_pairs`` independent pairs.

    ``E ||C_hat||_F**2 = (1 - sum p**2)(1 - sum q**2) / N`` to leading order in ``1/N`` when the
    true ``C`` is zero (multinomial counts, marginals estimated from the same pairs).
    """
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.sqrt((1 - p @ p) * (1 - q @ q) / n_pairs))
