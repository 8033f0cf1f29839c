"""Intrinsic dimension of activations: TwoNN, Levina-Bickel, box-counting, correlation, topology.

A cloud of ``n`` activation vectors in ``R^D`` often lies near a set of much lower dimension ``d``.
Nearest-neighbour estimators read ``d`` from how distances grow with the number of neighbours:

* **TwoNN** (Facco et al. 2017): with ``r1 < r2`` the distances of a point to its first two
  neighbours, ``mu = r2 / r1`` follows a Pareto law ``f(mu) = d mu^(-d-1)`` when the density is
  locally uniform. The maximum-likelihood estimate is ``d = (n - 1) / sum log mu_i`` (``sum log mu``
  is Gamma(n, d), which gives an exact interval); Facco's original line fit of
  ``-log(1 - F(mu))`` against ``log mu`` through the origin, dropping the largest 10% of ``mu``, is
  ``method="fit"``.
* **MLE** (Levina & Bickel 2004, eq. 8): per point,
  ``m_k(x)^-1 = (1/(k-1)) sum_{j<k} log(T_k/T_j)`` over the distances ``T_j`` to its ``k``
  nearest neighbours; the points are combined by averaging the inverses (MacKay & Ghahramani
  2005), which removes the bias of averaging ``m_k`` itself.
* **box-counting** and **correlation** dimensions: see :mod:`piami.theory.fractal` (re-exported
  here).
* **persistent homology**: the 0-dimensional bars are the edges of the minimum spanning tree
  (computed here with scipy); higher bars need the optional ``ripser`` package
  (``pip install piami[topology]``).

Duplicate points carry no distance information and are dropped by the neighbour estimators.
The functions :func:`twonn_dimension` and :func:`mle_dimension` return a
:class:`DimensionEstimate`; :class:`TwoNN` and :class:`LevinaBickelMLE` are the same estimators
in scikit-learn's form (``fit(X)`` sets ``dimension_`` and ``interval_``; ``score(X)`` is a
log-likelihood), see :mod:`piami.instruments.contract`.
"""

from __future__ import annotations

import abc
from typing import Any, Literal

import numpy as np
from scipy import stats
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist, squareform

from piami.errors import PiamiError, PiamiShapeError, PiamiValueError
from piami.instruments.contract import PiamiEstimator, as_2d_array
from piami.instruments.geometry import as_points
from piami.theory.fractal import (
    DimensionEstimate,
    box_counting_dimension,
    correlation_dimension,
)
from piami.typing import Float


def _unique_points(X: np.ndarray) -> np.ndarray:
    """Distinct points, centred and divided by a power of two near their largest coordinate.

    Every estimator here uses ratios of distances only, so the rescaling changes no answer; it
    keeps squared distances of points scaled by 1e-300 or 1e+300 from under- or overflowing
    (which gave 0/0 = NaN), and dividing by a power of two is exact.
    """
    X = np.unique(X, axis=0)
    if X.size:
        X = X - X.mean(axis=0)
        top = float(np.max(np.abs(X)))
        if top > 0 and np.isfinite(top):
            X = X / 2.0 ** np.frexp(top)[1]
    return X


def _check_level(level: float) -> None:
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise PiamiValueError(f"level must be in (0, 1), got {level!r}")


def twonn_dimension(
    X: Float[np.ndarray, "n d"],
    *,
    method: Literal["mle", "fit"] = "mle",
    discard_fraction: float = 0.1,
    level: float = 0.95,
) -> DimensionEstimate:
    """TwoNN intrinsic dimension (Facco et al. 2017); :class:`TwoNN` is its estimator form.

    Args:
        X: points ``(n_points, n_dims)`` (e.g. residual-stream vectors).
        method: ``"mle"``: ``(n - 1) / sum log mu`` with an exact Gamma interval; ``"fit"``: the
            paper's line fit (Facco et al. 2017, eq. 5) with a t-interval of the slope.
        discard_fraction: largest ``mu`` dropped by ``"fit"`` (they sit in sparse regions).
        level: confidence level of the interval.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 20))   # a 3-d subspace of R^20
        >>> round(twonn_dimension(Z).dimension)
        3
    """
    _check_level(level)
    logmu = _twonn_log_ratios(X)
    if method == "mle":
        return _twonn_mle(logmu, level)
    if method != "fit":
        raise PiamiValueError(f"method must be 'mle' or 'fit', got {method!r}")
    if not 0 <= discard_fraction < 1:
        raise PiamiValueError(f"discard_fraction must be in [0, 1), got {discard_fraction!r}")
    return _twonn_fit(logmu, discard_fraction, level)


def _twonn_log_ratios(X: object) -> np.ndarray:
    """``log(r2 / r1)`` of each distinct point: ``(n,)``, ``n >= 4``."""
    X = _unique_points(as_points(X, min_points=1))
    n = X.shape[0]
    if n < 4:
        raise PiamiValueError(
            f"TwoNN needs at least 4 distinct points, got n_samples = {n} distinct"
        )
    dist, _ = cKDTree(X).query(X, k=3)
    return np.log(dist[:, 2] / dist[:, 1])


def _twonn_mle(logmu: np.ndarray, level: float) -> DimensionEstimate:
    n = logmu.size
    s = float(logmu.sum())
    if s <= 0:
        raise PiamiValueError("all ratios r2/r1 are 1: the points form a lattice; add jitter")
    d = (n - 1) / s
    # sum log mu ~ Gamma(n, rate=d): d * s ~ Gamma(n, 1)
    g_lo, g_hi = stats.gamma.ppf([0.5 - level / 2, 0.5 + level / 2], n)
    return DimensionEstimate(
        dimension=float(d),
        low=float(g_lo / s),
        high=float(g_hi / s),
        method="twonn-mle",
        n_points=n,
        interval=(
            f"{level:.0%} exact interval from sum log mu ~ Gamma(n, d) (assumes the Pareto law)"
        ),
    )


def _twonn_fit(logmu: np.ndarray, discard_fraction: float, level: float) -> DimensionEstimate:
    n = logmu.size
    order = np.sort(logmu)
    F = np.arange(1, n + 1) / n
    keep = int(np.floor(n * (1 - discard_fraction)))
    x = order[:keep]
    y = -np.log(1 - F[:keep])
    slope = float(np.dot(x, y) / np.dot(x, x))
    resid = y - slope * x
    se = float(np.sqrt(resid @ resid / (keep - 1) / np.dot(x, x)))
    t = stats.t.ppf(0.5 + level / 2, keep - 1)
    return DimensionEstimate(
        dimension=slope,
        low=slope - t * se,
        high=slope + t * se,
        method="twonn-fit",
        n_points=n,
        interval=(
            f"{level:.0%} t-interval of the slope (empirical CDF points are correlated: optimistic)"
        ),
        x=tuple(x[:: max(1, keep // 200)]),
        y=tuple(y[:: max(1, keep // 200)]),
    )


def mle_dimension(
    X: Float[np.ndarray, "n d"], *, k: int = 20, level: float = 0.95
) -> DimensionEstimate:
    """Levina-Bickel maximum-likelihood dimension with MacKay-Ghahramani averaging.

    :class:`LevinaBickelMLE` is its estimator form.

    Args:
        X: points ``(n_points, n_dims)``.
        k: neighbours per point (Levina & Bickel use 10-20).
        level: confidence level; the interval is the delta-method interval of the mean inverse
            estimate, which treats points as independent (neighbourhoods overlap: optimistic).
    """
    _check_level(level)
    inv = _lb_log_ratios(X, k).mean(axis=1)  # 1 / m_k(x), eq. 8 with k-1 terms
    n = inv.size
    m_inv = float(inv.mean())
    if m_inv <= 0:
        raise PiamiValueError("degenerate neighbourhoods (equal distances); add jitter")
    se = float(inv.std(ddof=1) / np.sqrt(n))
    z = stats.norm.ppf(0.5 + level / 2)
    return DimensionEstimate(
        dimension=1.0 / m_inv,
        low=1.0 / (m_inv + z * se),
        high=1.0 / max(m_inv - z * se, 1e-300),
        method=f"mle-k{k}",
        n_points=n,
        interval=f"{level:.0%} delta-method interval, points treated as independent (optimistic)",
    )


def _lb_log_ratios(X: object, k: int) -> np.ndarray:
    """``log(T_k / T_j)``, ``j < k``, of each distinct point: ``(n, k - 1)``, ``n > k``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise PiamiValueError(f"k must be an integer >= 2, got {k!r}")
    X = _unique_points(as_points(X, min_points=1))
    n = X.shape[0]
    if n <= k:
        raise PiamiValueError(
            f"MLE with k={k} needs more than k distinct points, got n_samples = {n} distinct"
        )
    dist, _ = cKDTree(X).query(X, k=k + 1)
    T = dist[:, 1:]  # (n, k): distances to the k nearest neighbours, self excluded
    return np.log(T[:, -1:] / T[:, :-1])


class _NeighbourDimension(PiamiEstimator, abc.ABC):
    """Shared ``fit``/``score`` of the nearest-neighbour dimension estimators.

    Both read ``d`` from log-ratios of neighbour distances that are i.i.d. exponential with rate
    ``d`` under a locally uniform density (TwoNN: ``log(r2/r1)``, Facco et al. 2017, eq. 1;
    Levina-Bickel: ``log(T_k/T_j)``, Levina & Bickel 2004, eq. 7), so ``score`` is the mean
    log-likelihood per ratio, ``log d - d mean(log ratio)`` (nats; higher is better).
    """

    @abc.abstractmethod
    def _estimate(self, X: object) -> DimensionEstimate:
        """The estimator's :class:`DimensionEstimate` of ``X``."""

    @abc.abstractmethod
    def _log_ratios(self, X: object) -> np.ndarray:
        """The neighbour-distance log-ratios the estimate is built from."""

    def fit(self, X: Float[np.ndarray, "n d"], y: None = None) -> _NeighbourDimension:
        """Estimate the dimension of the points ``X`` ``(n_points, n_dims)``; returns self.

        Sets ``estimate_`` (the :class:`DimensionEstimate`), ``dimension_``, ``interval_``
        (``(low, high)``) and ``n_features_in_``.
        """
        X = as_2d_array(X, "X", column=False)
        est = self._estimate(X)
        self.estimate_ = est
        self.dimension_ = est.dimension
        self.interval_ = (est.low, est.high)
        self.n_features_in_ = X.shape[1]
        return self

    def score(self, X: Float[np.ndarray, "n d"], y: None = None) -> float:
        """Mean log-likelihood (nats) of ``X``'s neighbour log-ratios at ``dimension_``."""
        self._check_fitted("dimension_", "fit(X)")
        X = as_2d_array(X, "X", column=False)
        if X.shape[1] != self.n_features_in_:
            raise PiamiShapeError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        d = self.dimension_
        return float(np.log(d) - d * np.mean(self._log_ratios(X)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


class TwoNN(_NeighbourDimension):
    """TwoNN intrinsic dimension (Facco et al. 2017) as an estimator (wraps
    :func:`twonn_dimension`; deterministic, so no ``random_state``).

    Args:
        method: ``"mle"`` (exact Gamma interval) or ``"fit"`` (the paper's line fit).
        discard_fraction: largest ``mu`` dropped by ``"fit"``.
        level: confidence level of ``interval_``.

    Attributes (after ``fit``):
        dimension_, interval_ ``(low, high)``, estimate_ (:class:`DimensionEstimate`),
        n_features_in_.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 20))
        >>> round(TwoNN().fit(Z).dimension_)
        3
    """

    def __init__(
        self,
        *,
        method: Literal["mle", "fit"] = "mle",
        discard_fraction: float = 0.1,
        level: float = 0.95,
    ) -> None:
        self.method = method
        self.discard_fraction = discard_fraction
        self.level = level

    def _estimate(self, X: object) -> DimensionEstimate:
        return twonn_dimension(
            X, method=self.method, discard_fraction=self.discard_fraction, level=self.level
        )

    def _log_ratios(self, X: object) -> np.ndarray:
        return _twonn_log_ratios(X)


class LevinaBickelMLE(_NeighbourDimension):
    """Levina-Bickel maximum-likelihood dimension as an estimator (wraps :func:`mle_dimension`;
    deterministic, so no ``random_state``).

    Args:
        k: neighbours per point.
        level: confidence level of ``interval_``.

    Attributes (after ``fit``):
        dimension_, interval_ ``(low, high)``, estimate_ (:class:`DimensionEstimate`),
        n_features_in_.
    """

    def __init__(self, *, k: int = 20, level: float = 0.95) -> None:
        self.k = k
        self.level = level

    def _estimate(self, X: object) -> DimensionEstimate:
        return mle_dimension(X, k=self.k, level=self.level)

    def _log_ratios(self, X: object) -> np.ndarray:
        return _lb_log_ratios(X, self.k)


def h0_persistence(X: object) -> np.ndarray:
    """Death times of the 0-dimensional persistent-homology bars of a Vietoris-Rips filtration.

    Every component is born at 0; components merge at the edge lengths of the Euclidean minimum
    spanning tree, so the ``n - 1`` finite bars die at those lengths (sorted ascending); one bar
    is infinite. ``O(n^2)`` memory: thin large clouds first.
    """
    X = as_points(X)
    D = squareform(pdist(X))
    mst = minimum_spanning_tree(D).tocoo()
    deaths = np.sort(mst.data)
    n_zero = X.shape[0] - 1 - deaths.size  # duplicate points: zero-length edges are not stored
    return np.concatenate([np.zeros(n_zero), deaths])


def persistence_diagrams(X: object, *, maxdim: int = 1) -> list[np.ndarray]:
    """Persistence diagrams ``[(n_bars, 2) birth/death]`` for dimensions ``0..maxdim`` via ripser.

    Raises:
        PiamiError: when the optional ``ripser`` package is not installed.
    """
    X = as_points(X)
    if not isinstance(maxdim, (int, np.integer)) or maxdim < 0:
        raise PiamiValueError(f"maxdim must be an integer >= 0, got {maxdim!r}")
    try:
        from ripser import ripser
    except ImportError as exc:
        raise PiamiError(
            "persistent homology beyond H0 needs the optional 'ripser' package: "
            "pip install 'piami[topology]' (h0_persistence works without it)"
        ) from exc
    return [np.asarray(d) for d in ripser(X, maxdim=maxdim)["dgms"]]


def has_ripser() -> bool:
    """Whether the optional ``ripser`` package can be imported."""
    try:
        import ripser  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = [
    "DimensionEstimate",
    "LevinaBickelMLE",
    "TwoNN",
    "box_counting_dimension",
    "correlation_dimension",
    "h0_persistence",
    "has_ripser",
    "mle_dimension",
    "persistence_diagrams",
    "twonn_dimension",
]
