"""Stage boundaries: critical points of a curve over log training step, and marker midpoints.

Hoogland et al. (TMLR 2025, sec. 3-4) cut training into developmental stages at the *critical
points* of the local learning coefficient (LLC) as a function of log step: the steps where its
slope ``d lambda / d log t`` vanishes, i.e. its local maxima and minima and its plateaus (a slope
that falls to near zero and rises again without changing sign).

The curve is smoothed before its slope is read, by a local linear fit with a Gaussian kernel in
``x = log10(step)`` (Fan & Gijbels 1996, ch. 3): at each point ``g`` of a fine grid, the weighted
least-squares line ``a + b (x - g)`` with weights ``exp(-(x_i - g)^2 / (2 h^2))`` gives the
smoothed level ``a(g)`` and slope ``b(g)``. Both are linear in the data, ``b(g) = sum_i c_i(g)
y_i``, so a standard error ``s_i`` per point gives the slope's standard error
``sqrt(sum_i c_i(g)^2 s_i^2)`` exactly. The bandwidth ``h`` (in decades) is the smoothing, stated
before any curve is seen; unlike a kernel average, a local line has no flattening bias at the ends.

Each grid point is then *rising*, *falling* or *flat*: flat when ``|b|`` is below the larger of
``flat_fraction * max |b|`` (a plateau is a slope small beside the curve's steepest) and
``z * se(b)`` (a slope the noise cannot tell from zero). Critical points sit between two sloped
stretches: a maximum between rising and falling, a minimum between falling and rising (at the
slope's zero crossing), a plateau at the flattest point of a flat stretch between two stretches of
the same sign. A flat stretch touching either end of the curve is no critical point by default
(nothing after it says the slope resumes), so a monotone curve or a sigmoid has none, and so has
a curve whose slope is nowhere distinguishable from zero (then ``resolved`` is False: the noise is
too large to place any critical point). With ``edges=True`` the inner end of such a stretch is
reported too: where a curve flat from the start begins to move (``onset``) and where a moving
curve levels off for the rest of the run (``levels off``), the two ends of a sigmoid's rise.

A marker's transition (:func:`transition_step`) is the first step at which it crosses a stated
level, or has gone half of the way (``fraction``) from its initial value to its extreme,
interpolated linearly in log step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError

__all__ = [
    "CriticalPoints",
    "critical_points",
    "local_linear",
    "nearest_distance",
    "transition_step",
]

KINDS = ("maximum", "minimum", "plateau", "onset", "levels off")


def _curve(steps: object, values: object, name: str = "values") -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or y.shape != s.shape:
        raise PiamiShapeError(
            f"steps and {name} must be 1-D arrays of the same length, got shapes {s.shape} and "
            f"{y.shape}"
        )
    if s.size < 3:
        raise PiamiValueError(f"a curve needs at least 3 points, got {s.size}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(y))):
        raise PiamiValueError(f"steps and {name} must be finite (drop non-finite points first)")
    if np.any(s <= 0) or np.any(np.diff(s) <= 0):
        raise PiamiValueError(
            f"steps must be > 0 and strictly increasing (log step), got {s.tolist()}"
        )
    return s, y


def local_linear(
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    bandwidth: float,
    stderr: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-kernel local linear fit: level, slope and the slope's standard error on ``grid``.

    Args:
        x: ``(n,)`` abscissae (here ``log10`` step).
        y: ``(n,)`` values.
        grid: ``(m,)`` points to evaluate at.
        bandwidth: kernel standard deviation ``h`` (units of ``x``), > 0.
        stderr: ``(n,)`` standard errors of ``y`` (None: the slope's error is reported as 0).

    Returns:
        ``(level, slope, slope_se)``, each ``(m,)`` (Fan & Gijbels 1996, eq. 3.4 with p = 1).

    Example:
        >>> x = np.linspace(0, 3, 10)
        >>> lvl, slope, _ = local_linear(x, 2 * x + 1, np.array([1.5]), 0.3)
        >>> round(float(lvl[0]), 9), round(float(slope[0]), 9)
        (4.0, 2.0)
    """
    if not (isinstance(bandwidth, (int, float)) and np.isfinite(bandwidth) and bandwidth > 0):
        raise PiamiValueError(f"bandwidth must be a number > 0 (decades), got {bandwidth!r}")
    d = x[None, :] - grid[:, None]  # (m, n)
    w = np.exp(-0.5 * (d / bandwidth) ** 2)
    s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    det = s0 * s2 - s1 * s1
    det = np.where(det > 1e-300, det, np.nan)
    # rows of (X^T W X)^{-1} X^T W: the level and slope coefficients c_i(g) of each y_i
    c_level = w * (s2[:, None] - s1[:, None] * d) / det[:, None]
    c_slope = w * (s0[:, None] * d - s1[:, None]) / det[:, None]
    level, slope = c_level @ y, c_slope @ y
    if stderr is None:
        se = np.zeros_like(slope)
    else:
        se = np.sqrt((c_slope**2) @ (np.asarray(stderr, dtype=np.float64) ** 2))
    return level, slope, se


@dataclass(frozen=True, kw_only=True)
class CriticalPoints:
    """The critical points of a curve over log step, and the smoothed curve they come from.

    Attributes:
        steps: ``(k,)`` training steps of the critical points, in increasing order.
        kinds: ``"maximum"``, ``"minimum"``, ``"plateau"`` (or, with ``edges``, ``"onset"`` and
            ``"levels off"``) for each.
        resolved: False when the slope is nowhere distinguishable from zero (nothing can be
            placed: the curve's noise is too large, or it is flat).
        grid_steps: ``(m,)`` steps of the evaluation grid (log-spaced).
        level: ``(m,)`` the smoothed curve.
        slope: ``(m,)`` its slope per decade of step.
        slope_se: ``(m,)`` the slope's standard error (0 without standard errors).
        threshold: ``(m,)`` the slope below which a grid point counts as flat.
        bandwidth: the smoothing bandwidth (decades).
    """

    steps: np.ndarray
    kinds: tuple[str, ...]
    resolved: bool
    grid_steps: np.ndarray
    level: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray
    threshold: np.ndarray
    bandwidth: float

    def log_steps(self) -> np.ndarray:
        """``log10`` of the critical points' steps."""
        return np.log10(self.steps) if self.steps.size else np.zeros(0)


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs ``(label, start, stop)`` (stop exclusive) of equal labels."""
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [labels.size]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _zero_crossing(lg: np.ndarray, slope: np.ndarray, lo: int, hi: int) -> float:
    """log step where the slope changes sign between grid indices ``lo`` and ``hi`` (inclusive)."""
    seg = slope[lo : hi + 1]
    sign = np.sign(seg)
    idx = np.flatnonzero(sign[:-1] * sign[1:] <= 0)
    if idx.size == 0:  # no crossing on the grid: the flattest point
        return float(lg[lo + int(np.argmin(np.abs(seg)))])
    i = lo + int(idx[len(idx) // 2])
    s0, s1 = slope[i], slope[i + 1]
    t = 0.5 if s0 == s1 else s0 / (s0 - s1)
    return float(lg[i] + t * (lg[i + 1] - lg[i]))


def critical_points(
    steps: object,
    values: object,
    *,
    stderr: object = None,
    bandwidth: float = 0.25,
    flat_fraction: float = 0.15,
    z: float = 2.0,
    n_grid: int = 400,
    edges: bool = False,
) -> CriticalPoints:
    """Critical points (maxima, minima, plateaus) of ``values`` over ``log10(steps)``.

    See the module docstring for the method (local linear smoothing, then rising / falling / flat
    stretches; critical points between two sloped stretches, none at the ends).

    Args:
        steps: ``(n,)`` training steps, > 0 and increasing (``n >= 3``).
        values: ``(n,)`` the curve (e.g. the LLC at each checkpoint).
        stderr: ``(n,)`` standard errors of ``values`` (None: noise not accounted for).
        bandwidth: smoothing bandwidth in decades of step (Gaussian kernel standard deviation).
        flat_fraction: a slope below this fraction of the steepest slope counts as flat.
        z: a slope within ``z`` standard errors of zero counts as flat.
        n_grid: points of the log-spaced evaluation grid.
        edges: also report where a flat stretch touching an end meets a sloped one: an
            ``"onset"`` (flat from the start, then moving) and a ``"levels off"`` (moving, then
            flat to the end). Off by default: nothing in the data says the curve stays flat
            beyond its ends.

    Returns:
        A :class:`CriticalPoints`.

    Example:
        >>> s = np.geomspace(1, 1e4, 25)
        >>> y = -(np.log10(s) - 2.0) ** 2          # one maximum, at step 100
        >>> cp = critical_points(s, y, bandwidth=0.2)
        >>> cp.kinds, round(float(cp.log_steps()[0]), 2)
        (('maximum',), 2.0)
    """
    s, y = _curve(steps, values)
    se = None
    if stderr is not None:
        se = np.asarray(stderr, dtype=np.float64)
        if se.shape != y.shape or not np.all(np.isfinite(se)) or np.any(se < 0):
            raise PiamiValueError(
                f"stderr must be {y.shape[0]} finite numbers >= 0, got {np.asarray(stderr)!r}"
            )
    if not (isinstance(flat_fraction, (int, float)) and 0 <= flat_fraction < 1):
        raise PiamiValueError(f"flat_fraction must lie in [0, 1), got {flat_fraction!r}")
    if not (isinstance(z, (int, float)) and z >= 0):
        raise PiamiValueError(f"z must be a number >= 0, got {z!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 10:
        raise PiamiValueError(f"n_grid must be an integer >= 10, got {n_grid!r}")
    x = np.log10(s)
    lg = np.linspace(x[0], x[-1], n_grid)
    level, slope, slope_se = local_linear(x, y, lg, float(bandwidth), se)
    steepest = float(np.nanmax(np.abs(slope)))
    floor = 1e-9 * max(1.0, float(np.max(np.abs(y))))  # rounding error of a constant curve
    threshold = np.maximum(np.maximum(flat_fraction * steepest, z * slope_se), floor)
    labels = np.where(np.abs(slope) > threshold, np.sign(slope), 0).astype(int)
    resolved = bool(np.any(labels != 0))
    found: list[tuple[float, str]] = []
    runs = _runs(labels)
    sloped = [i for i, r in enumerate(runs) if r[0] != 0]
    if edges and sloped:
        first, last = runs[0], runs[-1]
        if first[0] == 0:  # flat from the start: the curve starts to move where it ends
            found.append((float(lg[first[2]]), "onset"))
        if last[0] == 0:  # flat to the end: the curve levels off where it starts
            found.append((float(lg[last[1]]), "levels off"))
    for a, b in itertools.pairwise(sloped):
        (sa, _, stop_a), (sb, start_b, _) = runs[a], runs[b]
        if sa != sb:  # the slope changes sign: an extremum at its zero crossing
            kind = "maximum" if sa > 0 else "minimum"
            found.append((_zero_crossing(lg, slope, stop_a - 1, start_b), kind))
        else:  # a flat stretch between two of the same sign: a plateau at its flattest point
            seg = np.abs(slope[stop_a:start_b])
            found.append((float(lg[stop_a + int(np.argmin(seg))]), "plateau"))
    found.sort()
    return CriticalPoints(
        steps=np.array([10**v for v, _ in found]),
        kinds=tuple(k for _, k in found),
        resolved=resolved,
        grid_steps=10**lg,
        level=level,
        slope=slope,
        slope_se=slope_se,
        threshold=threshold,
        bandwidth=float(bandwidth),
    )


def transition_step(
    steps: object,
    values: object,
    *,
    rise: bool = True,
    fraction: float = 0.5,
    level: float | None = None,
    min_change: float = 0.0,
) -> float | None:
    """The first step at which a marker crosses ``level``, or goes ``fraction`` of its way.

    Without ``level``, the way runs from the first value (e.g. at step 0) to the maximum
    (``rise``) or minimum, and the marker must move by more than ``min_change`` along it. The
    crossing is interpolated linearly in ``log10`` step between the checkpoints around it (a
    crossing before the first positive step is placed at it).

    Args:
        steps: ``(n,)`` steps, increasing, the first may be 0.
        values: ``(n,)`` the marker.
        rise: the marker's acquisition raises it (True) or lowers it (False).
        fraction: share of the way, in (0, 1) (ignored with ``level``).
        level: an absolute level to cross instead (from below when ``rise``).
        min_change: smallest move from the first value to the extreme that counts (same units).

    Returns:
        The step, or None when the marker never crosses (never moves by more than
        ``min_change``, or never reaches ``level``).

    Example:
        >>> round(transition_step([0, 1, 10, 100, 1000], [0.0, 0.0, 0.0, 1.0, 1.0]), 2)
        31.62
    """
    s = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or y.shape != s.shape or s.size < 2:
        raise PiamiShapeError(f"steps and values must be 1-D of equal length >= 2, got {s.shape}")
    if not 0 < fraction < 1:
        raise PiamiValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    if np.any(s < 0) or np.any(np.diff(s) <= 0) or not np.all(np.isfinite(y)):
        raise PiamiValueError("steps must be >= 0 and increasing, values finite")
    sign = 1.0 if rise else -1.0
    if level is not None:
        u, target = sign * y, sign * float(level)
        if u[0] >= target:
            return float(s[0]) if s[0] > 0 else None
    else:
        u = sign * (y - y[0])
        top = float(u.max())
        if top <= max(min_change, 0.0):
            return None
        target = fraction * top
    above = np.flatnonzero(u >= target)
    if above.size == 0:
        return None
    i = int(above[0])  # i >= 1: u[0] lies below the target
    lo, hi = s[i - 1], s[i]
    if lo <= 0:
        return float(hi)
    t = (target - u[i - 1]) / (u[i] - u[i - 1])
    return float(10 ** (np.log10(lo) + t * (np.log10(hi) - np.log10(lo))))


def nearest_distance(step: float, boundaries: object) -> float:
    """Distance in decades from ``step`` to the nearest of ``boundaries`` (inf if there is none).

    Example:
        >>> round(nearest_distance(100.0, [10.0, 300.0]), 3)
        0.477
    """
    b = np.asarray(boundaries, dtype=np.float64).ravel()
    if step is None or not np.isfinite(step) or step <= 0:
        raise PiamiValueError(f"step must be a number > 0, got {step!r}")
    if b.size == 0:
        return float("inf")
    return float(np.min(np.abs(np.log10(b) - np.log10(step))))
