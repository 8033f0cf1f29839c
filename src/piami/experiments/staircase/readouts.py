"""Numbers read off the staircase networks' loss curves, and off their mean-field limit.

- when each replica escapes the last plateau (:func:`escape_times`) and the exponent of ``d`` in
  those times, pooled over replicas (:func:`fitted_exponent`);
- the loss where a curve is flattest inside the window of a level of the leap picture
  (:func:`plateau_value`; :class:`Plateau` for every replica and the limit);
- for leap 1, the gap between the networks' loss and the limit's (:class:`LimitGap`) and the
  times each monomial is half learned (:class:`HalfTimes`).

The limit is always read on the networks' own test set (its support-point frequencies,
:func:`support_frequencies`), so the set's sampling error cancels from every comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piami.experiments.staircase.config import Config, lr_per_sample
from piami.instruments.curves import first_crossing, loglog_slope_interval
from piami.processes.tasks import StaircaseTarget
from piami.theory.mean_field import MeanFieldTrajectory


def escape_times(samples: np.ndarray, losses: np.ndarray, level: float, lr: float) -> np.ndarray:
    """Gradient-flow time ``lr * samples`` at which each replica's loss first falls to ``level``.

    Args:
        samples: ``(n_evals,)`` sample counts; losses: ``(R, n_evals)`` test losses.
        level: the loss that marks the escape; lr: the per-sample step.

    Returns:
        ``(R,)`` times (the first evaluation at or below ``level``), NaN for a replica that never
        got there.
    """
    return (
        np.array(
            [
                first_crossing(samples, loss, level, direction="down", interpolate=False)
                for loss in losses
            ]
        )
        * lr
    )


def pooled_slope(dims: np.ndarray, times: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """Least-squares slope of ``log time`` on ``log d`` over every replica, with its 95% interval.

    Args:
        dims: ``(n_d,)`` input dimensions; times: ``(n_d, R)`` escape times, all finite and > 0.

    Returns:
        ``(slope, standard error, (low, high))``: the interval is Student's t with ``n - 2``
        degrees of freedom, ``n = n_d * R`` points (replicas are independent networks).
    """
    x = np.repeat(np.asarray(dims, float), times.shape[1])
    return loglog_slope_interval(x, np.asarray(times, float).ravel(), level=0.95)


def fitted_exponent(
    dims: np.ndarray, times: np.ndarray
) -> tuple[float, float, tuple[float, float] | None]:
    """:func:`pooled_slope`, or ``(NaN, NaN, None)`` when a replica never escaped at some ``d``."""
    if np.isnan(times).any():
        return float("nan"), float("nan"), None
    return pooled_slope(dims, times)


def plateau_value(samples: np.ndarray, loss: np.ndarray, lo: float, hi: float) -> float:
    """Loss at the flattest point of the curve while it lies in ``[lo, hi)`` (NaN if never there).

    The curve is smoothed over 5 evaluations and the point of smallest ``|dL/dn|`` is taken. On a
    true plateau this is the plateau's level; a curve that only passes through the window (no
    plateau) is flattest at its lower edge, half a gap away from the level.
    """
    if loss.size < 5:
        return float("nan")
    smooth = np.convolve(loss, np.ones(5) / 5, mode="same")
    smooth[:2], smooth[-2:] = loss[:2], loss[-2:]
    slope = np.abs(np.gradient(smooth, samples))
    idx = np.flatnonzero((smooth >= lo) & (smooth < hi))
    idx = idx[(idx >= 2) & (idx < loss.size - 2)]
    if idx.size == 0:
        return float("nan")
    return float(smooth[idx[np.argmin(slope[idx])]])


def support_frequencies(x_test: np.ndarray, k: int) -> np.ndarray:
    """How often each of the ``2^k`` support points (in :func:`hypercube_points` order) occurs."""
    codes = ((x_test[:, :k] > 0).astype(np.int64) * (1 << np.arange(k - 1, -1, -1))).sum(axis=1)
    return np.bincount(codes, minlength=1 << k).astype(np.float64)


def half_times(t: np.ndarray, coefs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """First time each monomial's coefficient exceeds half its target (NaN if never).

    Args:
        t: ``(n,)`` times; coefs: ``(n, n_mono)`` coefficients; targets: ``(n_mono,)``.

    Returns:
        ``(n_mono,)``: the first evaluation with ``coef / target >= 1/2`` (no interpolation).
    """
    out = np.full(targets.size, np.nan)
    for m, c in enumerate(targets):
        out[m] = first_crossing(t, coefs[:, m] / c, 0.5, interpolate=False)
    return out


def noise_floor(
    lr: float, d: int, limit: MeanFieldTrajectory, t: np.ndarray, loss: np.ndarray
) -> np.ndarray:
    """Online SGD's stationary excess loss above the noiseless limit, ``(lr (d - k) / 2) L g``.

    ``g`` is the limit's noise gain (:class:`~piami.theory.mean_field.MeanFieldTrajectory`), read
    at times ``t``; ``loss`` is the limit's loss there (Ben Arous, Gheissari & Jagannath 2022).
    """
    k = limit.points.shape[1]
    gain = np.interp(t, limit.times, limit.noise_gain)
    return lr * (d - k) / 2 * loss * gain


@dataclass(frozen=True, kw_only=True)
class Plateau:
    """The networks and the limit inside the window of one level of the leap picture.

    Attributes:
        k: index of the level among the target's plateau losses.
        level: the leap picture's loss there.
        window: ``[lo, hi)``, half a gap to the neighbouring levels on either side.
        replicas: each replica's loss where its curve is flattest in the window (NaN: never in it).
        limit: the limit's, read the same way on the networks' test set (NaN: never in it).
        noise_floor: median of :func:`noise_floor` while the limit is in the window (all times
            when never).
    """

    k: int
    level: float
    window: tuple[float, float]
    replicas: tuple[float, ...]
    limit: float
    noise_floor: float


def read_plateaus(
    cfg: Config,
    leap: int,
    t: np.ndarray,
    losses: np.ndarray,
    limit: MeanFieldTrajectory,
    test_freq: np.ndarray,
    d: int,
) -> list[Plateau]:
    """A :class:`Plateau` for every level after a learned step (not the untrained loss, level 0).

    Args:
        t: ``(n_evals,)`` gradient-flow times; losses: ``(R, n_evals)`` test losses at ``d``.
        limit: the mean-field limit at ``d``; test_freq: the test set's support-point counts.
    """
    levels = StaircaseTarget.standard(leap=leap, d=d).plateau_losses()
    lim_loss = limit.loss_on(test_freq)
    floor = noise_floor(lr_per_sample(cfg.lr0, leap, d), d, limit, limit.times, lim_loss)
    out = []
    for k in range(1, levels.size - 1):
        lo, hi = (levels[k] + levels[k + 1]) / 2, (levels[k] + levels[k - 1]) / 2
        in_window = (lim_loss >= lo) & (lim_loss < hi)
        out.append(
            Plateau(
                k=k,
                level=float(levels[k]),
                window=(float(lo), float(hi)),
                replicas=tuple(plateau_value(t, loss, lo, hi) for loss in losses),
                limit=plateau_value(limit.times, lim_loss, lo, hi),
                noise_floor=float(np.median(floor[in_window] if in_window.any() else floor)),
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class LimitGap:
    """Leap 1: the median replica's test loss against the limit's, over the whole run.

    Attributes:
        d: the input dimension.
        t: ``(n_evals,)`` gradient-flow times.
        gap: ``(n_evals,)`` ``|median replica loss - limit loss|``.
        untrained_gap: ``(n_evals,)`` the same for the median initial loss, held for ever.
        noise_floor: ``(n_evals,)`` online SGD's floor above the limit (:func:`noise_floor`).
        time_shift: ``(n_evals,)`` ``d^(-1/2) t |dL/dt|``: what a relative time shift
            ``d^(-1/2)`` (the networks' initial overlaps; the limit starts from zero) does.
        min_tail: smallest tail norm any particle of the limit reached.
    """

    d: int
    t: np.ndarray
    gap: np.ndarray
    untrained_gap: np.ndarray
    noise_floor: np.ndarray
    time_shift: np.ndarray
    min_tail: float

    def tolerance(self) -> tuple[float, str]:
        """The allowed gap (twice the largest first-order gap) and where it comes from."""
        floor, shift = self.noise_floor, self.time_shift
        tol = 2 * float(np.max(floor + shift))
        source = (
            "derived: first-order gaps, at each time, of online SGD's noise floor (lr (d - k) / 2) "
            f"L g (largest {floor.max():.3f}) and of a time shift of relative size d^(-1/2) from "
            f"the networks' initial overlaps, d^(-1/2) t |dL/dt| (largest {shift.max():.3f}); "
            "allowed twice their largest sum"
        )
        return tol, source


def read_limit_gap(
    cfg: Config,
    t: np.ndarray,
    losses: np.ndarray,
    limit: MeanFieldTrajectory,
    test_freq: np.ndarray,
    d: int,
) -> LimitGap:
    """The :class:`LimitGap` of the leap-1 networks at ``d`` (as in :func:`read_plateaus`)."""
    lim_loss = np.interp(t, limit.times, limit.loss_on(test_freq))
    return LimitGap(
        d=d,
        t=t,
        gap=np.abs(np.median(losses, axis=0) - lim_loss),
        untrained_gap=np.abs(float(np.median(losses[:, 0])) - lim_loss),
        noise_floor=noise_floor(lr_per_sample(cfg.lr0, 1, d), d, limit, t, lim_loss),
        time_shift=np.abs(np.gradient(lim_loss, t)) * t / math.sqrt(d),
        min_tail=limit.min_tail,
    )


@dataclass(frozen=True, kw_only=True)
class HalfTimes:
    """Leap 1: when the median network and the limit first reach half of each monomial.

    Attributes:
        supports: the target's monomials (index tuples), in the target's order.
        network: ``(n_mono,)`` the median replica's half-learning times (NaN: never).
        limit: ``(n_mono,)`` the limit's, on the networks' test set.
    """

    supports: tuple[tuple[int, ...], ...]
    network: np.ndarray
    limit: np.ndarray

    @property
    def names(self) -> list[str]:
        """``x1``, ``x1x2``, ...: the monomials by name."""
        return ["x" + "x".join(str(i + 1) for i in s) for s in self.supports]


def read_half_times(
    target: StaircaseTarget,
    t: np.ndarray,
    mono: np.ndarray,
    limit: MeanFieldTrajectory,
    test_freq: np.ndarray,
) -> HalfTimes:
    """The :class:`HalfTimes` of the median replica (``mono``: ``(R, n_evals, n_mono)``)."""
    coefs = np.asarray(target.coefficients, dtype=np.float64)
    chis = np.stack([limit.points[:, list(s)].prod(axis=1) for s in target.supports], axis=1)
    lim_coefs = limit.outputs @ (chis * (test_freq / test_freq.sum())[:, None])
    return HalfTimes(
        supports=tuple(tuple(s) for s in target.supports),
        network=half_times(t, np.median(mono, axis=0), coefs),
        limit=half_times(limit.times, lim_coefs, coefs),
    )
