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

__all__ = ["ExcessLogLoss", "excess_log_loss", "smoothed"]


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
