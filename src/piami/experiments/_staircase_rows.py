"""The comparison rows of the staircase experiment (:mod:`piami.experiments.staircase`).

Predictions (Abbe, Boix-Adsera & Misiakiewicz 2023, and the networks' own mean-field limit):

- the exponent of ``d`` in the escape time *beyond the step-size schedule*. The per-sample step
  ``lr0 d^(-max(leap/2, 1))`` supplies ``max(leap/2, 1)`` of the predicted sample exponent
  ``max(leap - 1, 1)`` by construction, so the row measures escape in gradient-flow time
  ``t = lr * samples`` and predicts only the remainder: 0 for leaps 1 and 2, 1/2 for leap 3 (the
  escape from an initial overlap ``~ d^(-1/2)`` of a saddle whose drift is quadratic in the overlap);
- the leap-2 plateau against the mean-field limit, which stays on that saddle for ever;
- leap 1: the loss curve, the learning order and the half-learning times against the limit.

Refuted: the leap picture's leap-1 plateaus (losses 2 and 1). The exact limit has none: a leap-1
step is no saddle, so the next monomial starts while the previous one is being learned.

Controls, computed in the same run, which a broken system fails: the untrained networks (their
initial loss held for ever) must miss the limit by more than the bar; the leap-3 escape must be
told apart from the no-saddle null (an escape time free of ``d``); an untrained network must sit off
the leap-2 plateau by more than its bar.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from piami.experiments._staircase_net import (
    first_below,
    lr_per_sample,
    plateau_value,
    pooled_slope,
)
from piami.lab import Comparison
from piami.processes.tasks import StaircaseTarget
from piami.theory.leap import escape_exponent, learning_order
from piami.theory.mean_field import MeanFieldTrajectory

REF = "Abbe, Boix-Adsera & Misiakiewicz 2023 (leap complexity)"
REF_LIMIT = (
    "Abbe et al. 2022 (dimension-free dynamics); "
    "Ben Arous, Gheissari & Jagannath 2022 (online-SGD corrector)"
)
#: A replica escapes the last plateau when its test loss first falls below this share of it.
#: Chosen with this rewrite among 0.5 / 0.75 / 0.9 by looking at seed 0 (quick and full) and seeds
#: 1-2 (quick): 0.5 adds the descent after the escape (a d-free constant that lowers the leap-3
#: exponent to ~0.37-0.40), 0.9 sits in the test-set noise (wider intervals). Not tuned on other
#: seeds; certify's further seeds are the out-of-sample check.
ESCAPE_SHARE = 0.75
#: Widest 95% interval of a fitted exponent that decides a row: the gap between the theory-added
#: exponents of leaps 1-2 (0) and leap 3 (1/2); a wider interval cannot tell them apart.
MAX_EXPONENT_INTERVAL = 0.5


def schedule_exponent(leap: int) -> float:
    """Exponent of ``1/d`` in the per-sample step ``lr0 d^(-max(leap/2, 1))``: the protocol's part."""
    return max(leap / 2.0, 1.0)


def added_exponent(leap: int) -> float:
    """What the theory adds beyond the schedule: ``max(leap - 1, 1) - max(leap/2, 1)``."""
    return escape_exponent(leap) - schedule_exponent(leap)


def log_allowance(dims: np.ndarray) -> float:
    """``1 / ln d`` at the geometric mean of ``dims``: what one factor ``ln d`` adds to an exponent."""
    return 1.0 / float(np.mean(np.log(np.asarray(dims, float))))


def _names(target: StaircaseTarget) -> list[str]:
    return ["x" + "x".join(str(i + 1) for i in s) for s in target.supports]


def exponent_row(leap: int, dims: np.ndarray, times: np.ndarray) -> Comparison:
    """The exponent of ``d`` in the gradient-flow escape time against what the theory adds.

    Args:
        dims: ``(n_d,)`` input dimensions; times: ``(n_d, R)`` escape times of every replica
            (gradient-flow time, NaN where a replica never escaped).
    """
    allow = log_allowance(dims)
    missing = [
        f"{int(np.isnan(row).sum())} of {row.size} at d={int(d)}"
        for d, row in zip(dims, times, strict=True)
        if np.isnan(row).any()
    ]
    slope, se, iv = (float("nan"), float("nan"), None)
    if not missing:
        slope, se, iv = pooled_slope(dims, times)
    return Comparison(
        name=f"leap {leap}: exponent of d in the escape time beyond the step-size schedule",
        kind="prediction",
        predicted=added_exponent(leap),
        measured=slope,
        tolerance=allow,
        tolerance_source=(
            "derived: Abbe et al. state the escape as Theta~(d^p), up to factors of log d; one "
            f"factor ln d adds 1/ln d = {allow:.3f} to a fitted exponent at the geometric mean of "
            "the fitted dims"
        ),
        measured_interval=iv,
        max_interval_width=MAX_EXPONENT_INTERVAL,
        not_identified=(
            "replicas never escaped within t_max: " + ", ".join(missing) if missing else ""
        ),
        reference=REF,
        note=(
            f"slope of log t_escape on log d over every replica (s.e. {se:.3f}; 95% interval "
            "Student t), t_escape = lr * samples when the test loss first falls below "
            f"{ESCAPE_SHARE:g} of the leap picture's last non-zero level. Predicted: the sample exponent "
            f"max(leap - 1, 1) = {escape_exponent(leap)} minus the step size's "
            f"{schedule_exponent(leap):g}, which the protocol supplies by construction; an "
            f"interval wider than {MAX_EXPONENT_INTERVAL:g} (the gap between leap 3's 1/2 and "
            "leaps 1-2's 0) leaves the row not identified"
        ),
    )


def no_saddle_control(row: Comparison, dims: np.ndarray) -> Comparison:
    """Control: leap 3's escape must be told apart from an escape time free of ``d``."""
    allow = log_allowance(dims)
    return Comparison(
        name="leap 3: escape time grows with d beyond the schedule (no-saddle null rejected)",
        kind="control",
        predicted=allow,
        measured=row.measured,
        tolerance=0.0,
        tolerance_source=row.tolerance_source,
        sense="at_least",
        measured_interval=row.measured_interval,
        max_interval_width=MAX_EXPONENT_INTERVAL,
        not_identified=row.not_identified,
        reference=REF,
        note=(
            "the null: the theory adds nothing beyond the step size (exponent 0, as for leaps 1 "
            f"and 2); its band reaches {allow:.3f}, which leap 3's measured exponent must exceed "
            "for the exponent rows to tell the leaps apart"
        ),
    )


def noise_floor(lr: float, d: int, limit: MeanFieldTrajectory, t: np.ndarray,
                loss: np.ndarray) -> np.ndarray:  # fmt: skip
    """Online SGD's stationary excess loss above the noiseless limit, ``(lr (d - k) / 2) L g``.

    ``g`` is the limit's noise gain (:class:`~piami.theory.mean_field.MeanFieldTrajectory`), read
    at times ``t``; ``loss`` is the limit's loss there.
    """
    k = limit.points.shape[1]
    gain = np.interp(t, limit.times, limit.noise_gain)
    return lr * (d - k) / 2 * loss * gain


def plateau_rows(leap: int, cfg: Any, d: int, t: np.ndarray, losses: np.ndarray,
                 limit: MeanFieldTrajectory, test_freq: np.ndarray) -> tuple[list[Comparison], dict]:  # fmt: skip
    """Plateaus after a learned step: leap 2's against the limit; leap 1's are refuted.

    The measured plateau is the median over replicas of the loss where the smoothed curve is
    flattest inside half a gap of the level (:func:`plateau_value`); the limit's is read the same
    way from its loss on the networks' own test set (its support-point frequencies), so the test
    set's sampling error cancels. The level before a linear first monomial and the initial level
    of leap 3 are the untrained loss, not plateaus, and are not compared.
    """
    target = StaircaseTarget.standard(leap=leap, d=d)
    levels = target.plateau_losses()
    lr = lr_per_sample(cfg.lr0, leap, d)
    lim_loss = limit.loss_on(test_freq)
    floor = noise_floor(lr, d, limit, limit.times, lim_loss)
    rows, lim_vals = [], {}
    for k in range(1, levels.size - 1):
        lo, hi = (levels[k] + levels[k + 1]) / 2, (levels[k] + levels[k - 1]) / 2
        vals = [plateau_value(t, loss, lo, hi) for loss in losses]
        seen = [v for v in vals if np.isfinite(v)]
        lim_vals[k] = plateau_value(limit.times, lim_loss, lo, hi)
        measured = float(np.median(seen)) if 2 * len(seen) > len(vals) else float("nan")
        in_window = (lim_loss >= lo) & (lim_loss < hi)
        tol = 2 * float(np.median(floor[in_window] if in_window.any() else floor))
        source = (
            "derived: online SGD keeps a stationary excess loss (lr (d - k) / 2) L g above the "
            "noiseless limit, g = E[a^2 relu'] read from the limit (the tail noise of Ben Arous "
            "et al. 2022); allowed twice that first-order term, its median while the limit is in "
            f"the window: {tol:.3g}"
        )
        reached = f"{len(seen)}/{len(vals)} replicas reached the window [{lo:g}, {hi:g})"
        lim_txt = (
            "never reached" if not np.isfinite(lim_vals[k]) else f"flattest at {lim_vals[k]:.3f}"
        )
        if leap == 1:
            rows.append(Comparison(
                name=f"leap 1, d={d}: leap picture's plateau {k} (loss {levels[k]:g})",
                kind="refuted", predicted=float(levels[k]), measured=measured, tolerance=tol,
                tolerance_source=source, unit="mean squared error", reference=REF,
                not_identified="" if np.isfinite(measured) else reached,
                note=(f"{reached}. Refuted by the exact mean-field limit: a leap-1 step is no "
                      "saddle (once x1 is learned the gradient on a neuron's x2 weight, "
                      "a E[x1 relu'(u)], is non-zero), so x1x2 starts while x1 is still being "
                      f"learned and the loss passes the level without stopping. The limit in "
                      f"the same window: {lim_txt} (a curve without a plateau is flattest at "
                      "the window's edge, half a gap from the level)"),
            ))  # fmt: skip
            continue
        why = reached if not np.isfinite(measured) else ""
        if not why and not np.isfinite(lim_vals[k]):
            why = "the mean-field limit never reached the window"
        rows.append(Comparison(
            name=f"leap {leap}, d={d}: plateau {k} loss against the mean-field limit",
            kind="prediction", predicted=float(lim_vals[k]), measured=measured, tolerance=tol,
            tolerance_source=source, unit="mean squared error", reference=REF_LIMIT,
            not_identified=why,
            note=(f"{reached}; the limit (zero overlap, SGD-noise corrector) stays on this "
                  f"saddle for ever, at the leap picture's level {levels[k]:g}: {lim_txt}"),
        ))  # fmt: skip
        if leap == 2:
            rows.append(_off_plateau_control(k, d, losses, lim_vals[k], tol, source))
    return rows, {str(k): v for k, v in lim_vals.items()}


def _off_plateau_control(k: int, d: int, losses: np.ndarray, level: float, tol: float,
                         source: str) -> Comparison:  # fmt: skip
    """The untrained networks (their initial loss) must sit off the plateau by more than ``tol``."""
    initial = float(np.median(losses[:, 0]))
    return Comparison(
        name=f"leap 2, d={d}: untrained networks sit off plateau {k} by more than its bar",
        kind="control", predicted=tol, measured=abs(initial - level), tolerance=0.0,
        tolerance_source=source, sense="at_least", unit="mean squared error",
        note=(f"|initial test loss {initial:.3f} (median replica) - limit's plateau {level:.3f}|: "
              "a plateau row that an untrained network passed would carry no information"),
    )  # fmt: skip


def _gap_tolerance(cfg: Any, d: int, limit: MeanFieldTrajectory, lim: np.ndarray,
                   t: np.ndarray) -> tuple[float, str]:  # fmt: skip
    """Allowed gap between the networks' median loss and the limit's ``lim`` at times ``t``."""
    floor = noise_floor(lr_per_sample(cfg.lr0, 1, d), d, limit, t, lim)
    shift = np.abs(np.gradient(lim, t)) * t / math.sqrt(d)
    tol = 2 * float(np.max(floor + shift))
    source = (
        "derived: first-order gaps, at each time, of online SGD's noise floor (lr (d - k) / 2) L g "
        f"(largest {floor.max():.3f}) and of a time shift of relative size d^(-1/2) from the "
        f"networks' initial overlaps, d^(-1/2) t |dL/dt| (largest {shift.max():.3f}); allowed "
        "twice their largest sum"
    )
    return tol, source


def leap1_limit_rows(cfg: Any, target: StaircaseTarget, t: np.ndarray, losses: np.ndarray,
                     mono: np.ndarray, limit: MeanFieldTrajectory, test_freq: np.ndarray
                     ) -> tuple[list[Comparison], dict[str, Any]]:  # fmt: skip
    """Leap-1 networks against their mean-field limit: loss curve, order, half-learning times.

    The limit is evaluated on the networks' own test set (its support-point frequencies), so the
    set's sampling error cancels. A control holds the untrained networks' loss for ever: it must
    miss the limit by more than the bar.
    """
    d = target.d
    net_loss = np.median(losses, axis=0)
    lim_loss = np.interp(t, limit.times, limit.loss_on(test_freq))
    dev = np.abs(net_loss - lim_loss)
    untrained = np.abs(float(np.median(losses[:, 0])) - lim_loss)
    tol, source = _gap_tolerance(cfg, d, limit, lim_loss, t)
    metrics: dict[str, Any] = {
        "d": d, "max_abs_loss_gap": float(dev.max()), "t_of_max_gap": float(t[dev.argmax()]),
        "mean_abs_loss_gap": float(dev.mean()), "limit_min_tail_norm": limit.min_tail,
        "gap_tolerance": tol, "untrained_max_gap": float(untrained.max()),
    }  # fmt: skip
    rows = [
        Comparison(
            name=f"leap 1, d={d}: test loss follows the mean-field limit (largest gap)",
            kind="prediction", predicted=0.0, measured=float(dev.max()), tolerance=tol,
            tolerance_source=source, sense="at_most", unit="mean squared error",
            reference=REF_LIMIT,
            note=(f"largest |median-replica loss - limit loss| over the run (at t = "
                  f"{t[dev.argmax()]:.2f}; mean gap {dev.mean():.3f}); the limit is integrated "
                  f"with {cfg.mf_particles} particles from zero overlap with the SGD-noise term "
                  "delta = lr (d - 3)"),
        ),
        Comparison(
            name=f"leap 1, d={d}: untrained networks miss the mean-field limit (largest gap)",
            kind="control", predicted=tol, measured=float(untrained.max()), tolerance=0.0,
            tolerance_source=source, sense="at_least", unit="mean squared error",
            note="the same networks before training, their initial loss held: the gap bar must "
                 "tell them apart from the trained ones",
        ),
    ]  # fmt: skip
    order_rows, half = _order_rows(target, t, mono, limit, test_freq)
    metrics["half_times"] = half
    return rows + order_rows, metrics


def half_times(t: np.ndarray, coefs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """First time each monomial's coefficient reaches half its target (NaN if never): ``(n_mono,)``."""
    out = np.full(targets.size, np.nan)
    for m, c in enumerate(targets):
        out[m] = first_below(t, -coefs[:, m] / c, -0.5)
    return out


def _order_rows(target: StaircaseTarget, t: np.ndarray, mono: np.ndarray,
                limit: MeanFieldTrajectory, test_freq: np.ndarray
                ) -> tuple[list[Comparison], dict[str, Any]]:  # fmt: skip
    """Learning order and half-learning times of the leap-1 monomials, network vs limit."""
    d = target.d
    coefs = np.asarray(target.coefficients, dtype=np.float64)
    net_half = half_times(t, np.median(mono, axis=0), coefs)
    chis = np.stack([limit.points[:, list(s)].prod(axis=1) for s in target.supports], axis=1)
    lim_coefs = limit.outputs @ (chis * (test_freq / test_freq.sum())[:, None])
    lim_half = half_times(limit.times, lim_coefs, coefs)
    order, _ = learning_order(target.supports)
    names = _names(target)
    done = bool(np.all(np.isfinite(net_half)))
    in_order = float(np.all(np.diff(net_half[order]) > 0)) if done else float("nan")
    rows = [Comparison(
        name=f"leap 1, d={d}: monomials learned in the staircase order (half-coefficient times)",
        kind="prediction", predicted=1.0, measured=in_order, tolerance=0.0,
        tolerance_source="a priori: an order is right or wrong", unit="1 = in order",
        reference=REF,
        not_identified="" if done else "a monomial never reached half its coefficient",
        note=("times at which the median network's Fourier coefficient on each monomial first "
              "reaches half its target: " + ", ".join(
                  f"{n} {a:.2f} (limit {b:.2f})" for n, a, b in zip(
                      names, net_half, lim_half, strict=True)) + " (gradient-flow time)"),
    )]  # fmt: skip
    tol = 2 / math.sqrt(d)
    for m in order[1:]:
        rows.append(Comparison(
            name=f"leap 1, d={d}: time to half-learn {names[m]}, network vs mean-field limit",
            kind="prediction", predicted=float(lim_half[m]), measured=float(net_half[m]),
            tolerance=tol, relative=True, unit="gradient-flow time", reference=REF_LIMIT,
            tolerance_source=(
                "derived: the networks start from overlaps ~ d^(-1/2) on the support, the limit "
                f"from zero; that shifts a step's time by a relative O(d^(-1/2)); allowed "
                f"2 d^(-1/2) = {tol:.3f}"
            ),
            note="the first monomial (linear, learned in ~1 time unit) is not compared",
        ))  # fmt: skip
    half = {
        n: {"network": float(a), "limit": float(b)}
        for n, a, b in zip(names, net_half, lim_half, strict=True)
    }
    return rows, half
