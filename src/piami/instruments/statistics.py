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

Counting is done by sorting int64 pair keys ``a * V + b`` and reading the run lengths, then
building a CSR matrix; the top singular value uses ``scipy.sparse.linalg.svds`` on the operator
``P - p q^T`` (never formed densely) when ``V`` is large. Token arrays may be a 1-D stream or a
2-D ``(n_seqs, seq_len)`` array (pairs never straddle two rows); ``anchor="last"`` keeps only the
pairs ending at the last position of each row (the next-token setting of Cagnetta and Wyart 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, svds

from piami.errors import PiamiTypeError, PiamiValueError

DENSE_SVD_MAX_V = 512  # below this vocabulary size the SVD is dense (exact and fast)


def check_tokens(tokens: object, n_vocab: int | None = None) -> tuple[np.ndarray, int]:
    """Validate a token array (1-D stream or 2-D rows of int ids) and return it with ``V``."""
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


def lag_pairs(
    tokens: np.ndarray, lag: int, *, anchor: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The aligned pair members ``(x_i, x_{i+lag})`` of a 1-D stream or within 2-D rows."""
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


def pair_counts(x: np.ndarray, y: np.ndarray, n_vocab: int) -> sp.csr_matrix:
    """Sparse ``(V, V)`` int64 counts of the pairs ``(x[k], y[k])``, by sorting int64 keys."""
    if n_vocab * n_vocab < 2**31:  # int32 keys sort about 3x faster than int64
        keys = np.sort(x.astype(np.int32) * np.int32(n_vocab) + y.astype(np.int32))
    else:
        keys = np.sort(x.astype(np.int64) * n_vocab + y)
    if keys.size == 0:
        return sp.csr_matrix((n_vocab, n_vocab), dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    counts = np.diff(np.append(starts, keys.size))
    uniq = keys[starts]
    rows, cols = np.divmod(uniq.astype(np.int64), n_vocab)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_vocab), out=indptr[1:])
    return sp.csr_matrix((counts, cols, indptr), shape=(n_vocab, n_vocab))


def _strength(counts: sp.csr_matrix, *, rng: np.random.Generator) -> tuple[float, float]:
    """Top singular value and Frobenius norm of ``P - p q^T`` from pair counts."""
    n = counts.sum()
    joint = counts.astype(np.float64) / n
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
    op = LinearOperator(
        (v, v),
        matvec=lambda z: joint @ np.ravel(z) - p * (q @ np.ravel(z)),
        rmatvec=lambda z: jt @ np.ravel(z) - q * (p @ np.ravel(z)),
        dtype=np.float64,
    )
    v0 = rng.standard_normal(v)
    sv = svds(op, k=1, tol=1e-5, v0=v0, return_singular_vectors=False, maxiter=2000)
    return float(sv[0]), frob


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
        rng: generator for the shuffle and the SVD start vector (required for ``"shuffle"``).
        progress: show a tqdm bar.

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
    top, frob, npairs = (np.zeros(lags.size) for _ in range(3))
    f_top, f_frob = np.full(lags.size, np.nan), np.full(lags.size, np.nan)
    it = range(lags.size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="correlations", leave=False)
    for k in it:
        x, y = lag_pairs(tokens, int(lags[k]), anchor=anchor)
        npairs[k] = x.size
        top[k], frob[k] = _strength(pair_counts(x, y, v), rng=rng)
        if k not in floor_idx:
            continue
        if floor == "shuffle":
            f_top[k], f_frob[k] = _strength(pair_counts(x, rng.permutation(y), v), rng=rng)
        else:
            h = x.size // 2
            if h < 1:
                raise PiamiValueError("floor='split' needs at least 2 pairs per lag")
            c1 = pair_counts(x[:h], y[:h], v).astype(np.float64) / h
            c2 = pair_counts(x[h : 2 * h], y[h : 2 * h], v).astype(np.float64) / h
            f_top[k], f_frob[k] = _split_strength(c1, c2, rng=rng)
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


def _split_strength(
    p1: sp.csr_matrix, p2: sp.csr_matrix, *, rng: np.random.Generator
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

    op = LinearOperator((v, v), matvec=mv, rmatvec=rmv, dtype=np.float64)
    sv = svds(op, k=1, tol=1e-4, v0=rng.standard_normal(v), return_singular_vectors=False)
    # Frobenius by probing: exact via the Gram identity on the low-rank part
    lo = np.stack([a1, -a2], 1) / 2.0
    hi = np.stack([b1, b2], 1)
    frob2 = (d.data @ d.data) - 2.0 * np.sum(lo * (d @ hi)) + np.sum((lo.T @ lo) * (hi.T @ hi))
    return float(sv[0]), float(np.sqrt(max(frob2, 0.0)))


def frobenius_floor(p: np.ndarray, q: np.ndarray, n_pairs: int) -> float:
    """Expected Frobenius norm of ``C`` estimated from ``n_pairs`` independent pairs.

    ``E ||C_hat||_F**2 = (1 - sum p**2)(1 - sum q**2) / N`` to leading order in ``1/N`` when the
    true ``C`` is zero (multinomial counts, marginals estimated from the same pairs).
    """
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.sqrt((1 - p @ p) * (1 - q @ q) / n_pairs))
