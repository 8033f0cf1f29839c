"""The figures of developmental-stages: the LLC curve with its boundaries, the markers beside it."""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.experiments.developmental_stages.analysis import ALIGNED, Analysis, marker_series
from piami.experiments.developmental_stages.config import Config
from piami.experiments.developmental_stages.measure import StageMeasurements
from piami.lab import FigureSpec

__all__ = ["figures", "plot_llc", "plot_markers"]

COLORS = {"text": "C0", "shuffled": "C1"}
LABELS = {"text": "text", "shuffled": "shuffled text (control)"}


def _boundaries(ax: Any, a: Analysis, tol: float, *, label: bool) -> None:
    for i, b in enumerate(a.boundary_steps()):
        ax.axvline(
            b, color="0.35", lw=0.9, ls="--", label="LLC boundary" if label and not i else None
        )
        ax.axvspan(b / 10**tol, b * 10**tol, color="0.9", zorder=0)


def plot_llc(cfg: Config, m: StageMeasurements, an: dict[str, Analysis]) -> Any:
    """The LLC at each checkpoint (bars: 1.96 standard errors over chains; open: not identified),
    its smoothed curve, and the text model's critical points with their tolerance bands."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    tol = cfg.tolerance()
    _boundaries(ax, an["text"], tol, label=True)
    for name, a in an.items():
        c, pos = COLORS[name], a.steps > 0
        for conv, face in ((True, c), (False, "none")):
            sel = pos & (a.identified == conv)
            if sel.any():
                ax.errorbar(
                    a.steps[sel],
                    a.llc[sel],
                    yerr=1.96 * a.llc_se[sel],
                    fmt="o",
                    ms=4,
                    mfc=face,
                    color=c,
                    capsize=2,
                    label=LABELS[name] + ("" if conv else " (not identified)"),
                )
        if a.cp is not None:
            ax.plot(a.cp.grid_steps, a.cp.level, color=c, lw=1.2, alpha=0.8)
    for b, k in zip(
        an["text"].boundary_steps(), an["text"].cp.kinds if an["text"].cp else (), strict=False
    ):
        ax.annotate(
            k,
            (b, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
            ha="right",
        )
    ax.set(xscale="log", xlabel="training step", ylabel="LLC λ̂")
    ax.legend(fontsize=7, loc="best")
    return fig


def plot_markers(cfg: Config, m: StageMeasurements, an: dict[str, Analysis]) -> Any:
    """The markers over training on the LLC figure's axis, with the LLC boundaries, each marker's
    critical points (triangles) and its formation midpoint (cross)."""
    import matplotlib.pyplot as plt

    panels = [
        ("held_out_loss", "held-out loss (nats)", None),
        ("bigram_share", "bigram share", "bigram"),
        ("prev_token_attention", "prev.-token attention", "previous_token"),
        ("induction_score", "induction score (nats)", "induction"),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 8), sharex=True)
    tol = cfg.tolerance()
    for ax, (key, ylabel, aligned) in zip(axes, panels, strict=True):
        _boundaries(ax, an["text"], tol, label=ax is axes[0])
        for name, run in m.runs.items():
            s = marker_series(run["rows"], m.reference)
            pos = s["step"] > 0
            ls = "-" if name == "text" else ":"
            ax.plot(
                s["step"][pos], s[key][pos], ls, marker=".", color=COLORS[name], label=LABELS[name]
            )
            ev = an[name].events.get(aligned) if aligned else None
            if ev is not None and ev.steps.size:
                y = np.interp(np.log10(ev.steps), np.log10(s["step"][pos]), s[key][pos])
                lab = "marker critical point" if name == "text" else None
                ax.plot(ev.steps, y, "v", color="C3", ms=8, label=lab)
            mid = an[name].midpoints.get(aligned) if aligned else None
            if mid is not None and name == "text":
                y = np.interp(np.log10(mid), np.log10(s["step"][pos]), s[key][pos])
                ax.plot([mid], [y], "x", color="0.3", ms=6, label="formation midpoint")
        if key == "held_out_loss":
            for ref, lsr in (("unigram", ":"), ("bigram", "-.")):
                ax.axhline(m.reference[ref], color="0.4", ls=lsr, lw=0.8, label=f"{ref} model")
        if aligned:
            spec = ALIGNED[aligned]
            if spec.level is not None:
                ax.axhline(spec.level, color="C3", lw=0.6, ls=":")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=6, loc="best")
    axes[-1].set(xscale="log", xlabel="training step")
    return fig


def figures(cfg: Config, m: StageMeasurements) -> list[FigureSpec]:
    """The LLC curve and the markers, on the same log-step axis."""
    from piami.experiments.developmental_stages.compare import analyses

    an = analyses(cfg, m)
    return [
        FigureSpec(
            name="llc_curve",
            figure=plot_llc(cfg, m, an),
            caption=(
                f"LLC along training ({cfg.llc_chains} chains per checkpoint; bars: 95% over "
                f"chains; open: not identified), its local linear smoothing (bandwidth "
                f"{cfg.smoothing:g} decades), and the text model's critical points (dashed) with "
                f"the ±{cfg.tolerance():.2f}-decade tolerance (grey)"
            ),
        ),
        FigureSpec(
            name="markers",
            figure=plot_markers(cfg, m, an),
            caption=(
                "Independent markers at the same checkpoints: held-out loss (with the empirical "
                "unigram and bigram models), bigram share, previous-token attention, induction "
                "score; dashed: the text model's LLC boundaries; triangles: the markers' critical "
                "points; crosses: their formation midpoints"
            ),
        ),
    ]
