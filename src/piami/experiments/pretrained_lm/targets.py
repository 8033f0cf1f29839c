"""The exact side of pretrained-lm: belief targets, the last-k read-outs, and reference losses.

For a hidden Markov process with labeled transition matrices ``T[x]`` and stationary ``pi``, the
belief after the symbols ``x_0 .. x_t`` is the forward filter (Shai et al. 2024, eq. 1; Rabiner
1989, eq. 20)

    eta_{-1} = pi,      eta_t = eta_{t-1} T[x_t] / (eta_{t-1} T[x_t] 1),

the distribution of the state the process is in after emitting ``x_t``. A probe that reads
``eta_t`` from a network's residual stream at symbol ``t`` finds what the whole past says about the
future. The yardstick it must beat is the best read-out from the position and the last ``k``
symbols: by the tower property, ``E[eta_t | x_{t-k+1} .. x_t] = Pr(S | x_{t-k+1} .. x_t)``, the
same filter run over the window alone from ``pi`` (the process is stationary, so the window's
first state is ``pi``-distributed whatever ``t``; for ``t < k`` the window is the whole past).
That conditional mean is the least-squares optimum among all functions of (position, window), so
its R² bounds every position + last-k probe from above, with no fitting noise.

Reference losses by context position ``t`` (nats): the exact optimal ``-log Pr(x_t | x_<t)``; the
best prediction from the last symbol alone, ``-log Pr(x_t | x_{t-1})`` (the same filter over the
one-symbol window, then ``Pr(x | eta) = eta T[x] 1``), whose mean is the conditional entropy
``H(X_t | X_{t-1})``: no function of the last symbol predicts better, so a model whose predictions
follow the last symbol (a copy bias, as tied embeddings give even with random weights) cannot
beat it; the unigram entropy ``H(X) = -sum_x p(x) log p(x)`` of the stationary symbol marginal
``p(x) = pi T[x] 1`` (what a predictor that ignores order can do at best); and the in-context
unigram, the Krichevsky-Trofimov estimate ``(c_t(x) + 1/2) / (t + k/2)`` from the counts of the
symbols seen so far (Krichevsky & Trofimov 1981).
"""

from __future__ import annotations

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError
from piami.processes.hmm import HiddenMarkovModel
from piami.typing import Float, Int


def _check(tokens: np.ndarray, proc: HiddenMarkovModel) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] < 1:
        raise PiamiShapeError(f"tokens must be (n_seqs, seq_len >= 1), got shape {tokens.shape}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= proc.n_symbols):
        raise PiamiValueError(f"tokens must lie in [0, {proc.n_symbols}) for {proc.spec}")
    return tokens.astype(np.int64)


def belief_targets(
    proc: HiddenMarkovModel, tokens: Int[np.ndarray, "n_seqs pos"]
) -> Float[np.ndarray, "n_seqs pos n_states"]:
    """The exact belief after each symbol: row ``t`` is ``eta_t``, filtered over ``x_0 .. x_t``.

    Args:
        proc: the process that generated ``tokens``.
        tokens: ``(n_seqs, seq_len)`` symbols.

    Returns:
        ``(n_seqs, seq_len, n_states)`` beliefs (the root ``pi`` is not included).
    """
    return proc.beliefs(_check(tokens, proc))[:, 1:]


def window_beliefs(
    proc: HiddenMarkovModel, tokens: Int[np.ndarray, "n_seqs pos"], k: int
) -> Float[np.ndarray, "n_seqs pos n_states"]:
    """The best read-out of the belief from the position and the last ``k`` symbols.

    Row ``t`` is the filter over ``x_{max(0, t-k+1)} .. x_t`` started from ``pi``, which equals
    ``E[eta_t | position, last k symbols]`` (module docstring).

    Args:
        proc: the process.
        tokens: ``(n_seqs, seq_len)`` symbols.
        k: window length (>= 1).

    Returns:
        ``(n_seqs, seq_len, n_states)``.
    """
    tokens = _check(tokens, proc)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise PiamiValueError(f"k must be an integer >= 1, got {k!r}")
    n, L = tokens.shape
    out = belief_targets(proc, tokens).copy()  # t < k: the window is the whole past
    if k < L:
        win = np.lib.stride_tricks.sliding_window_view(tokens, k, axis=1)  # (n, L - k + 1, k)
        last = proc.beliefs(np.ascontiguousarray(win.reshape(-1, k)))[:, -1]
        out[:, k - 1 :] = last.reshape(n, L - k + 1, -1)
    return out


def onehot_history(
    tokens: Int[np.ndarray, "n_seqs pos"], K: int, n_symbols: int
) -> Float[np.ndarray, "n_seqs pos features"]:
    """One-hot codes of the last ``K`` symbols side by side: the features of a *linear* read-out
    of the recent history.

    Feature block ``j`` (``j = 0 .. K-1``) codes ``x_{t-j}`` among ``n_symbols + 1`` values (the
    extra one: before the sequence start). A probe on these features is the best affine function
    of the recent symbols taken one at a time; what a residual stream carries beyond it is a
    nonlinear function of the history (as the belief is).

    Returns:
        ``(n_seqs, seq_len, K * (n_symbols + 1))`` zeros and ones.
    """
    tokens = np.asarray(tokens)
    n, L = tokens.shape
    pad = np.concatenate([np.full((n, K - 1), n_symbols), tokens], axis=1)
    eye = np.eye(n_symbols + 1)
    return np.concatenate([eye[pad[:, K - 1 - j : K - 1 - j + L]] for j in range(K)], axis=-1)


def symbol_marginal(proc: HiddenMarkovModel) -> Float[np.ndarray, " n_symbols"]:
    """``p(x) = pi T[x] 1``: the stationary probability of each symbol."""
    pi = proc.stationary_distribution()
    return np.array([pi @ proc.T[x] @ np.ones(proc.n_states) for x in range(proc.n_symbols)])


def reference_losses(
    proc: HiddenMarkovModel, tokens: Int[np.ndarray, "n_seqs pos"]
) -> dict[str, np.ndarray | float]:
    """Per-symbol losses (nats) of the exact and the unigram predictors, and the exact curve.

    Args:
        proc: the process.
        tokens: ``(n_seqs, seq_len)`` symbols.

    Returns:
        ``optimal``, ``last_symbol``, ``unigram``, ``in_context_unigram``: ``(n_seqs, seq_len)``
        losses
        ``-log q(x_t | x_<t)``; ``optimal_expected``: ``(seq_len,)`` exact expected optimal loss
        ``h(t + 1)`` (:meth:`~piami.processes.HiddenMarkovModel.optimal_loss`);
        ``unigram_entropy``: ``H(X)``.
    """
    tokens = _check(tokens, proc)
    n, L = tokens.shape
    k = proc.n_symbols
    p_opt = proc.next_token_probs(tokens)[:, :L]
    emit = proc.T.sum(axis=2).T  # emit[s, x] = Pr(x | state s)
    prior = window_beliefs(proc, tokens, 1)[:, :-1]  # belief from x_{t-1} alone
    p_last = np.concatenate(
        [np.broadcast_to(proc.stationary_distribution() @ emit, (n, 1, k)), prior @ emit], axis=1
    )
    marg = symbol_marginal(proc)
    onehot = np.eye(k)[tokens]  # (n, L, k)
    before = np.cumsum(onehot, axis=1) - onehot  # counts of x_0 .. x_{t-1}
    kt = (before + 0.5) / (np.arange(L)[None, :, None] + k / 2)

    def loss(q: np.ndarray) -> np.ndarray:
        return -np.log(np.maximum(np.take_along_axis(q, tokens[..., None], -1)[..., 0], 1e-300))

    return {
        "optimal": loss(p_opt),
        "last_symbol": loss(p_last),
        "unigram": -np.log(np.maximum(marg[tokens], 1e-300)),
        "in_context_unigram": loss(kt),
        "optimal_expected": np.asarray(proc.optimal_loss(L), dtype=float),
        "unigram_entropy": float(-np.sum(marg * np.log(np.where(marg > 0, marg, 1.0)))),
    }


__all__ = [
    "belief_targets",
    "onehot_history",
    "reference_losses",
    "symbol_marginal",
    "window_beliefs",
]
