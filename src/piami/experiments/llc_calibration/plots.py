"""The figures of llc-calibration: estimates against exact RLCTs, and the LLC along training."""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.experiments.llc_calibration.cases import FAMILIES


def plot_cases(rows: list[dict[str, Any]], tol: float) -> Any:
    """Mean LLC estimate over seeds (bars: their spread) against the exact RLCT, per family.

    Args:
        rows: per-case rows with ``truth``, ``mean_estimate``, ``std_estimate`` and ``family``.
        tol: the relative tolerance, drawn as a band around the diagonal.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    truth = np.array([c["truth"] for c in rows])
    est = np.array([c["mean_estimate"] for c in rows])
    err = np.nan_to_num(np.array([c["std_estimate"] for c in rows]))
    grid = np.geomspace(truth.min() * 0.7, truth.max() * 1.4, 50)
    ax.fill_between(grid, grid * (1 - tol), grid * (1 + tol), color="0.88", label=f"±{tol:.0%}")
    ax.plot(grid, grid, "k-", lw=0.8)
    for fam, mk in zip(FAMILIES, ("s", "^", "o"), strict=True):
        sel = np.array([c["family"] == fam for c in rows])
        if sel.any():
            ax.errorbar(truth[sel], est[sel], yerr=err[sel], fmt=mk, ms=5, capsize=2, label=fam)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="exact RLCT λ",
        ylabel="LLC estimate λ̂ (mean over seeds)",
    )
    ax.legend()
    return fig


def plot_checkpoints(rows: list[dict[str, Any]], curve: dict[str, Any]) -> Any:
    """The training loss and the LLC at each checkpoint, on a shared log-step axis.

    Args:
        rows: per-checkpoint rows with ``step``, ``llc_mean`` and ``llc_std``.
        curve: the training curve (``step``, ``loss``, optional ``optimal_loss``).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = np.asarray(curve["step"], dtype=float)
    ax.plot(steps, curve["loss"], color="0.5", lw=0.8, label="training loss")
    if curve.get("optimal_loss") is not None:
        ax.axhline(curve["optimal_loss"], color="0.3", ls=":", lw=0.8, label="optimal loss")
    ax.set(xscale="log", xlabel="step", ylabel="loss (nats / token)")
    ax2 = ax.twinx()
    s = np.array([max(r["step"], 1) for r in rows], dtype=float)
    m = np.array([r["llc_mean"] for r in rows])
    e = np.array([r["llc_std"] for r in rows])
    ax2.errorbar(s, m, yerr=e, fmt="o-", color="C3", ms=4, capsize=2, label="LLC")
    ax2.set_ylabel("LLC λ̂ (step 0 drawn at 1)", color="C3")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="center right")
    return fig
