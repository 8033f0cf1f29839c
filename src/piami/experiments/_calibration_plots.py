"""Figures of the ``instrument-calibration`` experiment: one per instrument."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np


def plot_cka(d: dict[str, Any]):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k, v in d["curves"].items():
        ax.semilogx(d["noise"], v, marker="o", ms=3, label=k)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="noise std added to X", ylabel="CKA(X, X + noise)")
    ax.legend()
    return fig, (
        "CKA between X (300 x 16) and X plus isotropic noise. All three start at 1; at large noise the "
        "plug-in estimates level off at their finite-sample bias, the debiased one goes to 0."
    )


def plot_dimension(d: dict[str, Any]):
    rows = np.array(d["rows"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(rows[:, 0], rows[:, 0], "k--", lw=1, label="true d")
    ax.errorbar(rows[:, 0], rows[:, 1], yerr=[rows[:, 1] - rows[:, 2], rows[:, 3] - rows[:, 1]],
                fmt="o", label="TwoNN (MLE, 95%)")  # fmt: skip
    ax.plot(rows[:, 0], rows[:, 4], "s", mfc="none", label="TwoNN (line fit)")
    ax.plot(rows[:, 0], rows[:, 5], "^", mfc="none", label="Levina-Bickel k=20 (mean of draws)")
    ax.set(xlabel="dimension of the sphere S^d", ylabel="estimate")
    ax.legend()
    return fig, "Intrinsic-dimension estimates on uniform samples of spheres S^d beside the truth."


def plot_fractal(d: dict[str, Any]):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    P = d["points"]
    axes[0].scatter(P[:, 0], P[:, 1], s=0.2, c="k")
    axes[0].set(aspect="equal", title="Sierpinski belief set", xticks=[], yticks=[])
    for est, lab in ((d["box"], "box: log N vs log 1/eps"), (d["corr"], "corr: log C vs log r")):
        x, y = np.array(est.x), np.array(est.y)
        axes[1].plot(x - x[0], y - y[0], "o-", ms=3, label=f"{lab} (slope {est.dimension:.3f})")
    xs = np.linspace(0, max(abs(np.array(d["box"].x) - d["box"].x[0]).max(), 1), 2)
    axes[1].plot(xs, d["true"] * xs, "k--", lw=1, label=f"log3/log2 = {d['true']:.3f}")
    axes[1].plot(-xs, -d["true"] * xs, "k--", lw=1)
    axes[1].set(xlabel="log scale (shifted)", ylabel="log count (shifted)")
    axes[1].legend(fontsize=7)
    return fig, (
        "Left: the belief set of an HMM whose update maps are the chaos game. Right: the box-counting "
        "and correlation fits, against the exact slope log 3 / log 2."
    )


def plot_weights(d: dict[str, Any]):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    traj = d["traj"]
    for i in range(traj.shape[1]):
        axes[0].plot(np.arange(len(traj)) * 30, traj[:, i], label=f"mode {i}")
        axes[0].axhline(d["S"][i], color="k", ls=":", lw=0.8)
    axes[0].set(
        xlabel="GD step", ylabel="singular value of W2 W1", title="deep linear: teacher modes"
    )
    axes[0].legend(fontsize=7)
    vals = d["vals"][:, :4]
    im = axes[1].imshow(vals, cmap="coolwarm", vmin=-1.1, vmax=1.1)
    axes[1].set(
        xlabel="eigenvalue rank (by |value|)", ylabel="output", title="bilinear eigenvalues"
    )
    fig.colorbar(im, ax=axes[1])
    return fig, (
        "Left: singular values of a deep linear network learning a teacher (dotted: the teacher's), "
        "the strongest first. Right: top eigenvalues of each output's interaction matrix; the planted "
        "values are 1.0 and -0.5 per output."
    )


def plot_sae(d: dict[str, Any]):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind, best in d["best"].items():
        ax.plot(np.sort(best)[::-1], label=kind if "SAE" in kind else f"{kind} SAE")
    ax.axhline(0.9, color="k", ls="--", lw=0.8)
    ax.set(xlabel="known feature (sorted)", ylabel="best |cos| with a decoder row", ylim=(0, 1.02))
    ax.legend()
    return fig, (
        "For each known feature, its best cosine with any SAE decoder row (dashed: 0.9); the SAE "
        "trained on Gaussian noise of the same covariance is the null."
    )


def plot_natural_latents(d: dict[str, Any]):
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(d["rhs"], d["lhs"], s=6)
    m = max(float(np.max(d["rhs"])), 1e-3)
    ax.plot([0, m], [0, m], "k--", lw=1)
    ax.set(xlabel="eps_med(L) + 2 eps_red(L') [nats]", ylabel="H(L' | L) [nats]")
    return fig, (
        "The uniqueness bound on random tables: H(L' | L) against eps_med + 2 eps_red; the bound holds "
        "where a point lies on or below the diagonal."
    )


def plot_beliefs(pts: dict[str, dict[str, np.ndarray]]):
    n = len(pts)
    panels = (
        ("theory", "long-run beliefs (simplex)"),
        ("exact", "exact beliefs, held-out contexts"),
        ("trained", "trained residual stream (PC 1-2)"),
        ("untrained", "untrained residual stream (PC 1-2)"),
    )
    fig, axes = plt.subplots(n, len(panels), figsize=(13, 3.3 * n), squeeze=False)
    for row, (tag, p) in enumerate(pts.items()):
        for col, (key, title) in enumerate(panels):
            ax = axes[row, col]
            P = p[key]
            ax.scatter(P[:, 0], P[:, 1], s=0.2, c="k", alpha=0.5)
            ax.set(aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"{tag}\n{title}", fontsize=9)
    return fig, (
        "Belief sets and residual streams: the long-run belief measure and the exact beliefs after the "
        "held-out contexts (simplex plane), and the final residual stream at the last position of the "
        "trained and the untrained network, shown on its top two principal components. The dimensions "
        "are measured on the full residual vectors, with no probe; the projection is only a picture."
    )


PLOTTERS = {
    "cka": plot_cka,
    "dimension": plot_dimension,
    "fractal": plot_fractal,
    "weights": plot_weights,
    "sae": plot_sae,
    "natural_latents": plot_natural_latents,
}
