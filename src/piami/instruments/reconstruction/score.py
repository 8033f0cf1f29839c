"""How well a reconstructed model predicts: excess log-loss against the exact predictor.

State counts are the wrong headline for reconstruction: on a process without a finite
synchronizing word (RRXOR) every CSSR's state count grows with the history length while its
predictions improve. The right one is the excess log-loss

    ΔL = E_P[ ln P(x_t | x_<t) − ln Q(x_t | x_<t) ]  (nats per symbol),

the rate at which the model ``Q`` loses against the true process ``P`` on data from ``P``: a
Kullback–Leibler divergence rate, zero exactly when ``Q`` predicts as well as the process allows.
Both predictors are exact belief-state filters of their machines; the expectation is a mean over
sampled sequences, with its standard error across sequences.

A reconstructed machine can call a possible symbol impossible (a transition never seen in the
training data). Its predictions are therefore smoothed, ``Q_eps = (1 - eps) Q + eps / k``, by
emitting each symbol with probability ``eps / k`` and staying in place; every impossible event then
costs about ``ln(k / eps)`` nats, visible in the mean and counted separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.processes.ghmm import GeneralizedHiddenMarkovModel
from piami.processes.hmm import HiddenMarkovModel

__all__ = ["ExcessLogLoss", "excess_log_loss", "kl_rate_unifilar", "smoothed"]


@dataclass(frozen=True)
class ExcessLogLoss:
    """Excess log-loss of a model against the true process.

    Attributes:
        value: mean excess log-loss, nats per symbol.
        stderr: its standard error across the sampled sequences.
        impossible: share of scored symbols the unsmoothed model gave probability below ``eps``.
        n_symbols_scored: number of predictions averaged.
    """

    value: float
    stderr: float
    impossible: float
    n_symbols_scored: int


def smoothed(model: GeneralizedHiddenMarkovModel, eps: float) -> GeneralizedHiddenMarkovModel:
    """``(1 - eps) T + eps / k`` emitted in place: a model that calls no symbol impossible."""
    k, n = model.n_symbols, model.n_states
    T = (1.0 - eps) * model.T + (eps / k) * np.eye(n)[None, :, :]
    if isinstance(model, HiddenMarkovModel):
        return HiddenMarkovModel(T, name=f"{model.name} (smoothed)")
    return GeneralizedHiddenMarkovModel(T, name=f"{model.name} (smoothed)")


def excess_log_loss(
    process: GeneralizedHiddenMarkovModel,
    model: GeneralizedHiddenMarkovModel,
    *,
    n_seqs: int = 200,
    seq_len: int = 200,
    burn_in: int = 50,
    eps: float = 1e-6,
    rng: np.random.Generator,
) -> ExcessLogLoss:
    """Excess log-loss (nats/symbol) of ``model`` on fresh data from ``process``.

    Args:
        process: the true process (its exact predictor is the reference).
        model: the reconstructed machine, over the same symbols.
        n_seqs: sequences sampled from ``process``.
        seq_len: length of each.
        burn_in: leading positions not scored (both filters start from their stationary belief, so
            early positions measure synchronization, not the rate).
        eps: smoothing of the model's predictions (see the module docstring).
        rng: generator of the sample.

    Raises:
        PiamiValueError: alphabets differ, or ``burn_in >= seq_len``.

    Example:
        >>> import numpy as np
        >>> from piami.processes import from_spec
        >>> gm = from_spec("golden_mean")
        >>> r = excess_log_loss(gm, gm, n_seqs=10, seq_len=60, rng=np.random.default_rng(0))
        >>> abs(r.value) < 1e-5
        True
    """
    if model.n_symbols != process.n_symbols:
        raise PiamiValueError(
            f"the model has {model.n_symbols} symbols, the process {process.n_symbols}; "
            "reconstruct with n_symbols equal to the process's alphabet"
        )
    if not 0 <= burn_in < seq_len:
        raise PiamiValueError(f"burn_in must be in [0, seq_len={seq_len}), got {burn_in}")
    tokens = np.asarray(process.sample(n_seqs, seq_len, rng=rng))
    idx = np.arange(seq_len)
    rows = np.arange(n_seqs)[:, None]
    p = process.next_token_probs(tokens)[:, :-1][rows, idx, tokens]
    q = smoothed(model, eps).next_token_probs(tokens)[:, :-1][rows, idx, tokens]
    diff = (np.log(p) - np.log(q))[:, burn_in:]
    per_seq = diff.mean(axis=1)
    return ExcessLogLoss(
        value=float(per_seq.mean()),
        stderr=float(per_seq.std(ddof=1) / np.sqrt(n_seqs)) if n_seqs > 1 else float("nan"),
        impossible=float(np.mean(q[:, burn_in:] < eps)),
        n_symbols_scored=int(diff.size),
    )


def _successors(T: np.ndarray) -> np.ndarray:
    """``(n_states, n_symbols)`` next state of a unifilar machine (-1: the symbol is forbidden)."""
    allowed = T.sum(axis=2) > 0  # (k, n)
    nxt = np.where(allowed, T.argmax(axis=2), -1)
    return nxt.T


def kl_rate_unifilar(
    process: HiddenMarkovModel, model: HiddenMarkovModel, *, n_iter: int = 20_000
) -> float:
    """Exact excess log-loss (KL divergence rate, nats/symbol) between two unifilar machines.

    Both machines are deterministic given their state and the symbol, so the pair (true state,
    model state) is a Markov chain driven by the true process. With ``mu`` its long-run
    distribution (the Cesàro mean of the chain from the true stationary distribution times a
    uniform model state, so a model that synchronizes forgets its start),

        D = sum_{s, q} mu(s, q) sum_x p(x | s) ln(p(x | s) / q(x | q)),

    the rate an encoder using the model loses against the process (Cover & Thomas 2006, §4.5 for
    Markov sources). It is ``inf`` when the model forbids a symbol the process emits.

    Raises:
        PiamiValueError: a machine is not unifilar, or the alphabets differ.

    Example:
        >>> from piami.processes import from_spec
        >>> gm = from_spec("golden_mean")
        >>> kl_rate_unifilar(gm, gm)
        0.0
    """
    for name, m in (("process", process), ("model", model)):
        if not (isinstance(m, HiddenMarkovModel) and m.is_unifilar()):
            raise PiamiValueError(f"the {name} must be a unifilar HiddenMarkovModel")
    if model.n_symbols != process.n_symbols:
        raise PiamiValueError(
            f"the model has {model.n_symbols} symbols, the process {process.n_symbols}"
        )
    P, Q = process.T, model.T
    p_emit, q_emit = P.sum(axis=2).T, Q.sum(axis=2).T  # (n, k) Pr(x | state)
    p_next, q_next = _successors(P), _successors(Q)
    n_p, n_q, k = P.shape[1], Q.shape[1], P.shape[0]
    # the joint chain on pairs (s, q); a symbol the model forbids leads to no pair (loss: inf)
    M = np.zeros((n_p * n_q, n_p * n_q))
    local = np.zeros(n_p * n_q)
    for s in range(n_p):
        for q in range(n_q):
            i = s * n_q + q
            for x in range(k):
                px = p_emit[s, x]
                if px <= 0:
                    continue
                if q_emit[q, x] <= 0:
                    local[i] = np.inf
                    continue
                M[i, p_next[s, x] * n_q + q_next[q, x]] += px
                local[i] += px * (np.log(px) - np.log(q_emit[q, x]))
    # Mass that meets a forbidden symbol leaves the chain. Lost in the transient (before the model
    # synchronizes) it costs a finite amount once, nothing per symbol; lost for ever after, the
    # chain empties and the rate is infinite.
    mu = np.kron(process.stationary_distribution(), np.full(n_q, 1.0 / n_q))
    mean = np.zeros_like(mu)
    for step in range(n_iter):
        mu = mu @ M
        if step >= n_iter // 2:  # the Cesàro mean of the second half: transients are gone
            mean += mu
    if mean.sum() < 1e-9:
        return float("inf")
    mean /= mean.sum()
    reached = mean > 1e-12
    if np.any(np.isinf(local[reached])):
        return float("inf")
    return float(mean[reached] @ local[reached])
