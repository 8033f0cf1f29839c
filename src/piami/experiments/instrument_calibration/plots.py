"""Figures of the ``instrument-calibration`` experiment: one per instrument."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np

from piami.experiments.instrument_calibration.beliefs import BeliefMeasured
from piami.experiments.instrument_calibration.fractal import FractalMeasured
from piami.experiments.instrument_calibration.ground_truth import CkaMeasured, DimensionMeasured
from piami.experiments.instrument_calibration.natural_latents import NaturalLatentsMeasured
from piami.experiments.instrument_calibration.sae import SaeMeasured
from piami.experiments.instrument_calibration.weights import WeightsMeasured
from piami.lab import FigureSpec


def plot_cka(m: CkaMeasured) -> FigureSpec:
    """CKA of X and X plus noise, for the three estimators."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k, v in m.curves.items():
        ax.semilogx(m.noise, v, marker="o", ms=3, label=k)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="noise std added to X", ylabel="CKA(X, X + noise)")
    ax.legend()
    caption = (
        "CKA between X (300 x 16) and X plus isotropic noise. All three start at 1; at large "
        "noise the plug-in estimates level off at their finite-sample bias, the debiased one goes "
        "to 0."
    )
    return FigureSpec(name="cka", figure=fig, caption=caption)


def plot_dimension(m: DimensionMeasured) -> FigureSpec:
    """TwoNN (with its interval and line fit) and Levina-Bickel on spheres beside the truth."""
    rows = np.array(m.rows)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(rows[:, 0], rows[:, 0], "k--", lw=1, label="true d")
    yerr = [rows[:, 1] - rows[:, 2], rows[:, 3] - rows[:, 1]]
    ax.errorbar(rows[:, 0], rows[:, 1], yerr=yerr, fmt="o", label="TwoNN (MLE, 95%)")
    ax.plot(rows[:, 0], rows[:, 4], "s", mfc="none", label="TwoNN (line fit)")
    ax.plot(rows[:, 0], rows[:, 5], "^", mfc="none", label="Levina-Bickel k=20 (mean of draws)")
    ax.set(xlabel="dimension of the sphere S^d", ylabel="estimate")
    ax.legend()
    caption = "Intrinsic-dimension estimates on uniform samples of spheres S^d beside the truth."
    return FigureSpec(name="dimension", figure=fig, caption=caption)


def plot_fractal(m: FractalMeasured) -> FigureSpec:
    """The Sierpinski belief set, and its box-counting and correlation fits."""
    true = float(np.log(3) / np.log(2))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    P = m.points
    axes[0].scatter(P[:, 0], P[:, 1], s=0.2, c="k")
    axes[0].set(aspect="equal", title="Sierpinski belief set", xticks=[], yticks=[])
    for est, lab in ((m.box, "box: log N vs log 1/eps"), (m.corr, "corr: log C vs log r")):
        x, y = np.array(est.x), np.array(est.y)
        axes[1].plot(x - x[0], y - y[0], "o-", ms=3, label=f"{lab} (slope {est.dimension:.3f})")
    xs = np.linspace(0, max(abs(np.array(m.box.x) - m.box.x[0]).max(), 1), 2)
    axes[1].plot(xs, true * xs, "k--", lw=1, label=f"log3/log2 = {true:.3f}")
    axes[1].plot(-xs, -true * xs, "k--", lw=1)
    axes[1].set(xlabel="log scale (shifted)", ylabel="log count (shifted)")
    axes[1].legend(fontsize=7)
    caption = (
        "Left: the belief set of an HMM whose update maps are the chaos game. Right: the "
        "box-counting and correlation fits, against the exact slope log 3 / log 2."
    )
    return FigureSpec(name="fractal", figure=fig, caption=caption)


def plot_weights(m: WeightsMeasured) -> FigureSpec:
    """Deep-linear singular values over training; bilinear eigenvalues per output."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    traj = m.traj
    for i in range(traj.shape[1]):
        axes[0].plot(np.arange(len(traj)) * 30, traj[:, i], label=f"mode {i}")
        axes[0].axhline(m.S[i], color="k", ls=":", lw=0.8)
    axes[0].set(
        xlabel="GD step", ylabel="singular value of W2 W1", title="deep linear: teacher modes"
    )
    axes[0].legend(fontsize=7)
    vals = m.vals[:, :4]
    im = axes[1].imshow(vals, cmap="coolwarm", vmin=-1.1, vmax=1.1)
    axes[1].set(
        xlabel="eigenvalue rank (by |value|)", ylabel="output", title="bilinear eigenvalues"
    )
    fig.colorbar(im, ax=axes[1])
    caption = (
        "Left: singular values of a deep linear network learning a teacher (dotted: the "
        "teacher's), the strongest first. Right: top eigenvalues of each output's interaction "
        "matrix; the planted values are 1.0 and -0.5 per output."
    )
    return FigureSpec(name="weights", figure=fig, caption=caption)


def plot_sae(m: SaeMeasured) -> FigureSpec:
    """Each planted feature's best cosine with a decoder row, per SAE and for the null."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind, best in m.best.items():
        ax.plot(np.sort(best)[::-1], label=kind if "SAE" in kind else f"{kind} SAE")
    ax.axhline(0.9, color="k", ls="--", lw=0.8)
    ax.set(xlabel="known feature (sorted)", ylabel="best |cos| with a decoder row", ylim=(0, 1.02))
    ax.legend()
    caption = (
        "For each known feature, its best cosine with any SAE decoder row (dashed: 0.9); the SAE "
        "trained on Gaussian noise of the same covariance is the null."
    )
    return FigureSpec(name="sae", figure=fig, caption=caption)


def plot_natural_latents(m: NaturalLatentsMeasured) -> FigureSpec:
    """The uniqueness bound on random tables: both sides, one point per table."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(m.rhs, m.lhs, s=6)
    top = max(float(np.max(m.rhs)), 1e-3)
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(xlabel="eps_med(L) + 2 eps_red(L') [nats]", ylabel="H(L' | L) [nats]")
    caption = (
        "The uniqueness bound on random tables: H(L' | L) against eps_med + 2 eps_red; the bound "
        "holds where a point lies on or below the diagonal."
    )
    return FigureSpec(name="natural_latents", figure=fig, caption=caption)


def plot_beliefs(settings: list[BeliefMeasured]) -> FigureSpec:
    """Belief sets and residual streams of every Mess3 setting, one row each."""
    n = len(settings)
    panels = (
        ("theory", "long-run beliefs (simplex)"),
        ("exact", "exact beliefs, held-out contexts"),
        ("trained", "trained residual stream (PC 1-2)"),
        ("untrained", "untrained residual stream (PC 1-2)"),
    )
    fig, axes = plt.subplots(n, len(panels), figsize=(13, 3.3 * n), squeeze=False)
    for row, m in enumerate(settings):
        for col, (key, title) in enumerate(panels):
            ax = axes[row, col]
            P = m.points[key]
            ax.scatter(P[:, 0], P[:, 1], s=0.2, c="k", alpha=0.5)
            ax.set(aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"{m.tag}\n{title}", fontsize=9)
    caption = (
        "Belief sets and residual streams: the long-run belief measure and the exact beliefs "
        "after the held-out contexts (simplex plane), and the final residual stream at the last "
        "position of the trained and the untrained network, shown on its top two principal "
        "components. The dimensions are measured on the full residual vectors, with no probe; the "
        "projection is only a picture."
    )
    return FigureSpec(name="belief_dimensions", figure=fig, caption=caption)
