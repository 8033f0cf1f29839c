"""Linear probes: how much of a target is an affine function of the activations.

A probe fits ``Y ~ X W + b`` by (optionally weighted) least squares and reports the coefficient of
determination

    R^2_j = 1 - sum_n w_n (Y_nj - Yhat_nj)^2 / sum_n w_n (Y_nj - Ybar_j)^2

per target coordinate j, and overall as the variance-weighted R^2 (residual sum over all coordinates
divided by total sum over all coordinates). Shai et al. (2024) probe the residual stream of a
transformer trained on a hidden Markov process for the exact belief state ``Pr(S_t | x_0..x_t)``
(theory twin: :mod:`piami.theory.beliefs`); R^2 near 1 on held-out sequences means the beliefs are
linearly decodable. Weights ``w_n`` let a probe fitted on enumerated prefixes count each by its
probability; for sequences sampled from the process, uniform weights already do that.

The estimator follows scikit-learn (:mod:`piami.instruments.contract`): ``__init__`` stores
hyperparameters, ``fit`` learns ``coef_`` (``(n_targets, n_features)``), ``intercept_``
(``(n_targets,)``) and returns ``self``; ``score`` is one float. Inputs are annotated as numpy
arrays; torch tensors and nested lists are converted.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))
    >>> Y = X @ rng.normal(size=(5, 3)) + 1.0
    >>> probe = LinearProbe().fit(X, Y)
    >>> round(probe.score(X, Y), 10)
    1.0
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.linalg
from sklearn.base import RegressorMixin

from piami.errors import PiamiShapeError, PiamiValueError
from piami.instruments.contract import PiamiEstimator
from piami.instruments.contract import as_2d_array as _as_2d
from piami.typing import Float

MultiOutput = Literal["variance_weighted", "uniform_average"]


def _weights(w: Any, n: int) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise PiamiShapeError(f"sample_weight must have shape ({n},) (one per row), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise PiamiValueError("sample_weight must be finite, >= 0 and not all zero")
    return w / w.sum()


def r2_scores(
    Y: np.ndarray, Y_hat: np.ndarray, sample_weight: Any = None
) -> tuple[float, np.ndarray]:
    """(overall variance-weighted R^2, per-coordinate R^2) of predictions ``Y_hat`` for ``Y``.

    A coordinate with zero variance gets R^2 = 1 when predicted exactly and 0 otherwise (as
    scikit-learn); it adds nothing to the overall value's denominator.
    """
    Y, Y_hat = _as_2d(Y, "Y"), _as_2d(Y_hat, "Y_hat")
    if Y.shape != Y_hat.shape:
        raise PiamiShapeError(
            f"Y and Y_hat must have the same shape, got {Y.shape} and {Y_hat.shape}"
        )
    w = _weights(sample_weight, Y.shape[0])
    mean = w @ Y
    ss_res = w @ (Y - Y_hat) ** 2
    ss_tot = w @ (Y - mean) ** 2
    tiny = 1e-20 * (mean**2 + np.max(np.abs(Y), axis=0) ** 2) + 1e-300  # rounding-level spread
    const = ss_tot <= tiny
    per = np.where(const, (ss_res <= tiny) * 1.0, 1 - ss_res / np.where(const, 1.0, ss_tot))
    live = ~const
    overall = 1 - ss_res[live].sum() / ss_tot[live].sum() if live.any() else float(per.mean())
    return float(overall), per


def _solve_normal(gram: np.ndarray, xty: np.ndarray, alpha: float) -> np.ndarray:
    """Minimum-norm solution of ``(gram + alpha I) W = xty`` by eigendecomposition.

    Directions whose eigenvalue is below ``1e-12`` of the largest are dropped (a rank-deficient
    design, e.g. a constant feature after centering, gets the pseudo-inverse solution). Forming the
    Gram matrix is ``O(n d^2)`` and far faster than an SVD of ``X`` for ``n >> d``.
    """
    evals, evecs = scipy.linalg.eigh(gram + alpha * np.eye(gram.shape[0]), check_finite=False)
    keep = evals > max(evals.max(initial=0.0), 0.0) * 1e-12
    if not keep.any():
        return np.zeros((gram.shape[0], xty.shape[1]))
    v = evecs[:, keep]
    return v @ ((v.T @ xty) / evals[keep][:, None])


class LinearProbe(RegressorMixin, PiamiEstimator):
    """Affine least-squares probe from activations to targets, scored by R^2.

    A scikit-learn regressor (see :mod:`piami.instruments.contract`): ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work, and it passes ``check_estimator``. The fit is
    deterministic, so there is no ``random_state``.

    Args:
        fit_intercept: fit the offset ``b`` (affine map); False forces ``b = 0``.
        alpha: ridge penalty on ``W`` (0: ordinary least squares, minimum-norm when rank deficient).

    Attributes (after ``fit``):
        coef_: ``(n_targets, n_features)`` (also for a 1-D target: one row).
        intercept_: ``(n_targets,)``.
        n_features_in_: number of activation features.
    """

    def __init__(self, *, fit_intercept: bool = True, alpha: float = 0.0) -> None:
        self.fit_intercept = fit_intercept
        self.alpha = alpha

    def fit(
        self,
        X: Float[np.ndarray, "n d_model"],
        y: Float[np.ndarray, " n *n_targets"],
        sample_weight: Float[np.ndarray, " n"] | None = None,
    ) -> LinearProbe:
        """Least squares of ``y`` on ``[X, 1]`` (weighted when ``sample_weight`` is given).

        Args:
            X: activations ``(n_samples, n_features)`` (numpy, torch or nested lists; converted
                to float64). A single feature must still be 2-D: ``X.reshape(-1, 1)``.
            y: targets ``(n_samples, n_targets)`` or ``(n_samples,)`` (then :meth:`predict`
                returns ``(n_samples,)`` too).
            sample_weight: ``(n_samples,)`` non-negative weights, e.g. sequence probabilities.

        Returns:
            self.
        """
        if isinstance(self.alpha, bool) or not (
            isinstance(self.alpha, (int, float)) and 0 <= self.alpha < np.inf
        ):
            raise PiamiValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        X = _as_2d(X, "X", column=False)
        if y is None:
            raise PiamiValueError("LinearProbe requires y to be passed, but the target y is None")
        Y = _as_2d(y, "y")
        self._y_1d = getattr(y, "ndim", None) == 1 or np.asarray(y).ndim == 1
        if X.shape[0] != Y.shape[0]:
            raise PiamiShapeError(
                f"X and y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}"
            )
        w = _weights(sample_weight, X.shape[0])
        if self.fit_intercept:
            x_mean, y_mean = w @ X, w @ Y
        else:
            x_mean, y_mean = np.zeros(X.shape[1]), np.zeros(Y.shape[1])
        sw = np.sqrt(w)[:, None]
        Xc, Yc = (X - x_mean) * sw, (Y - y_mean) * sw
        W = _solve_normal(Xc.T @ Xc, Xc.T @ Yc, self.alpha)
        self.coef_ = W.T
        self.intercept_ = y_mean - x_mean @ W
        self.n_features_in_ = X.shape[1]
        return self

    def _validate_X(self, X: Any) -> np.ndarray:
        self._check_fitted("coef_", "fit(X, y)")
        X = _as_2d(X, "X", column=False)
        if X.shape[1] != self.n_features_in_:
            raise PiamiShapeError(
                f"X has {X.shape[1]} features, but LinearProbe is expecting "
                f"{self.n_features_in_} features as input (the number it was fitted on)"
            )
        return X

    def predict(self, X: Float[np.ndarray, "n d_model"]) -> Float[np.ndarray, " n *n_targets"]:
        """``X W + b``: ``(n_samples, n_targets)``, or ``(n_samples,)`` after a 1-D fit."""
        X = self._validate_X(X)
        Y = X @ self.coef_.T + self.intercept_
        return Y[:, 0] if self._y_1d else Y

    def score(
        self,
        X: Float[np.ndarray, "n d_model"],
        y: Float[np.ndarray, " n *n_targets"],
        sample_weight: Float[np.ndarray, " n"] | None = None,
        *,
        multioutput: MultiOutput = "variance_weighted",
    ) -> float:
        """R^2 of the probe on ``(X, y)``: one float.

        Args:
            X: activations ``(n_samples, n_features)``.
            y: targets, shaped as in :meth:`fit`.
            sample_weight: optional ``(n_samples,)`` weights.
            multioutput: ``"variance_weighted"`` (default: one R^2 over all coordinates: residual
                sum over total sum) or ``"uniform_average"`` (mean of the per-coordinate values).
                For the per-coordinate values use :meth:`score_per_coordinate`.
        """
        if multioutput not in ("variance_weighted", "uniform_average"):
            raise PiamiValueError(
                "multioutput must be 'variance_weighted' or 'uniform_average', got "
                f"{multioutput!r} (score_per_coordinate gives the per-coordinate values)"
            )
        overall, per = r2_scores(_as_2d(y, "y"), self.predict(X), sample_weight)
        return overall if multioutput == "variance_weighted" else float(per.mean())

    def score_per_coordinate(
        self,
        X: Float[np.ndarray, "n d_model"],
        y: Float[np.ndarray, " n *n_targets"],
        sample_weight: Float[np.ndarray, " n"] | None = None,
    ) -> Float[np.ndarray, " n_targets"]:
        """Per-coordinate R^2, ``(n_targets,)``."""
        return r2_scores(_as_2d(y, "y"), self.predict(X), sample_weight)[1]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["LinearProbe", "r2_scores"]
