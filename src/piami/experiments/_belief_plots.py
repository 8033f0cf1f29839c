"""Figures of the belief-geometry experiment (matplotlib, Agg-safe)."""

from __future__ import annotations

from typing import Any

import numpy as np

_SQRT3_2 = np.sqrt(3.0) / 2.0


def simplex_coords(points: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """2-D coordinates of belief vectors: ternary plot for 3 states, else the given PCA basis.

    Args:
        points: ``(n, n_states)`` beliefs (or a probe's image of the residual stream).
        basis: ``None`` for 3 states; else ``(mean (n_states,), components (2, n_states))``.
    """
    if basis is None:
        return np.stack([points[:, 1] + points[:, 2] / 2.0, points[:, 2] * _SQRT3_2], axis=1)
    mean, comps = basis
    return (points - mean) @ comps.T


def pca_basis(exact: np.ndarray, n: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, top ``n`` principal directions and explained-variance fractions of ``exact``."""
    mean = exact.mean(axis=0)
    _, s, vt = np.linalg.svd(exact - mean, full_matrices=False)
    var = s**2 / max(np.sum(s**2), 1e-300)
    return mean, vt[:n], var[:n]


def belief_colors(
    exact: np.ndarray, pca: tuple[np.ndarray, np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """RGB colour of each point from its exact belief (3 states) or its top-3 PCA coordinates."""
    if pca is None:
        return np.clip(exact[:, :3], 0.0, 1.0)
    mean, comps, _ = pca
    z = (exact - mean) @ comps.T
    if z.shape[1] < 3:
        z = np.hstack([z, np.zeros((z.shape[0], 3 - z.shape[1]))])
    lo, hi = z.min(axis=0), z.max(axis=0)
    return np.clip((z - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)


def plot_simplex(
    exact: np.ndarray, images: dict[str, np.ndarray], r2: dict[str, float], process: str
) -> Any:
    """Exact belief set beside the probes' images of the residual stream, same colouring."""
    import matplotlib.pyplot as plt

    n_states = exact.shape[1]
    pca = None if n_states == 3 else pca_basis(exact)
    basis = None if pca is None else (pca[0], pca[1][:2])
    colors = belief_colors(exact, pca)
    panels = {"exact beliefs": exact, **images}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    ex2 = simplex_coords(exact, basis)
    pad = 0.08 * (ex2.max(axis=0) - ex2.min(axis=0) + 1e-9)
    lims = (ex2.min(axis=0) - pad, ex2.max(axis=0) + pad)
    for ax, (title, pts) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        xy = simplex_coords(pts, basis)
        ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=0.6, alpha=0.6, linewidths=0, rasterized=True)
        if pca is None:
            tri = np.array([[0, 0], [1, 0], [0.5, _SQRT3_2], [0, 0]])
            ax.plot(tri[:, 0], tri[:, 1], color="0.6", lw=0.8)
            ax.set_xlim(-0.05, 1.05)
            ax.set_ylim(-0.05, _SQRT3_2 + 0.05)
        else:
            ax.set_xlim(lims[0][0], lims[1][0])
            ax.set_ylim(lims[0][1], lims[1][1])
            ax.set_xlabel(f"PC1 ({pca[2][0]:.0%} of belief variance)")
            ax.set_ylabel(f"PC2 ({pca[2][1]:.0%})" if len(pca[2]) > 1 else "")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title + (f"\nR² = {r2[title]:.4f}" if title in r2 else ""), fontsize=10)
    fig.suptitle(f"{process}: belief simplex" + ("" if pca is None else " (PCA projection)"))
    fig.tight_layout()
    return fig


def plot_loss_by_position(loss: np.ndarray, optimal: np.ndarray, kl: np.ndarray) -> Any:
    """Held-out loss and KL(exact || model) at each context position."""
    import matplotlib.pyplot as plt

    pos = np.arange(len(loss))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(pos, optimal, "k--", marker="o", label="optimal: myopic entropy h(t+2)")
    a1.plot(pos, loss, marker="s", color="C0", label="trained network (held out)")
    a1.set_xlabel("context position t")
    a1.set_ylabel("cross-entropy (nats)")
    a1.legend(fontsize=8)
    a2.semilogy(pos, np.maximum(kl, 1e-8), marker="o", color="C3")
    a2.set_xlabel("context position t")
    a2.set_ylabel("KL(exact ‖ model) (nats)")
    fig.tight_layout()
    return fig


def plot_loss_curve(hist: Any, optimal_mean: float) -> Any:
    """Training loss against tokens with the optimal-loss floor, and the held-out gap (log)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    tokens = np.asarray(hist.tokens_seen, dtype=float)
    loss = np.asarray(hist.loss)
    w = max(1, len(loss) // 100)
    smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
    a1.plot(tokens, loss, color="C0", alpha=0.25, lw=0.6)
    a1.plot(tokens[w - 1 :], smooth, color="C0", label="training loss")
    a1.axhline(optimal_mean, color="k", ls="--", label=f"optimal floor {optimal_mean:.4f}")
    a1.set_xlabel("tokens seen")
    a1.set_ylabel("cross-entropy (nats)")
    a1.set_ylim(optimal_mean - 0.02, max(optimal_mean + 0.3, float(np.median(loss[:5])) + 0.02))
    a1.legend(fontsize=8)
    if hist.eval_loss:
        step_tokens = dict(zip(hist.step, hist.tokens_seen, strict=True))
        et = [step_tokens.get(s, 0) for s in hist.eval_step]
        gap = np.asarray(hist.eval_loss) - optimal_mean
        a2.loglog(np.maximum(et, 1), np.maximum(gap, 1e-5), marker=".", color="C3")
        a2.set_xlabel("tokens seen")
        a2.set_ylabel("held-out loss − optimal (nats)")
    fig.tight_layout()
    return fig


def plot_r2_by_layer(
    layers: list[str],
    curves: dict[str, list[float]],
    baselines: dict[str, float],
) -> Any:
    """R² of the linear probe at each layer (and all concatenated) beside the k-token baselines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(layers))
    styles = ["-o", "--o", "-s", "--s"]
    for (name, ys), st in zip(curves.items(), styles, strict=False):
        ax.plot(x, ys, st, label=name)
    for i, (name, v) in enumerate(baselines.items()):
        ax.axhline(v, color=f"{0.2 + 0.15 * i:.2f}", ls=":", lw=1)
        ax.text(len(layers) - 0.5, v, name, fontsize=7, va="bottom", ha="right")
    ax.set_xticks(x, layers)
    ax.set_ylabel("R² on held-out sequences")
    lows = [min(v) for v in curves.values()] + list(baselines.values())
    ax.set_ylim(max(min(lows) - 0.02, 0.0), 1.002)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


__all__ = [
    "belief_colors",
    "pca_basis",
    "plot_loss_by_position",
    "plot_loss_curve",
    "plot_r2_by_layer",
    "plot_simplex",
    "simplex_coords",
]
