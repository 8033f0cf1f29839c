"""Figures of the power-law-curves experiment."""

from __future__ import annotations

import math

import numpy as np

from piami.experiments.power_law_curves.config import Config
from piami.experiments.power_law_curves.measure import CurveMeasurements
from piami.lab import FigureSpec
from piami.theory import asymptotic_exponent


def _points(ax: object, c: object, fmt: str, label: str) -> None:
    yerr = c.test.std(axis=1, ddof=1) / math.sqrt(c.test.shape[1])  # type: ignore[attr-defined]
    ax.errorbar(c.n, c.mean, yerr=yerr, fmt=fmt, capsize=2, label=label)  # type: ignore[attr-defined]


def figures(cfg: Config, m: CurveMeasurements) -> list[FigureSpec]:
    """Kernel curves against theory (with the asymptote), and the finite-feature trap."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    kernels = [c for c in m.curves if c.role == "kernel"]
    for i, c in enumerate(kernels):
        col = f"C{i}"
        alpha = asymptotic_exponent(c.a, c.b)
        ax.plot(c.n, c.theory, "-", color=col, lw=1)
        ax.plot(c.n, c.theory[0] * (c.n / c.n[0]) ** -alpha, ":", color=col, lw=1)
        _points(ax, c, "o", f"{c.name} (slope {c.slope:.2f}, -{alpha:g})")
    sh = next(c for c in m.curves if c.role == "shuffled")
    _points(ax, sh, "x", f"shuffled labels (slope {sh.slope:.2f})")
    ax.set(xscale="log", yscale="log", xlabel="n", ylabel="test MSE", title=f"M = {cfg.n_modes}")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # n spans a decade: minor labels collide
    ax.legend(fontsize=7)
    fig.tight_layout()
    kernel = FigureSpec(
        name="kernel_curves",
        figure=fig,
        caption="Simulated test MSE (mean ± s.e. over seeds) against the theory (lines) and its "
        "asymptote n^-min(b-1, 2a) (dotted).",
    )
    fig2, ax2 = plt.subplots(figsize=(5.5, 4))
    trap = next(c for c in m.curves if c.role == "trap")
    rf = next(c for c in m.curves if c.role == "rf")
    ax2.plot(rf.n, rf.control, "k-", lw=1, label=f"kernel theory, M = {cfg.n_modes}")
    ax2.plot(trap.n, trap.theory, "C1-", lw=1, label=f"theory, M = {trap.n_modes} modes")
    _points(ax2, trap, "s", f"linear model on {trap.n_modes} modes")
    ax2.plot(rf.n, rf.theory, "C2-", lw=1, label=f"random-feature theory, N = {cfg.n_features}")
    _points(ax2, rf, "o", f"{cfg.n_features} random features")
    ax2.axvline(cfg.n_features, color="grey", ls="--", lw=0.8)
    ax2.set(xscale="log", yscale="log", xlabel="n", ylabel="test MSE")
    ax2.set_ylim(bottom=max(float(np.min(rf.control)) / 3, 1e-8))
    ax2.legend(fontsize=7)
    fig2.tight_layout()
    trap_fig = FigureSpec(
        name="finite_feature_trap",
        figure=fig2,
        caption=f"a = {trap.a:g}, b = {trap.b:g}. With finitely many modes the curve steepens "
        "near M; with finitely many random features it peaks at n = N and plateaus at the part "
        "of the target the features miss; the infinite-M kernel curve follows neither.",
    )
    return [kernel, trap_fig]
