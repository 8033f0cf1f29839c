"""The staircase experiment's figures: loss curves, escape scaling, and leap 1's monomials."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from piami.experiments.staircase.config import ESCAPE_SHARE, Config, added_exponent
from piami.experiments.staircase.measure import LeapCurves, StaircaseMeasurements
from piami.experiments.staircase.readouts import fitted_exponent
from piami.lab import FigureSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _loss_panel(ax: Axes, leap: int, d: int, c: LeapCurves) -> None:
    for loss in c.losses:
        ax.plot(c.t, loss, lw=1, alpha=0.8)
    ax.plot(
        c.limit.times,
        c.limit.loss_on(c.test_freq),
        "k--",
        lw=1.2,
        label="mean-field limit (same test set)",
    )
    for lv in c.target.plateau_losses():
        ax.axhline(lv, color="gray", ls=":", lw=0.8)
    ax.legend(fontsize=7)
    ax.set(
        xlabel="gradient-flow time t = lr * samples",
        ylabel="test MSE",
        title=f"leap {leap}, d = {d}",
    )


def _escape_points(ax: Axes, leap: int, dims: np.ndarray, times: np.ndarray) -> None:
    ok = np.isfinite(times).all(axis=1)
    if not ok.any():  # no replica escaped at any d: nothing to draw on a log scale
        return
    slope = fitted_exponent(dims, times)[0]
    med = np.exp(np.log(times[ok]).mean(axis=1))
    (line,) = ax.plot(dims[ok], med, "o", label=f"leap {leap} (slope {slope:.2f})")
    ref = med[0] * (dims[ok] / dims[ok][0]) ** added_exponent(leap)
    ax.plot(dims[ok], ref, ":", color=line.get_color(), lw=1)


def _monomial_figure(leap1: LeapCurves, d: int) -> FigureSpec:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    med = np.median(leap1.mono, axis=0)
    for m, s in enumerate(leap1.target.supports):
        name = "x" + "x".join(str(i + 1) for i in s)
        (ln,) = ax.plot(leap1.t, med[:, m], lw=1.5, label=f"{name} network")
        ax.plot(
            leap1.limit.times,
            leap1.limit.coefficients[:, m],
            "--",
            color=ln.get_color(),
            lw=1,
            label=f"{name} limit",
        )
    ax.set(
        xlabel="gradient-flow time t = lr * samples",
        ylabel="Fourier coefficient of f",
        title=f"leap 1, d = {d}",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    caption = (
        "Leap 1: the network's Fourier coefficients on x1, x1x2, x1x2x3 (median replica) and "
        "the mean-field limit's (dashed). The steps overlap: x1x2 starts while x1 is learned."
    )
    return FigureSpec(name="leap1_monomials", figure=fig, caption=caption)


def figures(cfg: Config, m: StaircaseMeasurements) -> list[FigureSpec]:
    """Loss curves at the largest ``d`` per leap, escape time against ``d``, leap 1's monomials."""
    import matplotlib.pyplot as plt

    runs = {leap: run for leap, run in m.leaps.items() if run.curves is not None}
    fig_c, axes_c = plt.subplots(1, len(runs), figsize=(4.4 * len(runs), 3.5), squeeze=False)
    fig_s, ax_s = plt.subplots(figsize=(5.2, 3.8))
    for ax, (leap, run) in zip(axes_c[0], runs.items(), strict=True):
        _loss_panel(ax, leap, run.d, run.curves)
        _escape_points(ax_s, leap, m.dims, run.times)
    ax_s.set(
        xscale="log",
        yscale="log",
        xlabel="d",
        ylabel="escape time t = lr * samples",
        title="dotted: exponent the theory adds (0, 0, 1/2)",
    )
    if ax_s.lines:
        ax_s.legend(fontsize=8)
    fig_c.tight_layout()
    specs = [
        FigureSpec(
            name="loss_curves",
            figure=fig_c,
            caption="Test loss of every replica at the largest d; dotted: the leap picture's "
            "plateaus; dashed: the mean-field limit from zero overlap (it never leaves a "
            "leap >= 2 saddle).",
        ),
        FigureSpec(
            name="escape_scaling",
            figure=fig_s,
            caption=f"Escape time (loss below {ESCAPE_SHARE:g} of the last plateau; geometric "
            "mean over replicas) against d, in gradient-flow time: the step size's own exponent "
            "is removed.",
        ),
    ]
    if 1 in runs:
        specs.append(_monomial_figure(runs[1].curves, runs[1].d))
    return specs
