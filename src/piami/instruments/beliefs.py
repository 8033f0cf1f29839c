"""Reading belief states out of a network: probes by layer, the baselines they must beat, intervals.

A network trained on a hidden Markov process predicts best by holding the belief
``eta_t = Pr(S_{t+1} | x_0..x_t)`` (:mod:`piami.theory.beliefs`, the exact twin of this module).
Shai et al. 2024 ("Transformers represent belief state geometry in their residual stream") find
that it does, linearly: an affine map of the residual stream recovers the belief with R² near 1.
This module measures that claim on arrays (activations and exact beliefs as numpy arrays, so it
works on any model), and the references it must be judged against:

- :func:`probe_r2_by_layer`: held-out R² of a :class:`~piami.instruments.probes.LinearProbe` from
  each layer's activations, and from all layers side by side, to a target (beliefs, or the exact
  next-token probabilities);
- the best any function of the position and the last k tokens can do: :func:`window_ids` codes
  each (position, k-token window); :func:`window_means` is the mean target per code, which is what
  least squares on the complete one-hot code predicts; :func:`onehot_r2` its R² as a belief
  read-out, :func:`next_token_kl` its KL as a next-token predictor;
- :func:`logprob_r2`: the R² of beliefs from the exact next-token log-probabilities, i.e. what a
  network carrying only the optimal prediction would score;
- :func:`kl_rows`: KL(exact || model) of each prefix;
- :func:`shuffled_r2`: a probe fitted to targets permuted across samples (a null, about
  ``-d / n_fit``);
- :func:`mean_interval` (95% normal interval of a mean over independent sequences),
  :func:`bootstrap_r2` (R² replicates resampling whole sequences, paired across predictions) and
  :func:`percentile_interval`.

Activations ``(n_seqs * pos, d_model)`` come from :func:`piami.models.residual_stream` or
:func:`piami.models.collect_activations`; rows are ordered sequence by sequence (the ``pos`` rows
of one sequence together), which :func:`bootstrap_r2` relies on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError
from piami.instruments.probes import LinearProbe, r2_scores
from piami.typing import Float, Int

#: The 97.5% quantile of the standard normal distribution (two-sided 95% intervals).
Z95 = 1.959963984540054


def _check_rows(what: str, *arrays: np.ndarray) -> None:
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise PiamiShapeError(f"{what} must have the same number of rows, got {lengths}")


def probe_r2_by_layer(
    fit: Sequence[Float[np.ndarray, "n_fit d_model"]],
    test: Sequence[Float[np.ndarray, "n_test d_model"]],
    y_fit: Float[np.ndarray, "n_fit dim"],
    y_test: Float[np.ndarray, "n_test dim"],
) -> tuple[list[float], dict[str, Float[np.ndarray, "n_test dim"]]]:
    """Held-out R² of a linear probe at every layer and from all layers concatenated.

    The probe (least squares with an intercept) is fitted on ``fit`` and scored on ``test``, two
    independent held-out sets (Shai et al. 2024, Fig. 3).

    Args:
        fit: one ``(n_fit, d_model)`` activation array per layer (e.g. embed, after each block).
        test: the same layers on the scoring set, ``(n_test, d_model)`` each.
        y_fit: targets of the fitting rows, ``(n_fit, dim)`` (e.g. exact beliefs).
        y_test: targets of the scoring rows, ``(n_test, dim)``.

    Returns:
        ``(r2, preds)``: ``r2`` has one variance-weighted R² per layer, then that of the
        concatenation; ``preds["final"]`` and ``preds["concat"]`` are the last layer's and the
        concatenation's predictions on the scoring set, ``(n_test, dim)``.
    """
    if len(fit) != len(test) or not fit:
        raise PiamiShapeError(
            f"fit and test must hold the same layers (at least one), got {len(fit)} and {len(test)}"
        )
    r2, preds = [], {}
    for i, (a, b) in enumerate(zip(fit, test, strict=True)):
        probe = LinearProbe().fit(a, y_fit)
        r2.append(probe.score(b, y_test))
        if i == len(fit) - 1:
            preds["final"] = probe.predict(b)
    probe = LinearProbe().fit(np.hstack(fit), y_fit)
    r2.append(probe.score(np.hstack(test), y_test))
    preds["concat"] = probe.predict(np.hstack(test))
    return r2, preds


def window_ids(inputs: Int[np.ndarray, "n_seqs pos"], k: int, n_symbols: int) -> np.ndarray:
    """The joint code of (position, last ``k`` tokens) at every position.

    Windows that start before position 0 are padded with the extra symbol ``n_symbols``, so each
    (position, window) pair gets its own integer.

    Args:
        inputs: ``(n_seqs, pos)`` token ids in ``[0, n_symbols)``.
        k: window length (>= 1): the tokens ``x_{t-k+1} .. x_t``.
        n_symbols: alphabet size.

    Returns:
        ``(n_seqs * pos,)`` int64 codes, sequence by sequence.
    """
    inputs = np.asarray(inputs)
    if inputs.ndim != 2:
        raise PiamiShapeError(f"inputs must be (n_seqs, pos) token ids, got shape {inputs.shape}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 or n_symbols < 1:
        raise PiamiValueError(f"k and n_symbols must be integers >= 1, got {k!r}, {n_symbols!r}")
    n, L = inputs.shape
    base = n_symbols + 1  # symbol n_symbols pads windows that start before position 0
    padded = np.concatenate([np.full((n, k - 1), n_symbols), inputs], axis=1)
    ids = np.broadcast_to(np.arange(L), (n, L)).astype(np.int64)
    for j in range(k):  # window x_{t-k+1} .. x_t
        ids = ids * base + padded[:, j : j + L]
    return ids.reshape(-1)


def window_means(
    ids_fit: Int[np.ndarray, " n_fit"],
    ids_test: Int[np.ndarray, " n_test"],
    y_fit: Float[np.ndarray, "n_fit dim"],
) -> Float[np.ndarray, "n_test dim"]:
    """The mean of ``y_fit`` over the fitting rows with each test row's code.

    This is what least squares on the complete one-hot code of the ids predicts (indicator
    features reproduce each category's mean exactly); codes unseen in fitting get the overall mean.

    Args:
        ids_fit: ``(n_fit,)`` codes of the fitting rows (e.g. from :func:`window_ids`).
        ids_test: ``(n_test,)`` codes of the scoring rows.
        y_fit: ``(n_fit, dim)`` targets of the fitting rows.

    Returns:
        ``(n_test, dim)`` predictions.
    """
    if y_fit.ndim != 2:
        raise PiamiShapeError(f"y_fit must be (n_fit, dim), got shape {y_fit.shape}")
    _check_rows("ids_fit and y_fit", ids_fit, y_fit)
    codes, inv = np.unique(ids_fit, return_inverse=True)
    sums = np.zeros((len(codes), y_fit.shape[1]))
    np.add.at(sums, inv, y_fit)
    means = sums / np.bincount(inv, minlength=len(codes))[:, None]
    pos = np.searchsorted(codes, ids_test)
    pos = np.minimum(pos, len(codes) - 1)
    seen = codes[pos] == ids_test
    return np.where(seen[:, None], means[pos], y_fit.mean(axis=0))


def onehot_r2(
    ids_fit: Int[np.ndarray, " n_fit"],
    ids_test: Int[np.ndarray, " n_test"],
    y_fit: Float[np.ndarray, "n_fit dim"],
    y_test: Float[np.ndarray, "n_test dim"],
) -> float:
    """Held-out R² of a linear probe on the complete one-hot code of the ids.

    Equal to the R² of :func:`window_means` (the mean target per code): with the codes of
    :func:`window_ids`, the best read-out of the target from the position and the last k tokens.
    """
    return r2_scores(y_test, window_means(ids_fit, ids_test, y_fit))[0]


def kl_rows(
    p: Float[np.ndarray, "*rows d_vocab"], logq: Float[np.ndarray, "*rows d_vocab"]
) -> Float[np.ndarray, " *rows"]:
    """KL(p || q) of each row, in nats.

    Args:
        p: exact probabilities, ``(..., d_vocab)`` (zeros allowed).
        logq: the model's log-probabilities (a log-softmax of its logits), same shape.

    Returns:
        ``sum_x p(x) (log p(x) - log q(x))`` over the last axis, shape ``p.shape[:-1]``.
    """
    if np.shape(p) != np.shape(logq):
        raise PiamiShapeError(
            f"p and logq must have the same shape, got {np.shape(p)} and {np.shape(logq)}"
        )
    return np.sum(p * (np.log(np.maximum(p, 1e-300)) - logq), axis=-1)


def next_token_kl(
    ids_fit: Int[np.ndarray, " n_fit"],
    ids_test: Int[np.ndarray, " n_test"],
    p_fit: Float[np.ndarray, "n_fit d_vocab"],
    p_test: Float[np.ndarray, "n_test d_vocab"],
) -> float:
    """Mean KL(exact || q) of the best next-token predictor from the code of the ids alone.

    ``q`` = the mean exact next-token distribution over the fitting prefixes with the same code,
    i.e. Pr(next token | position, last k tokens) estimated on the fitting set: the predictor an
    ideal network that reads only those tokens would make. Its KL is the information the rest of
    the context adds.

    Args:
        ids_fit, ids_test: codes of the fitting and scoring prefixes (:func:`window_ids`).
        p_fit, p_test: exact next-token probabilities after those prefixes.

    Returns:
        The mean KL over the scoring prefixes, in nats.
    """
    q = window_means(ids_fit, ids_test, p_fit)
    return float(np.mean(kl_rows(p_test, np.log(np.maximum(q, 1e-300)))))


def logprob_r2(
    p_fit: Float[np.ndarray, "n_fit d_vocab"],
    p_test: Float[np.ndarray, "n_test d_vocab"],
    y_fit: Float[np.ndarray, "n_fit n_states"],
    y_test: Float[np.ndarray, "n_test n_states"],
) -> float:
    """Held-out R² of beliefs from the exact next-token log-probabilities (the optimal logits).

    A network that carried only the optimal next-token prediction would score this; a higher R²
    from the residual stream means it carries more of the belief than its output needs (Shai et
    al. 2024, Sec. 4).
    """
    _check_rows("p_fit and y_fit", p_fit, y_fit)
    _check_rows("p_test and y_test", p_test, y_test)
    logs = [np.log(np.maximum(p, 1e-12)) for p in (p_fit, p_test)]
    return float(LinearProbe().fit(logs[0], y_fit).score(logs[1], y_test))


def shuffled_r2(
    fit: Sequence[Float[np.ndarray, "n_fit d_model"]],
    test: Sequence[Float[np.ndarray, "n_test d_model"]],
    y_fit: Float[np.ndarray, "n_fit dim"],
    y_test: Float[np.ndarray, "n_test dim"],
    rng: np.random.Generator,
) -> float:
    """Held-out R² of the all-layers probe on targets permuted across samples (a null).

    With targets unrelated to the features, least squares scores about ``-d / n_fit`` out of
    sample; a probe or a data split that leaked would score above 0.

    Args:
        fit, test: activations per layer, as for :func:`probe_r2_by_layer`.
        y_fit, y_test: the targets, permuted here (each set with its own permutation).
        rng: draws the two permutations.
    """
    _check_rows("y_fit and the fitting activations", y_fit, *fit)
    _check_rows("y_test and the scoring activations", y_test, *test)
    probe = LinearProbe().fit(np.hstack(fit), y_fit[rng.permutation(len(y_fit))])
    return float(probe.score(np.hstack(test), y_test[rng.permutation(len(y_test))]))


def mean_interval(per_seq: Float[np.ndarray, " n_seqs"]) -> tuple[float, tuple[float, float]]:
    """Mean over independent sequences and its 95% normal interval ``mean +- Z95 s / sqrt(n)``.

    Args:
        per_seq: one value per independent sequence (at least 2).

    Returns:
        ``(mean, (low, high))``.
    """
    if np.ndim(per_seq) != 1 or len(per_seq) < 2:
        raise PiamiShapeError(
            f"per_seq must be a 1-d array of at least 2 values, got shape {np.shape(per_seq)}"
        )
    m = float(np.mean(per_seq))
    h = Z95 * float(np.std(per_seq, ddof=1)) / np.sqrt(len(per_seq))
    return m, (m - h, m + h)


def bootstrap_r2(
    y: Float[np.ndarray, "n_rows dim"],
    preds: dict[str, Float[np.ndarray, "n_rows dim"]],
    seq_len: int,
    rng: np.random.Generator,
    n_boot: int = 400,
) -> dict[str, Float[np.ndarray, " n_boot"]]:
    """Bootstrap replicates of the variance-weighted R² of each prediction, resampling sequences.

    ``y`` and each prediction are ``(n_seqs * seq_len, dim)`` with the rows of one sequence
    together; whole sequences are resampled (they are independent, their positions are not).
    The same resamples serve every prediction, so differences are paired.

    Args:
        y: targets, ``(n_seqs * seq_len, dim)``.
        preds: predictions by name, each shaped like ``y``.
        seq_len: rows per sequence.
        rng: draws the resamples.
        n_boot: number of replicates.

    Returns:
        ``n_boot`` R² replicates per prediction name.
    """
    if seq_len < 1 or n_boot < 1 or len(y) % seq_len:
        raise PiamiValueError(
            f"need seq_len >= 1 dividing the {len(y)} rows of y, and n_boot >= 1; got seq_len "
            f"{seq_len}, n_boot {n_boot}"
        )
    for name, v in preds.items():
        if np.shape(v) != np.shape(y):
            raise PiamiShapeError(f"prediction {name!r} has shape {np.shape(v)}, y {y.shape}")
    n = len(y) // seq_len

    def per_seq(a: np.ndarray) -> np.ndarray:
        return a.reshape(n, seq_len, -1).sum(axis=1)

    s1, s2 = per_seq(y), per_seq(y**2)
    sse = {k: per_seq((y - v) ** 2).sum(axis=1) for k, v in preds.items()}
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (B, n)
    total = n * seq_len
    sst = (counts @ s2).sum(axis=1) - ((counts @ s1) ** 2).sum(axis=1) / total
    return {k: 1.0 - (counts @ v) / sst for k, v in sse.items()}


def percentile_interval(reps: Float[np.ndarray, " n_boot"]) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of bootstrap replicates (a 95% percentile interval)."""
    if np.size(reps) < 1:
        raise PiamiValueError("percentile_interval needs at least one replicate")
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


__all__ = [
    "Z95",
    "bootstrap_r2",
    "kl_rows",
    "logprob_r2",
    "mean_interval",
    "next_token_kl",
    "onehot_r2",
    "percentile_interval",
    "probe_r2_by_layer",
    "shuffled_r2",
    "window_ids",
    "window_means",
]
