"""Ridge probes of every layer for the belief, with the penalty and the layer chosen honestly.

Sequences are split three ways: the first half fit the probes and the second half score them
(Shai et al. 2024, Fig. 3); a share (:data:`~.config.SELECT_FRAC`) of the fitting sequences is held
back to choose each layer's ridge penalty and the best layer, so the R² reported for "the best
layer" is scored on sequences that chose nothing. Features are standardized on the fitting rows (a
pretrained residual stream has a few dimensions hundreds of times larger than the rest; a penalty
on raw features would act on those alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from piami.errors import PiamiShapeError
from piami.experiments.pretrained_lm.config import RIDGE_GRID, SELECT_FRAC
from piami.instruments.probes import LinearProbe, r2_scores
from piami.typing import Float


@dataclass(frozen=True, kw_only=True)
class Readout:
    """Probes of one model's layers for one target.

    Attributes:
        r2: held-out R² of each layer (scoring sequences), each with its chosen penalty.
        r2_select: R² of each layer on the held-back fitting sequences (what chose).
        alpha: the relative ridge penalty chosen for each layer.
        best: index of the layer with the highest ``r2_select``.
        pred: ``(n_score_rows, dim)`` predictions of the best layer on the scoring rows.
        shuffled: held-out R² of the best layer's probe fitted and scored on targets permuted
            across rows (a null: about ``-d / n_fit``).
    """

    r2: list[float]
    r2_select: list[float]
    alpha: list[float]
    best: int
    pred: np.ndarray
    shuffled: float


def _standardize(fit: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = fit.mean(axis=0), fit.std(axis=0)
    sd = np.where(sd > 1e-12 * max(float(sd.max(initial=0.0)), 1e-300), sd, 1.0)
    return [(a - mu) / sd for a in (fit, *others)]


def ridge_path(
    X: Float[np.ndarray, "n d"], Y: Float[np.ndarray, "n dim"], alphas: tuple[float, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Affine ridge fits ``Y ~ X W + b`` for several penalties from one eigendecomposition.

    Minimizes ``mean_n |Y_n - X_n W - b|^2 + alpha |W|^2`` (the penalty in the units of the
    covariance of ``X``, as :class:`~piami.instruments.probes.LinearProbe` with ``alpha``).

    Returns:
        ``(W, b)`` per penalty: ``W`` is ``(d, dim)``, ``b`` is ``(dim,)``.
    """
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - xm
    gram, cross = Xc.T @ Xc / len(X), Xc.T @ (Y - ym) / len(X)
    evals, evecs = scipy.linalg.eigh(gram, check_finite=False)
    evals = np.maximum(evals, 0.0)
    proj = evecs.T @ cross
    out = []
    for a in alphas:
        W = evecs @ (proj / (evals + a)[:, None])
        out.append((W, ym - xm @ W))
    return out


def layer_readout(
    layers: list[Float[np.ndarray, "n_seqs pos d_model"]],
    y: Float[np.ndarray, "n_seqs pos dim"],
    n_fit: int,
    rng: np.random.Generator,
) -> Readout:
    """Probe every layer for ``y``; choose penalties and the best layer on held-back sequences.

    Args:
        layers: one ``(n_seqs, pos, d_model)`` activation array per layer, aligned with ``y``.
        y: ``(n_seqs, pos, dim)`` targets.
        n_fit: the first ``n_fit`` sequences fit (a share held back to choose); the rest score.
        rng: draws the permutations of the shuffled-target null.

    Returns:
        The :class:`Readout`.
    """
    n, L, _ = y.shape
    if not 4 <= n_fit <= n - 2:
        raise PiamiShapeError(f"need 4 <= n_fit <= n_seqs - 2, got n_fit {n_fit}, n_seqs {n}")
    n_in = n_fit - max(1, round(SELECT_FRAC * n_fit))
    rows = lambda a, lo, hi: a[lo:hi].reshape((hi - lo) * L, -1).astype(np.float64)  # noqa: E731
    y_in, y_sel = rows(y, 0, n_in), rows(y, n_in, n_fit)
    y_fit, y_test = rows(y, 0, n_fit), rows(y, n_fit, n)
    r2, r2_sel, alpha, preds = [], [], [], []
    for acts in layers:
        if acts.shape[:2] != (n, L):
            raise PiamiShapeError(f"activations {acts.shape} do not match targets {y.shape}")
        x_in, x_sel = _standardize(rows(acts, 0, n_in), rows(acts, n_in, n_fit))
        scores = [r2_scores(y_sel, x_sel @ W + b)[0] for W, b in ridge_path(x_in, y_in, RIDGE_GRID)]
        j = int(np.argmax(scores))
        x_fit, x_test = _standardize(rows(acts, 0, n_fit), rows(acts, n_fit, n))
        pred = LinearProbe(alpha=RIDGE_GRID[j]).fit(x_fit, y_fit).predict(x_test)
        r2.append(r2_scores(y_test, pred)[0])
        r2_sel.append(float(scores[j]))
        alpha.append(RIDGE_GRID[j])
        preds.append(pred)
    best = int(np.argmax(r2_sel))
    x_fit, x_test = _standardize(rows(layers[best], 0, n_fit), rows(layers[best], n_fit, n))
    null = LinearProbe(alpha=alpha[best]).fit(x_fit, y_fit[rng.permutation(len(y_fit))])
    shuffled = float(null.score(x_test, y_test[rng.permutation(len(y_test))]))
    return Readout(
        r2=r2, r2_select=r2_sel, alpha=alpha, best=best, pred=preds[best], shuffled=shuffled
    )


__all__ = ["Readout", "layer_readout", "ridge_path"]
