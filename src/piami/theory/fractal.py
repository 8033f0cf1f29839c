"""Fractal dimensions of point sets and of the belief sets of hidden Markov processes.

The mixed states (beliefs) of a non-unifilar hidden Markov process are the points reached by the
belief-update maps ``f_x(eta) = eta T[x] / (eta T[x] 1)``, chosen with probability
``Pr(x | eta) = eta T[x] 1``: an iterated function system with place-dependent probabilities on the
simplex (Blackwell 1957; Jurgens & Crutchfield 2021). Its attractor is often a fractal (Mess3 draws
a Sierpinski-like gasket), so "how many dimensions does a network need for its beliefs" has a
non-integer answer. Three dimensions of that set are computed here:

* **box-counting dimension**: the slope of ``log N(eps)`` against ``log(1/eps)``, with ``N(eps)``
  the number of grid boxes of side ``eps`` that hold a point;
* **correlation dimension** (Grassberger & Procaccia 1983): the slope of ``log C(r)`` against
  ``log r``, with ``C(r)`` the fraction of point pairs closer than ``r``;
* **information (Lyapunov) dimension** of the invariant measure, from the Lyapunov exponents
  ``0 > lambda_1 >= lambda_2 >= ...`` of the update maps (restricted to the simplex) and the entropy
  rate ``h`` of the process (Jurgens & Crutchfield 2021, "Divergent predictive states", the
  Kaplan-Yorke form with ``h`` in place of the expanding exponents)::

      D_L = k + (h + lambda_1 + ... + lambda_k) / |lambda_{k+1}|,

  with ``k`` the largest index for which the numerator is still >= 0 (``D_L = n_states - 1`` when it
  never becomes negative). For an IFS of similarities of ratio ``r`` with ``m`` equally likely maps
  this is ``log m / log(1/r)``: the Sierpinski triangle gives ``log 3 / log 2``.

For a fractal measure, correlation <= information <= box-counting dimension; the three coincide for
self-similar sets with equal weights. The point-set estimators are plain numpy and also serve the
measured side (:mod:`piami.instruments.dimension`). Entropies are in nats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError


@dataclass(frozen=True, kw_only=True)
class DimensionEstimate:
    """A dimension with an interval and the data behind its fit.

    Attributes:
        dimension: the point estimate.
        low, high: the interval (its meaning is given by ``interval``).
        method: which estimator.
        n_points: points used.
        interval: how ``low, high`` were obtained.
        x, y: the fitted curve (e.g. ``log(1/eps)`` and ``log N``) for plots; empty when not a fit.
    """

    dimension: float  # point estimate
    low: float  # lower end of the interval
    high: float  # upper end of the interval
    method: str  # estimator name
    n_points: int  # number of points used
    interval: str = ""  # what the interval is
    x: tuple[float, ...] = field(default=(), repr=False)  # fitted abscissae (log scale)
    y: tuple[float, ...] = field(default=(), repr=False)  # fitted ordinates (log counts)


def _points(X: object, name: str = "points", min_points: int = 2) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(f"{name} must be a numeric array (n_points, n_dims)") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < min_points or arr.shape[1] < 1:
        raise PiamiShapeError(
            f"{name} must have shape (n_points, n_dims) with n_points >= {min_points}, got "
            f"{arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise PiamiValueError(f"{name} contains NaN or infinite values")
    return arr


def _slope_fit(x: np.ndarray, y: np.ndarray, level: float, method: str, n: int, what: str):
    if x.size < 3 or np.unique(x).size < 3:
        raise PiamiValueError(
            f"{method}: only {np.unique(x).size} distinct usable scales; use more points or "
            f"widen the scale range (a cloud of a few distinct points has no scaling range)"
        )
    fit = stats.linregress(x, y)
    t = stats.t.ppf(0.5 + level / 2, x.size - 2)
    return DimensionEstimate(
        dimension=float(fit.slope),
        low=float(fit.slope - t * fit.stderr),
        high=float(fit.slope + t * fit.stderr),
        method=method,
        n_points=n,
        interval=(
            f"{level:.0%} t-interval of the slope of {what} (scales are correlated: optimistic)"
        ),
        x=tuple(float(v) for v in x),
        y=tuple(float(v) for v in y),
    )


def box_counts(points: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Number of occupied grid boxes of side ``eps`` for each ``eps`` in ``scales``."""
    X = _points(points)
    X = X - X.min(axis=0)
    out = np.empty(len(scales), dtype=np.int64)
    for i, eps in enumerate(scales):
        cells = np.floor(X / eps).astype(np.int64)
        base = cells.max(axis=0) + 1
        if np.sum(np.log2(base.astype(np.float64))) < 62:  # pack each box into one int64 key
            keys = np.zeros(cells.shape[0], dtype=np.int64)
            for j in range(cells.shape[1]):
                keys = keys * base[j] + cells[:, j]
            out[i] = np.unique(keys).size
        else:
            out[i] = np.unique(cells, axis=0).shape[0]
    return out


def box_counting_dimension(
    points: object,
    *,
    scales: np.ndarray | None = None,
    n_scales: int = 12,
    min_boxes: int = 32,
    max_fill: float = 0.1,
    level: float = 0.95,
) -> DimensionEstimate:
    """Box-counting (Minkowski) dimension of a point cloud.

    Args:
        points: ``(n_points, n_dims)``.
        scales: box sides to use; ``None`` chooses ``n_scales`` geometric sides from half the extent
            down, keeping those where ``min_boxes <= N(eps) <= max_fill * n_points`` (beyond that
            the finite sample, not the set, sets the count).
        level: confidence level of the slope interval.
    """
    X = _points(points)
    n = X.shape[0]
    if scales is None:
        extent = float(np.max(X.max(axis=0) - X.min(axis=0)))
        if extent == 0:
            raise PiamiValueError("all points coincide: the box-counting dimension is 0 trivially")
        scales = extent * np.geomspace(0.5, 1e-4, 3 * n_scales)
        counts = box_counts(X, scales)
        keep = (counts >= min_boxes) & (counts <= max_fill * n)
        if keep.sum() < 3:
            raise PiamiValueError(
                f"box counting: too few points ({n}) for a scale range with {min_boxes} <= N(eps) "
                f"<= {max_fill} * n; use more points or lower min_boxes"
            )
        idx = np.flatnonzero(keep)
        idx = idx[np.unique(np.linspace(0, idx.size - 1, n_scales).round().astype(int))]
        scales, counts = scales[idx], counts[idx]
    else:
        scales = np.asarray(scales, dtype=np.float64)
        if scales.ndim != 1 or np.any(scales <= 0):
            raise PiamiValueError("scales must be a 1-D array of positive box sides")
        counts = box_counts(X, scales)
    return _slope_fit(
        np.log(1.0 / scales), np.log(counts), level, "box-counting", n, "log N(eps) vs log 1/eps"
    )


def correlation_dimension(
    points: object,
    *,
    radii: np.ndarray | None = None,
    n_radii: int = 12,
    c_range: tuple[float, float] = (1e-3, 5e-2),
    max_points: int = 5000,
    level: float = 0.95,
) -> DimensionEstimate:
    """Correlation dimension (Grassberger & Procaccia 1983): slope of ``log C(r)`` vs ``log r``.

    Args:
        points: ``(n_points, n_dims)``; more than ``max_points`` are thinned to evenly spaced rows
            (deterministic; shuffle first if the order matters).
        radii: radii to use; ``None`` chooses ``n_radii`` geometric radii between the quantiles
            ``c_range`` of the pairwise-distance distribution (``C(r)`` is that distribution).
        level: confidence level of the slope interval.
    """
    X = _points(points)
    if X.shape[0] > max_points:
        X = X[np.linspace(0, X.shape[0] - 1, max_points).round().astype(int)]
    n = X.shape[0]
    if radii is None:
        lo, hi = c_range
        if not (0 < lo < hi < 1):
            raise PiamiValueError(f"c_range must satisfy 0 < low < high < 1, got {c_range}")
        d = pdist(X[: min(n, 2000)])
        d = d[d > 0]
        if d.size == 0:
            raise PiamiValueError("all points coincide: the correlation dimension is 0 trivially")
        r_lo, r_hi = np.quantile(d, [lo, hi])
        if not r_lo > 0:
            raise PiamiValueError("too many coincident points for the lower end of c_range")
        radii = np.geomspace(r_lo, r_hi, n_radii)
    radii = np.asarray(radii, dtype=np.float64)
    tree = cKDTree(X)
    pairs = tree.count_neighbors(tree, radii) - n  # ordered pairs, self-pairs removed
    C = pairs / (n * (n - 1.0))
    ok = C > 0
    return _slope_fit(
        np.log(radii[ok]), np.log(C[ok]), level, "correlation", n, "log C(r) vs log r"
    )


def simplex_basis(n_states: int) -> np.ndarray:
    """Orthonormal rows ``(n_states - 1, n_states)`` spanning the sum-zero plane of the simplex."""
    if n_states < 2:
        raise PiamiValueError(f"a simplex needs n_states >= 2, got {n_states}")
    M = np.eye(n_states) - 1.0 / n_states
    U, _, _ = np.linalg.svd(M)
    return U[:, : n_states - 1].T


def simplex_coordinates(beliefs: object) -> np.ndarray:
    """Map beliefs ``(..., n_states)`` to orthonormal coordinates
    ``(..., n_states - 1)`` in their plane.

    Euclidean distances between beliefs are kept, so dimensions can be measured in the coordinates.
    """
    B = np.asarray(beliefs, dtype=np.float64)
    return B @ simplex_basis(B.shape[-1]).T


def _check_T(T: object) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 3 or T.shape[1] != T.shape[2]:
        raise PiamiShapeError(f"T must have shape (n_symbols, n_states, n_states), got {T.shape}")
    if np.any(T < -1e-12) or not np.allclose(T.sum(axis=(0, 2)), 1.0, atol=1e-9):
        raise PiamiValueError(
            "T must be non-negative with sum over symbols and next states equal to 1 for each state"
        )
    return T


def update_jacobian(T: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Jacobians of the belief-update maps at beliefs ``eta``.

    For ``f(eta) = eta M / s`` with ``s = eta M 1``, a row-vector perturbation ``v`` maps to
    ``v J`` with ``J = M / s - (M 1)(eta M) / s^2``. ``T`` is ``(k, n, n)``, ``eta`` is ``(c, n)``;
    returns ``(c, k, n, n)``.
    """
    EM = np.einsum("ci,xij->cxj", eta, T)  # (c, k, n): eta T[x]
    s = EM.sum(-1)  # (c, k)
    M1 = T.sum(-1)  # (k, n)
    s_safe = np.where(s > 0, s, 1.0)
    return T[None] / s_safe[..., None, None] - np.einsum("xi,cxj->cxij", M1, EM) / (
        s_safe[..., None, None] ** 2
    )


@dataclass(frozen=True, kw_only=True)
class BeliefDynamics:
    """Long-run statistics of the belief-update system of a hidden Markov process.

    Attributes:
        lyapunov_exponents: ``(n_states - 1,)`` descending, nats per step, on the simplex.
        entropy_rate: ``h``, nats per symbol (time average of ``H[Pr(X | eta_t)]``).
        lyapunov_dimension: ``D_L`` (Kaplan-Yorke form with ``h``).
        exponent_stderr: standard errors of the exponents across independent chains.
        points: beliefs visited after burn-in, ``(n_points, n_states)``.
    """

    lyapunov_exponents: np.ndarray
    entropy_rate: float
    lyapunov_dimension: float
    exponent_stderr: np.ndarray
    points: np.ndarray = field(repr=False)


def lyapunov_dimension(exponents: object, entropy_rate: float) -> float:
    """``k + (h + sum_{i<=k} lambda_i) / |lambda_{k+1}|`` (Jurgens & Crutchfield 2021).

    Args:
        exponents: Lyapunov exponents (any order; sorted descending here), nats per step.
        entropy_rate: ``h`` in nats per step, >= 0.
    """
    lam = np.sort(np.asarray(exponents, dtype=np.float64).ravel())[::-1]
    if lam.size == 0 or not np.all(np.isfinite(lam)) or not np.isfinite(entropy_rate):
        raise PiamiValueError("lyapunov_dimension needs finite exponents and a finite entropy rate")
    if entropy_rate < 0:
        raise PiamiValueError(f"entropy_rate must be >= 0, got {entropy_rate}")
    total = float(entropy_rate)
    for k, lk in enumerate(lam):
        if total + lk < 0:
            return float(k + total / abs(lk))
        total += lk
    return float(lam.size)


def belief_dynamics(
    T: object,
    *,
    n_steps: int = 4000,
    n_chains: int = 64,
    burn_in: int = 200,
    rng: np.random.Generator,
    keep_every: int = 1,
) -> BeliefDynamics:
    """Run ``n_chains`` exact belief trajectories and measure their Lyapunov exponents.

    Each chain starts at the stationary belief, draws ``x ~ Pr(x | eta)`` and applies ``f_x``;
    the tangent dynamics (Jacobians restricted to the sum-zero plane) are re-orthonormalized by QR
    every step and the logs of ``|diag R|`` averaged after ``burn_in`` steps (Benettin et al. 1980).

    Args:
        T: ``(n_symbols, n_states, n_states)``, ``T[x, i, j] = Pr(emit x, go to j | in i)``.
        n_steps: steps per chain after burn-in.
        n_chains: independent chains (their spread gives ``exponent_stderr``).
        burn_in: steps dropped before averaging (the attractor is reached geometrically fast).
        rng: source of randomness.
        keep_every: keep every k-th belief in ``points``.
    """
    T = _check_T(T)
    if not isinstance(rng, np.random.Generator):
        raise PiamiTypeError("rng must be a numpy Generator, e.g. np.random.default_rng(0)")
    for name, v, lo in (
        ("n_steps", n_steps, 1),
        ("n_chains", n_chains, 2),
        ("burn_in", burn_in, 0),
    ):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise PiamiValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    k, n, _ = T.shape
    if n < 2:
        raise PiamiValueError("a process with one state has a one-point belief set")
    w, vl = np.linalg.eig(T.sum(0).T)
    pi = np.abs(np.real(vl[:, np.argmin(np.abs(w - 1))]))
    eta = np.tile(pi / pi.sum(), (n_chains, 1))
    B = simplex_basis(n)  # (n-1, n)
    Q = np.tile(np.eye(n - 1), (n_chains, 1, 1))
    log_sum = np.zeros((n_chains, n - 1))
    h_sum = np.zeros(n_chains)
    kept = []
    ar = np.arange(n_chains)
    for step in range(burn_in + n_steps):
        EM = np.einsum("ci,xij->cxj", eta, T)
        p = EM.sum(-1)  # (c, k)
        p = np.clip(p, 0, None)
        p /= p.sum(1, keepdims=True)
        x = (rng.random((n_chains, 1)) > np.cumsum(p, 1)).sum(1).clip(max=k - 1)
        J = update_jacobian(T, eta)[ar, x]  # (c, n, n), row-vector convention
        A = np.einsum("ai,cij,bj->cba", B, J, B)  # column-convention matrix in the basis
        Q, R = np.linalg.qr(A @ Q)
        d = np.abs(np.diagonal(R, axis1=1, axis2=2))
        eta = EM[ar, x] / EM[ar, x].sum(-1, keepdims=True)
        if step >= burn_in:
            log_sum += np.log(np.maximum(d, 1e-300))
            with np.errstate(divide="ignore", invalid="ignore"):
                h_sum -= np.sum(np.where(p > 0, p * np.log(p), 0.0), 1)
            if (step - burn_in) % keep_every == 0:
                kept.append(eta.copy())
    per_chain = log_sum / n_steps
    lam = np.sort(per_chain.mean(0))[::-1]
    se = per_chain.std(0, ddof=1) / np.sqrt(n_chains)
    h = float(h_sum.mean() / n_steps)
    return BeliefDynamics(
        lyapunov_exponents=lam,
        entropy_rate=h,
        lyapunov_dimension=lyapunov_dimension(lam, h),
        exponent_stderr=se,
        points=np.concatenate(kept, 0),
    )


__all__ = [
    "BeliefDynamics",
    "DimensionEstimate",
    "belief_dynamics",
    "box_counting_dimension",
    "box_counts",
    "correlation_dimension",
    "lyapunov_dimension",
    "simplex_basis",
    "simplex_coordinates",
    "update_jacobian",
]
