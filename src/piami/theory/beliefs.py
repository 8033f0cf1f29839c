"""Beliefs: what an optimal observer knows about the hidden state of a hidden Markov process.

An edge-emitting hidden Markov model is a set of substochastic matrices ``T[x]`` with
``T[x, i, j] = Pr(emit x, go to j | in i)``. An observer who has read ``x_0 .. x_{t-1}`` holds a
*belief* (mixed state) ``eta_t = Pr(S_t | x_0 .. x_{t-1})``, a row vector on the simplex. Bayes'
rule for one more symbol is linear then normalized (Shai et al. 2024, eq. 2;
Jurgens & Crutchfield 2021)::

    Pr(x | eta) = eta T[x] r,        eta' = eta T[x] / (eta T[x] r)

with ``r`` the all-ones vector for an HMM and the principal right eigenvector for a generalized HMM
(whose "beliefs" may have negative entries). The root ``eta_0`` is the stationary distribution, the
left eigenvector of ``sum_x T[x]`` normalized so that ``eta_0 r = 1``.

Normalizing after every symbol keeps the recursion exact in float64 for sequences of any length (the
unnormalized vector ``eta_0 T[x_0] .. T[x_{t-1}]`` underflows after a few hundred symbols).

The set of beliefs reachable from the root, with the symbol-labelled transitions between them, is
the *mixed-state presentation* (MSP). It is finite for RRXOR (36 states) and infinite for Mess3,
whose beliefs fill a fractal in the 2-simplex. :func:`mixed_state_presentation` builds it breadth
first, merging beliefs that agree within a tolerance, up to a depth.
"""

from __future__ import annotations

import numpy as np

from piami.errors import PiamiValueError
from piami.typing import Float, Int

# Pr(x | eta) at or below this counts as zero: the symbol cannot follow this history.
PROB_FLOOR = 1e-300
# Sequences at least this long, and 64x longer than the batch, use the prefix-product scan.
SCAN_MIN_LEN = 4096


def stationary_distribution(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
) -> Float[np.ndarray, " n_states"]:
    """Stationary distribution: the left eigenvector of ``M = sum_x T[x]`` with eigenvalue 1.

    Args:
        T: transition tensor, already normalized so that the principal eigenvalue of ``M`` is 1.
        right: principal right eigenvector (all ones for an HMM); the result satisfies
            ``pi @ right = 1``.

    Returns:
        ``pi`` of shape ``(n_states,)`` with ``pi M = pi``.

    Raises:
        PiamiValueError: when the eigenvalue 1 is not simple (a non-ergodic process has no unique
            stationary distribution).
    """
    M = T.sum(axis=0)
    n = M.shape[0]
    r = np.ones(n) if right is None else right
    # pi (M - I) = 0 and pi r = 1, solved jointly by least squares.
    A = np.vstack([(M - np.eye(n)).T, r[None, :]])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    sv = np.linalg.svd((M - np.eye(n)).T, compute_uv=False)
    if n > 1 and sv[-2] < 1e-10 * max(1.0, sv[0]):
        raise PiamiValueError(
            f"the state matrix sum_x T[x] has eigenvalue 1 more than once (singular values of "
            f"M - I: {np.array2string(sv[-3:], precision=2)}), so the process is not ergodic and "
            "has no unique stationary distribution; give an irreducible transition structure"
        )
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    if right is None:
        pi = np.where(np.abs(pi) < 1e-15, 0.0, pi)
        pi = np.clip(pi, 0.0, None)
        pi = pi / pi.sum()
    return pi


def belief_trajectories(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    tokens: Int[np.ndarray, "n_seqs seq_len"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    want_beliefs: bool = True,
    want_probs: bool = True,
) -> tuple[
    Float[np.ndarray, "n_seqs seq_len+1 n_states"], Float[np.ndarray, "n_seqs seq_len+1 n_symbols"]
]:
    """Beliefs and next-symbol distributions after every prefix of every sequence.

    Loops over time only; each step is one batched matrix product over all sequences.

    Args:
        T: transition tensor ``(n_symbols, n_states, n_states)``.
        tokens: int array ``(n_seqs, seq_len)`` of symbols in ``[0, n_symbols)``.
        root: belief before any symbol (the stationary distribution for the process itself).
        right: principal right eigenvector (None: all ones, an HMM).
        want_beliefs: False skips storing the beliefs (returned as None), to save the memory
            traffic of writing them.
        want_probs: False skips storing the probabilities (returned as None), likewise.

    Returns:
        ``(beliefs, probs)``: ``beliefs[:, t] = Pr(S_t | x_<t)`` of shape ``(n_seqs, seq_len + 1,
        n_states)`` and ``probs[:, t] = Pr(X_t = . | x_<t)`` of shape ``(n_seqs, seq_len + 1,
        n_symbols)``.

    Raises:
        PiamiValueError: a sequence contains a symbol of probability zero after its prefix.
    """
    n_sym, n_st, _ = T.shape
    n, L = tokens.shape
    r = np.ones(n_st) if right is None else right
    if L >= SCAN_MIN_LEN and n * 64 <= L:
        return _belief_scan(T, tokens, root=np.asarray(root, dtype=np.float64), right=r)
    # Time-major, sequences along the fast axis: every operation acts on length-n vectors.
    Wt = np.ascontiguousarray(T.transpose(0, 2, 1).reshape(n_sym * n_st, n_st))  # [x*S + j, i]
    Wrt = np.ascontiguousarray(T @ r)  # (n_symbols, n_states): [x, i] = T[x, i, :] @ r
    tok_t = np.ascontiguousarray(tokens.T)
    beliefs = np.empty((n, L + 1, n_st)) if want_beliefs else None
    probs = np.empty((n, L + 1, n_sym)) if want_probs else None
    eta = np.repeat(np.asarray(root, dtype=np.float64)[:, None], n, axis=1)  # (n_states, n)
    cols = np.arange(n)
    idx_z = tok_t * n + cols  # flat index of Pr(x_t | eta_t) in the (n_symbols, n) block
    idx_u = tok_t * (n_st * n) + cols  # flat index of (eta_t T[x_t])_0 in the (X*S, n) block
    offs = (np.arange(n_st) * n)[:, None]
    z_all = np.empty((L, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(L + 1):
            if beliefs is not None:
                beliefs[:, t] = eta.T
            p = Wrt @ eta  # (n_symbols, n)
            if probs is not None:
                probs[:, t] = p.T
            if t == L:
                break
            z = p.ravel()[idx_z[t]]
            z_all[t] = z
            U = Wt @ eta  # (n_symbols * n_states, n): row x*S + j is (eta T[x])_j
            eta = U.ravel()[idx_u[t] + offs] / z
    bad = ~(z_all > PROB_FLOOR)
    if bad.any():
        t, k = (int(v) for v in np.argwhere(bad)[0])
        raise PiamiValueError(
            f"sequence {k} has symbol {int(tokens[k, t])} at position {t}, which has probability "
            f"{z_all[t, k]:.3g} after its prefix {tokens[k, : min(t, 20)].tolist()}"
            f"{'...' if t > 20 else ''}; these tokens were not generated by this process"
        )
    return beliefs, probs


def _belief_scan(
    T: np.ndarray, tokens: np.ndarray, *, root: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beliefs of few long sequences by a parallel prefix product (Hillis & Steele 1986).

    ``eta_t`` is proportional to ``root T[x_0] .. T[x_{t-1}]``; the prefix products are formed in
    ``log2(L)`` rounds of batched matrix products, each product rescaled by its largest entry (the
    belief is scale-free), so no loop runs over time.
    """
    n, L = tokens.shape
    n_st = T.shape[1]
    Wr = (T @ right).T
    beliefs = np.empty((n, L + 1, n_st))
    probs = np.empty((n, L + 1, T.shape[0]))
    for k in range(n):
        A = T[tokens[k]]  # (L, S, S); A[t] becomes T[x_0] .. T[x_t]
        step = 1
        while step < L:
            A[step:] = A[:-step] @ A[step:]
            A[step:] /= np.abs(A[step:]).max(axis=(1, 2), keepdims=True)
            step *= 2
        v = root @ A  # (L, S)
        z = v @ right
        bad = ~(np.abs(z) > 0) | ~np.isfinite(z)
        eta = np.vstack([root[None], v / np.where(bad, 1.0, z)[:, None]])
        p = eta @ Wr
        zt = p[np.arange(L), tokens[k]]
        bad_t = ~(zt > PROB_FLOOR)
        if bad.any() or bad_t.any():
            t = int(np.flatnonzero(bad_t | np.append(bad[1:], False))[0])
            raise PiamiValueError(
                f"sequence {k} has symbol {int(tokens[k, t])} at position {t}, which has "
                "probability zero after its prefix; "
                "these tokens were not generated by this process"
            )
        beliefs[k] = eta
        probs[k] = p
    return beliefs, probs


__all__ = [
    "PROB_FLOOR",
    "belief_trajectories",
    "stationary_distribution",
]
