"""Reading numbers off curves: when a curve first crosses a level, and its log-log slope.

Every learning-dynamics experiment asks the same two questions of a measured curve: *when* did it
first reach a level (a mode's half-way time, the epoch test accuracy passed 50%, the sample count
at which a loss escaped its plateau), and *how fast* does one quantity scale with another (the
slope of ``log y`` on ``log x``, with its standard error). One implementation of each, tested
against closed forms, replaces the private copies the experiments carried.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError


def _pair(t: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.ndim != 1 or t.shape != y.shape:
        raise PiamiShapeError(
            f"t and y must be 1-d arrays of the same length, got shapes {t.shape} and {y.shape}"
        )
    return t, y


def first_crossing(
    t: object,
    y: object,
    level: float,
    *,
    direction: Literal["up", "down"] = "up",
    interpolate: bool = True,
) -> float:
    """The first ``t`` at which ``y`` reaches ``level`` (``y >= level`` up, ``y <= level`` down).

    Args:
        t: ``(n,)`` increasing times (steps, epochs, samples).
        y: ``(n,)`` the curve at those times.
        level: the level to reach.
        direction: ``"up"`` for a rising curve, ``"down"`` for a falling one.
        interpolate: place the crossing by linear interpolation between the two evaluations around
            it (else: the first evaluation at or past the level).

    Returns:
        The time, ``t[0]`` when the curve starts at or past the level, NaN when it never gets
        there.

    Example:
        >>> first_crossing([0, 1, 2], [0.0, 0.4, 0.8], 0.6)
        1.5
        >>> first_crossing([0, 1, 2], [3.0, 2.0, 1.0], 1.5, direction="down")
        1.5
    """
    if direction not in ("up", "down"):
        raise PiamiValueError(f"direction must be 'up' or 'down', got {direction!r}")
    t, y = _pair(t, y)
    if direction == "down":
        y, level = -y, -level
    past = np.flatnonzero(y >= level)
    if past.size == 0:
        return float("nan")
    k = int(past[0])
    if k == 0 or not interpolate:
        return float(t[k])
    y0, y1 = y[k - 1], y[k]
    return float(t[k - 1] + (level - y0) * (t[k] - t[k - 1]) / (y1 - y0))


def loglog_slope(x: object, y: object) -> tuple[float, float]:
    """Least-squares slope of ``log y`` on ``log x`` and its standard error.

    Args:
        x: ``(n,)`` positive values, ``n >= 2`` (the standard error needs ``n >= 3``; it is NaN
            below).
        y: ``(n,)`` positive values, paired with ``x``.

    Example:
        >>> s, se = loglog_slope([1, 10, 100], [2.0, 0.2, 0.02])
        >>> round(s, 12), round(se, 12)
        (-1.0, 0.0)
    """
    x, y = _pair(x, y)
    if x.size < 2 or np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(x + y)):
        raise PiamiValueError("loglog_slope needs at least 2 finite, positive (x, y) pairs")
    lx, ly = np.log(x), np.log(y)
    sxx = float(((lx - lx.mean()) ** 2).sum())
    if sxx == 0:
        raise PiamiValueError("loglog_slope needs at least two distinct x values")
    slope = float(((lx - lx.mean()) * (ly - ly.mean())).sum() / sxx)
    resid = ly - ly.mean() - slope * (lx - lx.mean())
    dof = lx.size - 2
    se = math.sqrt(float(resid @ resid) / dof / sxx) if dof > 0 else float("nan")
    return slope, se


def loglog_slope_interval(
    x: object, y: object, *, level: float = 0.95
) -> tuple[float, float, tuple[float, float]]:
    """:func:`loglog_slope` with its Student-t interval (``n - 2`` degrees of freedom).

    Returns:
        ``(slope, standard error, (low, high))``.
    """
    from scipy import stats

    if not 0 < level < 1:
        raise PiamiValueError(f"level must lie in (0, 1), got {level}")
    slope, se = loglog_slope(x, y)
    n = np.asarray(x).size
    half = float(stats.t.ppf(0.5 + level / 2, n - 2)) * se if n > 2 else float("inf")
    return slope, se, (slope - half, slope + half)
