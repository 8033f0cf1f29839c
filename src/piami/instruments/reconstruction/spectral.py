"""Spectral reconstruction: observable operators from the Hankel matrix of word probabilities.

A stationary process over ``V`` symbols has a *Hankel matrix* ``H[u, v] = Pr(u v)`` indexed by
pasts ``u`` and futures ``v``. Its rank is the dimension of the smallest (generalized) HMM that
generates the process (Jaeger 2000, "Observable operator models for discrete stochastic time
series", Neural Computation 12; Upper 1997). Factor ``H = F B`` through that rank and
every symbol acts on the factor space by an *observable operator*: ``H_x = F A_x B`` with
``H_x[u, v] = Pr(u x v)``, so ``Pr(x_1 .. x_t) = alpha_0 A_{x_1} .. A_{x_t} alpha_inf``.

Estimated from counts, the factorization is a truncated SVD ``H ~ U D V^T`` of rank ``r`` (Hsu,
Kakade & Zhang 2009, "A spectral algorithm for learning hidden Markov models", algorithm
LearnHMM; in the prefix/suffix form of Balle, Carreras, Luque & Quattoni 2014, "Spectral learning
of weighted automata", Machine Learning 96)::

    A_x = D^-1 U^T H_x V,    alpha_0 = H[empty, :] V,    alpha_inf = D^-1 U^T H[:, empty].

With pasts and futures of length 1 (``max_length = 3``) these are exactly HKZ's operators
``B_x = (U^T P_3x1)(U^T P_21)^+``, ``b_1``, ``b_inf``, transposed into piami's row convention
(HKZ write ``Pr = b_inf^T B_{x_t} .. B_{x_1} b_1``; here ``T[x] = A_x``, read left to right) and
augmented by the empty word, whose row and column carry ``P_1``. The operators are returned as a
:class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel`, which uses the stationary left and
right eigenvectors of ``sum_x A_x``; in the population limit these are ``alpha_0`` and
``alpha_inf`` (``sum_x Pr(x v) = Pr(v)`` makes ``alpha_0`` a left fixed point, ``sum_x Pr(u x) =
Pr(u)`` makes ``alpha_inf`` a right one), so no similarity transform is needed: word probabilities
are invariant under ``A_x -> S^-1 A_x S``, and the GHMM normalizes by the eigenpair itself.

**Estimator.** Only the windows of length ``max_length`` are counted; every Hankel entry is a
marginal of their empirical distribution, with the present at window position ``p`` (pasts end
just before it), as HKZ estimate ``P_1``, ``P_21`` and ``P_3x1`` from the same triples. The
relations ``sum_x H[u, x] = H[u, empty]`` and ``sum_x H[x, v] = H[empty, v]`` then hold exactly,
so row ends add no spurious dimension. (Counting each word length over its own windows, as sofic
does, leaves an inconsistency of order ``rows / N`` that no batch contrast sees, so the noise rule
below read a period-2 sequence of 2,000 symbols as rank 3.)

**Rank rule** (``rank=None``). Estimated singular values beyond the true rank are noise: to first
order they are the singular values of the estimation error ``E = H^ - H`` projected off the leading
singular subspaces (Stewart 1990, "Perturbation theory for the singular value decomposition", UMIACS
TR-90-124; the same projection underlies the rank tests of Kleibergen & Paap 2006, J. Econometrics
133). The error is sampled by balanced repeated replication (McCarthy 1969, "Pseudo-replication:
half samples", Rev. Int. Stat. Inst. 37): the data are cut into ``B = 16`` contiguous batches
(groups of rows, or chunks of each row) with Hankel estimates ``H^(b)``; each of the 15 non-constant
rows ``h`` of the ``16 x 16`` Hadamard matrix gives a contrast ``Z_h = sum_b h_b H^(b) / B`` with
the covariance of ``E`` (batches of a mixing process are nearly independent, and each batch keeps
the serial correlation within it). Then ``noise_k`` is the RMS spectral norm of the contrasts
projected off the top ``k - 1`` singular vectors of ``H^``, and the rank is the number of leading
singular values with ``s_k > tol * noise_k`` (default ``tol = 3``), at least 1; the tests
(tests/instruments/test_spectral.py) check it recovers the exact ranks on samples of golden mean,
even, Mess3 and shuffled controls.

**Limits.** The operators are estimated, not constrained to be a valid process: the GHMM can give
small negative probabilities to words the process forbids, and ``next_token_probs`` then refuses a
sequence whose next symbol gets non-positive model probability (more often at small ``N``). A
process whose predictor must carry information without decay is learned slowly: along a block of
1s the even process's exact ``A_1`` has eigenvalues ``+-1/sqrt(2)``; an estimate whose two moduli
differ lets the parity fade or grow with the block length, so its excess log-loss falls erratically
with ``N``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import hadamard

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments.counting import check_tokens
from piami.instruments.reconstruction.hankel import (
    Tables,
    _check_int,
    _check_table,
    _hankel_blocks,
    _probability_table,
    _Windows,
)
from piami.instruments.reconstruction.result import Reconstruction
from piami.processes.ghmm import GeneralizedHiddenMarkovModel

__all__ = ["observable_operator_model", "spectral"]

_N_BATCHES = 16  # batches for the noise estimate (rows of a 16 x 16 Hadamard matrix)
_RULE = (
    "rank = number of leading k with s_k > tol * noise_k; noise_k = RMS spectral norm of the 15 "
    "balanced half-sample contrasts of 16 contiguous batch Hankel matrices (McCarthy 1969), "
    "projected off the top k-1 singular vectors of H (first-order SVD perturbation, Stewart 1990)"
)


def _batches(arr: np.ndarray, n_batches: int, min_len: int) -> list[np.ndarray]:
    """Contiguous batches: groups of rows when there are enough rows, else chunks of each row."""
    if arr.shape[0] >= n_batches:
        return np.array_split(arr, n_batches, axis=0)
    if arr.shape[1] // n_batches < min_len:
        raise PiamiValueError(
            f"choosing the rank needs {n_batches} batches of at least {min_len} symbols per row; "
            f"rows have {arr.shape[1]} symbols; give more data or pass rank explicitly"
        )
    return np.array_split(arr, n_batches, axis=1)


def _noise_contrasts(
    arr: np.ndarray, V: int, past: int, future: int, max_length: int
) -> np.ndarray:
    """The ``B - 1`` balanced half-sample contrasts ``Z_h`` of ``B`` batch Hankel matrices."""
    Hb = []
    for part in _batches(arr, _N_BATCHES, 4 * max_length):
        Hb.append(_hankel_blocks(_Windows(part, V, max_length), V, past, future))
    had = hadamard(_N_BATCHES)[1:].astype(np.float64)  # the balanced +-1 rows
    return np.einsum("hb,bij->hij", had, np.stack(Hb)) / _N_BATCHES


def _choose_rank(
    s: np.ndarray, U: np.ndarray, Vt: np.ndarray, Z: np.ndarray, tol: float, floor: float
) -> tuple[int, list[float]]:
    """Leading singular values that stand above the noise left outside the ones before them.

    ``noise[k]`` is the RMS spectral norm of the contrasts projected off the top-``k`` singular
    subspaces of ``H^`` (to first order the singular values beyond the true rank are those of the
    noise so projected; Stewart 1990). ``s[k]`` counts while ``s[k] > tol * noise[k]``.
    """
    noise: list[float] = []
    r = 0
    for k in range(s.size):
        Uk, Vk = U[:, :k], Vt[:k].T
        R = Z - Uk @ (Uk.T @ Z)
        R = R - (R @ Vk) @ Vk.T
        nu = float(np.sqrt(np.mean(np.linalg.norm(R, ord=2, axis=(1, 2)) ** 2)))
        noise.append(nu)
        if not s[k] > max(tol * nu, floor):
            break
        r = k + 1
    return max(r, 1), noise


def _check_spectral_input(
    tokens: Any, max_length: Any, n_symbols: Any
) -> tuple[np.ndarray, int, int]:
    arr, V = check_tokens(tokens, n_symbols)
    arr = np.atleast_2d(arr)
    L = _check_int("max_length", max_length, 1)
    if arr.shape[1] < L:
        raise PiamiValueError(
            f"sequences of {arr.shape[1]} symbols are too short for words of length "
            f"max_length={L}; give longer sequences or a smaller max_length"
        )
    n_windows = arr.shape[0] * (arr.shape[1] - L + 1)
    if V**L > n_windows:
        raise PiamiValueError(
            f"{n_windows:,} windows of length {L} cannot estimate the {V**L:,} word "
            f"probabilities of an alphabet of {V} symbols; use more data or a smaller max_length"
        )
    return arr, V, L


def spectral(
    tokens: Any,
    *,
    rank: int | None = None,
    max_length: int = 3,
    n_symbols: int | None = None,
    tol: float = 3.0,
) -> Reconstruction:
    """Spectral (observable-operator) reconstruction of a stationary process from samples.

    Windows of ``max_length`` symbols are counted (module docstring); pasts have up to ``p =
    (max_length - 1) // 2`` symbols and futures up to ``max_length - 1 - p``, so that every
    ``Pr(u x v)`` is a marginal of the window distribution. The default
    ``max_length = 3`` is Hsu, Kakade & Zhang's (2009, LearnHMM) ``P_1, P_21, P_3x1``; longer words
    are the generalized Hankel basis (Balle et al. 2014) needed when the alphabet is smaller than
    the rank (RRXOR needs pasts and futures of 4 symbols, ``max_length = 9``).

    Args:
        tokens: int array ``(N,)`` or ``(n_seqs, seq_len)`` of symbols ``0..V-1``.
        rank: dimension of the model; ``None`` applies the rule of the module docstring.
        max_length: longest word counted (>= 1); ``V**max_length`` must not exceed the number of
            windows.
        n_symbols: alphabet size (default: largest symbol + 1).
        tol: with ``rank=None``, a singular value ``s_k`` counts toward the rank while
            ``s_k > tol * noise_k`` (module docstring).

    Returns:
        A :class:`Reconstruction` whose ``machine`` is a
        :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` with ``T[x] = A_x``;
        ``details`` holds ``singular_values`` of the Hankel matrix, the chosen ``rank``, the
        ``rank_rule``, ``tol``, ``noise`` (``noise_k`` for each singular value examined; None
        when ``rank`` is given), ``past_length``, ``future_length``, and the estimated
        ``alpha_0`` and ``alpha_inf`` (in the GHMM's basis), and ``leading_eigenvalue``, the
        eigenvalue of ``sum_x A_x`` that the GHMM divides out (1 in the population limit).

    Raises:
        PiamiValueError: too few symbols for ``max_length``, ``rank`` above the Hankel matrix's
            size or its number of non-zero singular values.
        PiamiTypeError: non-integer tokens or arguments.

    Example:
        >>> from piami.processes import from_spec
        >>> x = from_spec("golden_mean").sample(1, 20_000, rng=np.random.default_rng(0))
        >>> spectral(x).n_states
        2
    """
    arr, V, L = _check_spectral_input(tokens, max_length, n_symbols)
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
        raise PiamiValueError(f"tol must be a positive number; got {tol!r}")
    past = (L - 1) // 2
    future = L - 1 - past
    tables = _Windows(arr, V, L)
    H = _hankel_blocks(tables, V, past, future)
    U, s, Vt = np.linalg.svd(H, full_matrices=False)
    floor = s[0] * max(H.shape) * np.finfo(np.float64).eps
    noise = None
    if rank is None:
        Z = _noise_contrasts(arr, V, past, future, L) if L > 1 else np.zeros((1, *H.shape))
        r, noise = _choose_rank(s, U, Vt, Z, float(tol), floor)
    else:
        r = _check_rank(rank, s, floor, H.shape, L)
    A, alpha_0, alpha_inf = _operators(tables, V, past, future, (U, s, Vt), r)
    machine = GeneralizedHiddenMarkovModel(A, name=f"spectral(rank={r})")
    details = {
        "singular_values": s.tolist(),
        "rank": r,
        "rank_rule": "given" if rank is not None else _RULE,
        "tol": float(tol),
        "noise": noise,
        "past_length": past,
        "future_length": future,
        "alpha_0": alpha_0.tolist(),
        "alpha_inf": alpha_inf.tolist(),
        "leading_eigenvalue": float(np.max(np.linalg.eigvals(A.sum(axis=0)).real)),
    }
    return Reconstruction(
        method="spectral",
        machine=machine,
        n_symbols=V,
        n_samples=int(arr.size),
        max_length=L,
        details=details,
    )


def observable_operator_model(
    word_probability: Callable[[Any], float],
    n_symbols: int,
    *,
    rank: int,
    past_length: int,
    future_length: int,
) -> GeneralizedHiddenMarkovModel:
    """The rank-``rank`` observable-operator model of a word-probability function.

    The same construction as :func:`spectral` (Balle et al. 2014) on the Hankel matrix of
    :func:`hankel_matrix`; given exact probabilities and a basis whose Hankel rank is the
    process's (Jaeger 2000), the model reproduces every word probability exactly.

    Args:
        word_probability: ``f(word) -> float`` (e.g. ``process.word_probability``).
        n_symbols: alphabet size ``V``.
        rank: model dimension, at most the number of non-zero singular values.
        past_length: longest past in the basis.
        future_length: longest future in the basis.

    Returns:
        A :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` with ``T[x] = A_x``.

    Example:
        >>> from piami.processes import from_spec
        >>> p = from_spec("rrxor")
        >>> g = observable_operator_model(p.word_probability, 2, rank=5, past_length=4,
        ...                               future_length=4)
        >>> w = [0, 1, 1, 0, 1, 1, 1, 0]
        >>> bool(abs(g.word_probability(w) - p.word_probability(w)) < 1e-12)
        True
    """
    if not callable(word_probability):
        raise PiamiTypeError(
            f"word_probability must be callable f(word) -> float; got {type(word_probability)}"
        )
    V = _check_int("n_symbols", n_symbols, 1)
    past = _check_int("past_length", past_length, 0)
    future = _check_int("future_length", future_length, 0)
    L = past + future + 1
    _check_table(V, L)
    tables = [_probability_table(word_probability, V, n) for n in range(L + 1)]
    H = _hankel_blocks(tables, V, past, future)
    U, s, Vt = np.linalg.svd(H, full_matrices=False)
    floor = s[0] * max(H.shape) * np.finfo(np.float64).eps
    r = _check_rank(rank, s, floor, H.shape, L)
    A, _, _ = _operators(tables, V, past, future, (U, s, Vt), r)
    return GeneralizedHiddenMarkovModel(A, name=f"observable_operators(rank={r})")


def _check_rank(rank: Any, s: np.ndarray, floor: float, shape: tuple[int, ...], L: int) -> int:
    r = _check_int("rank", rank, 1)
    if r > min(shape):
        raise PiamiValueError(
            f"rank={r} exceeds the {shape[0]} x {shape[1]} Hankel matrix of words up to "
            f"length {L}; use rank <= {min(shape)} or longer words"
        )
    n_nonzero = int(np.count_nonzero(s > floor))
    if r > n_nonzero:
        raise PiamiValueError(
            f"rank={r} but the Hankel matrix has only {n_nonzero} non-zero singular values "
            f"({np.array2string(s[: r + 1], precision=3)}); use rank <= {n_nonzero}"
        )
    return r


def _operators(
    tables: Tables,
    V: int,
    past: int,
    future: int,
    svd: tuple[np.ndarray, np.ndarray, np.ndarray],
    r: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A_x = D^-1 U^T H_x V``, ``alpha_0 = H[empty, :] V``, ``alpha_inf = D^-1 U^T H[:, empty]``
    (Balle et al. 2014), truncated to rank ``r``."""
    U, s, Vt = svd
    Ur, Vr, inv_d = U[:, :r], Vt[:r].T, 1.0 / s[:r]
    Hx = [_hankel_blocks(tables, V, past, future, x) for x in range(V)]
    A = np.stack([inv_d[:, None] * (Ur.T @ h @ Vr) for h in Hx])
    H0 = _hankel_blocks(tables, V, past, future)
    return A, H0[0] @ Vr, inv_d * (Ur.T @ H0[:, 0])
