"""Belief-state geometry on any model's activations: probes by layer, their baseline and null.

A network trained on a hidden Markov process predicts best by holding the belief
``eta_t = Pr(S_{t+1} | x_0..x_t)`` (:mod:`piami.theory.beliefs`); Shai et al. 2024 ("Transformers
represent belief state geometry in their residual stream", Fig. 3) find that an affine map of the
residual stream recovers it, with held-out R² near 1. The claim is only as strong as what it is
set beside. :func:`probe_beliefs` measures it on collected activations (from
:func:`piami.models.collect_activations`, so from piami, Hugging Face or TransformerLens models
alike) together with its two references:

- **probe R²** of each activation name, and of all names side by side: a
  :class:`~piami.instruments.probes.LinearProbe` (least squares with an intercept) fitted on the
  first ``fit_frac`` of the sequences, scored on the rest (variance-weighted R²,
  :func:`~piami.instruments.probes.r2_scores`);
- **the position + last-k-tokens baseline**: the best any function of the position and the last
  ``k`` tokens can do, for ``k = 1 .. last_k``. Least squares on the complete one-hot code of
  (position, window) predicts the mean target of each code
  (:func:`~piami.instruments.beliefs.window_means`); a network beats it only by carrying more of
  the context than those tokens;
- **a shuffled-target null**: the same probes fitted and scored on targets permuted across rows,
  which scores about ``-d / n_fit`` when nothing leaks between the fitting and scoring sets.

:func:`predictor_kl` is the other half of the measurement: ``KL(exact || model)`` of the model's
next-token distribution after each prefix, in nats.

The targets need not be beliefs: any ``(n_seqs, seq_len, k)`` array per prefix works (the exact
next-token probabilities, say). Sequences must be independent samples; the split is by order (the
first ``round(fit_frac * n_seqs)`` fit, the rest score), so shuffle sequences that are not.

Example:
    >>> import numpy as np
    >>> from piami.processes import from_spec
    >>> proc = from_spec("mess3(x=0.05, a=0.85)")
    >>> s = proc.sample(400, 9, rng=np.random.default_rng(0), return_beliefs=True)
    >>> tokens, beliefs = s.tokens[:, :8], s.beliefs[:, 1:9]    # belief after each prefix
    >>> acts = {"linear": beliefs @ np.random.default_rng(1).normal(size=(3, 16))}
    >>> rep = probe_beliefs(acts, beliefs, tokens, random_state=0)
    >>> rep.r2["linear"] > 0.999, rep.baseline_r2[3] < rep.r2["linear"], rep.shuffled_r2_all < 0.02
    (True, True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.beliefs import kl_rows, window_ids, window_means
from piami.instruments.contract import RandomState, check_random_state
from piami.instruments.probes import LinearProbe, r2_scores
from piami.typing import Float, Int


@dataclass(frozen=True, kw_only=True)
class BeliefProbeReport:
    """What :func:`probe_beliefs` measured (R² values are held-out, variance-weighted).

    Attributes:
        names: the activation names, in the order given.
        r2: probe R² of the targets from each name's activations.
        r2_all: probe R² from all names side by side (concatenated features).
        shuffled_r2: R² of each name's probe fitted and scored on targets permuted across rows
            (one pair of permutations shared by every name): a null, about ``-d / n_fit``.
        shuffled_r2_all: the same for all names side by side.
        baseline_r2: R² of the best read-out from the position and the last ``k`` tokens, by
            ``k = 1 .. last_k``.
        predictions: each name's probe on the scoring rows, ``(n_score_rows, k)``.
        prediction_all: the all-names probe on the scoring rows.
        baseline_predictions: the baseline's predictions on the scoring rows, by ``k``.
        targets: the scoring rows' targets, ``(n_score_rows, k)``, sequence by sequence (so
            :func:`~piami.instruments.beliefs.bootstrap_r2` can resample whole sequences).
        n_fit_seqs: sequences that fitted the probes.
        n_score_seqs: sequences that scored them.
        seq_len: positions per sequence.
    """

    names: tuple[str, ...]
    r2: dict[str, float]
    r2_all: float
    shuffled_r2: dict[str, float]
    shuffled_r2_all: float
    baseline_r2: dict[int, float]
    predictions: dict[str, np.ndarray]
    prediction_all: np.ndarray
    baseline_predictions: dict[int, np.ndarray]
    targets: np.ndarray
    n_fit_seqs: int
    n_score_seqs: int
    seq_len: int

    @property
    def best(self) -> str:
        """The name whose probe scores the highest R² (the first of equals)."""
        return max(self.names, key=self.r2.__getitem__)

    def summary(self) -> dict[str, Any]:
        """The numbers of the report (no arrays), ready for JSON."""
        last_k = max(self.baseline_r2)
        return {
            "r2": dict(self.r2),
            "r2_all": self.r2_all,
            "best": self.best,
            "shuffled_r2": dict(self.shuffled_r2),
            "shuffled_r2_all": self.shuffled_r2_all,
            "baseline_r2": {str(k): v for k, v in self.baseline_r2.items()},
            "r2_all_minus_baseline": self.r2_all - self.baseline_r2[last_k],
            "n_fit_seqs": self.n_fit_seqs,
            "n_score_seqs": self.n_score_seqs,
            "seq_len": self.seq_len,
        }


def _as_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise PiamiTypeError(f"{what} must be an array, got {type(x).__name__}") from exc


def _check_inputs(
    activations: Any, beliefs: Any, tokens: Any, n_symbols: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Validated ``(activations by name, beliefs float64, tokens int64, n_symbols)``."""
    if not isinstance(activations, Mapping) or not activations:
        raise PiamiTypeError(
            "activations must be a non-empty mapping name -> array (n_seqs, seq_len, d), e.g. "
            f"the result of collect_activations; got {type(activations).__name__}"
        )
    B = _as_array(beliefs, "beliefs")
    if B.ndim != 3 or 0 in B.shape or B.dtype.kind not in "fiu":
        raise PiamiShapeError(
            "beliefs must be a numeric array (n_seqs, seq_len, n_states) (the target after each "
            f"prefix), got shape {B.shape} of {B.dtype}"
        )
    B = B.astype(np.float64, copy=False)
    T = _as_array(tokens, "tokens")
    if T.shape != B.shape[:2] or T.dtype.kind not in "iu":
        raise PiamiShapeError(
            f"tokens must be integer ids of shape (n_seqs, seq_len) = {B.shape[:2]} (those of "
            f"beliefs), got shape {T.shape} of {T.dtype}"
        )
    T = T.astype(np.int64, copy=False)
    V = int(T.max()) + 1 if n_symbols is None else n_symbols
    if isinstance(V, bool) or not isinstance(V, int | np.integer) or V < 1:
        raise PiamiValueError(f"n_symbols must be an integer >= 1 or None, got {n_symbols!r}")
    if int(T.min()) < 0 or int(T.max()) >= V:
        raise PiamiValueError(
            f"token ids must lie in [0, n_symbols={V}), got [{int(T.min())}, {int(T.max())}]"
        )
    acts = {}
    for name, a in activations.items():
        if not isinstance(name, str):
            raise PiamiTypeError(f"activation names must be strings, got {name!r}")
        arr = _as_array(a, f"activations[{name!r}]")
        if arr.ndim != 3 or arr.shape[:2] != B.shape[:2] or arr.dtype.kind != "f":
            raise PiamiShapeError(
                f"activations[{name!r}] must be a float array (n_seqs, seq_len, d) = "
                f"{B.shape[:2]} + (d,), got shape {arr.shape} of {arr.dtype}"
            )
        if not np.isfinite(arr).all():
            raise PiamiValueError(f"activations[{name!r}] holds non-finite values")
        acts[name] = np.ascontiguousarray(arr)
    if not np.isfinite(B).all():
        raise PiamiValueError("beliefs holds non-finite values")
    return acts, B, T, int(V)


def _n_fit(fit_frac: Any, n_seqs: int) -> int:
    if isinstance(fit_frac, bool) or not isinstance(fit_frac, int | float) or not 0 < fit_frac < 1:
        raise PiamiValueError(f"fit_frac must be a fraction in (0, 1), e.g. 0.5, got {fit_frac!r}")
    n_fit = round(fit_frac * n_seqs)
    if not 1 <= n_fit <= n_seqs - 1:
        raise PiamiValueError(
            f"fit_frac={fit_frac} of {n_seqs} sequences leaves {n_fit} to fit and "
            f"{n_seqs - n_fit} to score; give more sequences (at least one of each)"
        )
    return n_fit


def probe_beliefs(
    activations: Mapping[str, Float[np.ndarray, "n_seqs pos d_model"]],
    beliefs: Float[np.ndarray, "n_seqs pos n_states"],
    tokens: Int[np.ndarray, "n_seqs pos"],
    *,
    last_k: int = 3,
    fit_frac: float = 0.5,
    n_symbols: int | None = None,
    random_state: RandomState = None,
) -> BeliefProbeReport:
    """Held-out probe R² of the beliefs from each activation, its baseline and its null.

    See the module docstring (Shai et al. 2024, Fig. 3). Nothing here is random but the
    permutations of the shuffled null.

    Args:
        activations: name -> ``(n_seqs, seq_len, d)`` activations (numpy or torch), the row of
            position ``t`` computed from tokens ``0..t``; e.g. ``collect_activations(model,
            tokens, names)``.
        beliefs: ``(n_seqs, seq_len, n_states)`` exact belief after each prefix (or any other
            target per prefix).
        tokens: ``(n_seqs, seq_len)`` the token ids the model read.
        last_k: the baseline is computed for ``k = 1 .. last_k`` tokens.
        fit_frac: share of the sequences (the first ones) that fit the probes.
        n_symbols: the alphabet size; ``None``: the largest token id + 1.
        random_state: draws the shuffled null's two permutations (fitting rows, then scoring
            rows): an int, a numpy Generator or ``None``.

    Returns:
        A :class:`BeliefProbeReport`.

    Raises:
        PiamiShapeError, PiamiTypeError, PiamiValueError: malformed input (the message says
            which argument and what was expected).
    """
    if isinstance(last_k, bool) or not isinstance(last_k, int | np.integer) or last_k < 1:
        raise PiamiValueError(f"last_k must be an integer >= 1, got {last_k!r}")
    acts, B, T, V = _check_inputs(activations, beliefs, tokens, n_symbols)
    n_seqs, seq_len, dim = B.shape
    n_fit = _n_fit(fit_frac, n_seqs)
    rng = check_random_state(random_state)
    fit = [a[:n_fit].reshape(-1, a.shape[-1]) for a in acts.values()]
    test = [a[n_fit:].reshape(-1, a.shape[-1]) for a in acts.values()]
    y_fit = np.ascontiguousarray(B[:n_fit].reshape(-1, dim))
    y_test = np.ascontiguousarray(B[n_fit:].reshape(-1, dim))
    r2, preds = {}, {}
    for name, a, b in zip(acts, fit, test, strict=True):
        probe = LinearProbe().fit(a, y_fit)
        r2[name] = probe.score(b, y_test)
        preds[name] = probe.predict(b)
    probe = LinearProbe().fit(np.hstack(fit), y_fit)
    r2_all = probe.score(np.hstack(test), y_test)
    pred_all = probe.predict(np.hstack(test))
    y_fit_s, y_test_s = y_fit[rng.permutation(len(y_fit))], y_test[rng.permutation(len(y_test))]
    shuffled = {
        name: LinearProbe().fit(a, y_fit_s).score(b, y_test_s)
        for name, a, b in zip(acts, fit, test, strict=True)
    }
    shuffled_all = LinearProbe().fit(np.hstack(fit), y_fit_s).score(np.hstack(test), y_test_s)
    base_r2, base_pred = {}, {}
    for k in range(1, int(last_k) + 1):
        ids_fit, ids_test = window_ids(T[:n_fit], k, V), window_ids(T[n_fit:], k, V)
        base_pred[k] = window_means(ids_fit, ids_test, y_fit)
        base_r2[k] = r2_scores(y_test, base_pred[k])[0]
    return BeliefProbeReport(
        names=tuple(acts),
        r2=r2,
        r2_all=float(r2_all),
        shuffled_r2=shuffled,
        shuffled_r2_all=float(shuffled_all),
        baseline_r2=base_r2,
        predictions=preds,
        prediction_all=pred_all,
        baseline_predictions=base_pred,
        targets=y_test,
        n_fit_seqs=n_fit,
        n_score_seqs=n_seqs - n_fit,
        seq_len=seq_len,
    )


def predictor_kl(
    model_logits: Float[np.ndarray, "*rows d_vocab"],
    exact_probs: Float[np.ndarray, "*rows d_vocab"],
) -> Float[np.ndarray, " *rows"]:
    """``KL(exact || model)`` of each next-token prediction, in nats.

    The model's log-probabilities are the log-softmax of its logits, taken in float64 (a float32
    model's logits are exact in float64, so the KL adds no rounding of its own). Zero exact
    probabilities contribute zero.

    Args:
        model_logits: ``(..., d_vocab)`` the model's logits after each prefix (numpy or torch;
            e.g. ``hf_model(tokens).logits``).
        exact_probs: ``(..., d_vocab)`` the exact next-token distribution after the same prefixes.

    Returns:
        ``(...)`` the KL of each prefix; its mean over prefixes is the model's expected excess
        loss over the exact predictor.
    """
    logits = _as_array(model_logits, "model_logits")
    p = _as_array(exact_probs, "exact_probs")
    if logits.dtype.kind != "f" or p.dtype.kind != "f" or logits.shape != p.shape or not p.ndim:
        raise PiamiShapeError(
            "model_logits and exact_probs must be float arrays of the same shape (..., d_vocab), "
            f"got {logits.shape} of {logits.dtype} and {p.shape} of {p.dtype}"
        )
    if not (np.isfinite(logits).all() and np.isfinite(p).all()) or (p < 0).any():
        raise PiamiValueError("model_logits must be finite and exact_probs finite and >= 0")
    logq = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()
    return kl_rows(p, logq)


__all__ = ["BeliefProbeReport", "predictor_kl", "probe_beliefs"]
