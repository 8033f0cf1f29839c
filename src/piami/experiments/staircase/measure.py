"""The staircase measurements: networks trained at every ``d``, their limit, and what is read off.

For each leap, :func:`measure` trains ``n_replicas`` networks at every ``d``
(:func:`~piami.experiments.staircase.net.train`), times their escape from the last plateau, and at
the largest ``d`` integrates the networks' own high-dimensional mean-field limit
(:func:`piami.theory.mean_field.staircase_mean_field`: width and ``d`` to infinity, with the
online-SGD noise term) from zero overlap, with the same initial scales and step. The read-outs
(:mod:`~piami.experiments.staircase.readouts`) are what ``compare`` sets beside theory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from piami.experiments.staircase.config import (
    ESCAPE_SHARE,
    Config,
    added_exponent,
    lr_per_sample,
    schedule_exponent,
)
from piami.experiments.staircase.net import train
from piami.experiments.staircase.readouts import (
    HalfTimes,
    LimitGap,
    Plateau,
    escape_times,
    fitted_exponent,
    read_half_times,
    read_limit_gap,
    read_plateaus,
    support_frequencies,
)
from piami.lab import Measurements
from piami.models import limit_threads
from piami.processes.tasks import StaircaseTarget
from piami.theory.mean_field import MeanFieldTrajectory, staircase_mean_field


@dataclass(kw_only=True)
class LeapCurves:
    """What the figures draw of one leap at the largest ``d``.

    Attributes:
        t: ``(n_evals,)`` gradient-flow time ``lr * samples``.
        losses: ``(R, n_evals)`` test losses of every replica.
        mono: ``(R, n_evals, n_mono)`` each replica's Fourier coefficient on each target monomial.
        limit: the mean-field limit; test_freq: the test set's support-point counts.
        target: the staircase target.
    """

    t: np.ndarray
    losses: np.ndarray
    mono: np.ndarray
    limit: MeanFieldTrajectory
    test_freq: np.ndarray
    target: StaircaseTarget


@dataclass(kw_only=True)
class LeapRun:
    """One leap's read-outs (what ``compare`` uses) and its curves (what the figures draw).

    Attributes:
        leap: the target's leap.
        d: the largest input dimension, where the curves and the limit are read.
        times: ``(n_d, R)`` escape times (gradient-flow time; NaN: never escaped).
        initial_loss: median replica's test loss before training, at ``d``.
        plateaus: the levels after a learned step (:class:`~.readouts.Plateau`).
        limit_gap, half: leap 1 only: the loss gap to the limit and the half-learning times.
        curves: for the figures (None in synthetic measurements).
    """

    leap: int
    d: int
    times: np.ndarray
    initial_loss: float
    plateaus: list[Plateau]
    limit_gap: LimitGap | None = None
    half: HalfTimes | None = None
    curves: LeapCurves | None = None


@dataclass(kw_only=True)
class StaircaseMeasurements(Measurements):
    """The sorted input dimensions ``(n_d,)`` and one :class:`LeapRun` per leap."""

    dims: np.ndarray
    leaps: dict[int, LeapRun] = field(default_factory=dict)


def _limit_for(
    target: StaircaseTarget, cfg: Config, leap: int, t_end: float
) -> MeanFieldTrajectory:
    """The network's high-dimensional mean-field limit (:mod:`piami.theory.mean_field`) at ``d``."""
    d, k = target.d, max(max(s) for s in target.supports) + 1
    lr = lr_per_sample(cfg.lr0, leap, d)
    return staircase_mean_field(
        target.supports,
        target.coefficients,
        t_max=t_end,
        rng=np.random.default_rng([cfg.seed, leap, d]),
        n_particles=cfg.mf_particles,
        a_scale=cfg.init_a_scale,
        b_scale=1.0,
        rho0=cfg.init_w_scale * math.sqrt((d - k) / d),
        noise=lr * (d - k),
        dt=cfg.mf_dt,
    )


def _leap1_metrics(gap: LimitGap, half: HalfTimes) -> dict[str, Any]:
    dev = gap.gap
    return {
        "d": gap.d,
        "max_abs_loss_gap": float(dev.max()),
        "t_of_max_gap": float(gap.t[dev.argmax()]),
        "mean_abs_loss_gap": float(dev.mean()),
        "limit_min_tail_norm": gap.min_tail,
        "gap_tolerance": gap.tolerance()[0],
        "untrained_max_gap": float(gap.untrained_gap.max()),
        "half_times": {
            n: {"network": float(a), "limit": float(b)}
            for n, a, b in zip(half.names, half.network, half.limit, strict=True)
        },
    }


def _leap_metrics(run: LeapRun, dims: np.ndarray, limit: MeanFieldTrajectory) -> dict[str, Any]:
    leap, schedule = run.leap, schedule_exponent(run.leap)
    out: dict[str, Any] = {
        f"leap{leap}_escape": {
            "times": {str(int(d)): r.tolist() for d, r in zip(dims, run.times, strict=True)},
            "schedule_exponent": schedule,
            "sample_exponent": fitted_exponent(dims, run.times)[0] + schedule,
            "predicted_sample_exponent": added_exponent(leap) + schedule,
        },
        f"leap{leap}_limit_flattest": {str(p.k): p.limit for p in run.plateaus},
        f"leap{leap}_limit_final_loss": float(limit.loss[-1]),
        f"leap{leap}_initial_loss": run.initial_loss,
    }
    if run.limit_gap is not None and run.half is not None:
        out["leap1_limit"] = _leap1_metrics(run.limit_gap, run.half)
    return out


def _measure_leap(
    cfg: Config,
    leap: int,
    dims: np.ndarray,
    rng: np.random.Generator,
    gen: torch.Generator,
    progress: bool,
) -> tuple[LeapRun, dict[str, Any]]:
    """Train every ``d`` of one leap; read its escape times, and its curves at the largest ``d``."""
    times = []
    for d in dims.astype(int):  # sorted: the largest d comes last, and its curves are kept
        target = StaircaseTarget.standard(leap=leap, d=int(d))
        samples, losses, mono, x_test = train(
            target, cfg, leap=leap, rng=rng, generator=gen, progress=progress
        )
        lr = lr_per_sample(cfg.lr0, leap, int(d))
        times.append(escape_times(samples, losses, ESCAPE_SHARE * target.plateau_losses()[-2], lr))
    d_big, t = int(dims[-1]), samples * lr
    limit = _limit_for(target, cfg, leap, float(t[-1]))
    test_freq = support_frequencies(x_test, limit.points.shape[1])
    run = LeapRun(
        leap=leap,
        d=d_big,
        times=np.stack(times),
        initial_loss=float(np.median(losses[:, 0])),
        plateaus=read_plateaus(cfg, leap, t, losses, limit, test_freq, d_big),
        curves=LeapCurves(
            t=t, losses=losses, mono=mono, limit=limit, test_freq=test_freq, target=target
        ),
    )
    if leap == 1:
        run.limit_gap = read_limit_gap(cfg, t, losses, limit, test_freq, d_big)
        run.half = read_half_times(target, t, mono, limit, test_freq)
    return run, _leap_metrics(run, dims, limit)


def measure(cfg: Config, *, progress: bool = True) -> StaircaseMeasurements:
    """Train the networks of every leap and ``d``, integrate their limit, read both."""
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    dims = np.array(sorted(set(cfg.dims)), dtype=np.float64)
    m = StaircaseMeasurements(dims=dims)
    with limit_threads(1):
        for leap in cfg.leaps:
            start = time.perf_counter()
            m.leaps[leap], metrics = _measure_leap(cfg, leap, dims, rng, gen, progress)
            m.metrics.update(metrics)
            m.timing[f"leap{leap}_s"] = time.perf_counter() - start
    return m
