"""Figures of the belief-geometry experiment (matplotlib, Agg-safe)."""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.experiments.belief_geometry.config import Config
from piami.experiments.belief_geometry.measure import BeliefMeasurements
from piami.lab import FigureSpec

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
    few = len(np.unique(np.round(exact, 9), axis=0)) < 300  # a finite belief set: larger dots
    size = 12.0 if few else 1.5
    panels = {"exact beliefs": exact, **images}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    ex2 = simplex_coords(exact, basis)
    pad = 0.08 * (ex2.max(axis=0) - ex2.min(axis=0) + 1e-9)
    lims = (ex2.min(axis=0) - pad, ex2.max(axis=0) + pad)
    for ax, (title, pts) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        xy = simplex_coords(pts, basis)
        ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=size, alpha=0.6, linewidths=0, rasterized=True)
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
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_loss_by_position(losses: dict[str, np.ndarray], *, stated: bool = False) -> Any:
    """Held-out loss and KL(exact || model) at each context position (``stated``: data mode, the
    exact side is a stated machine's, and ``losses["stated"]`` is its loss on the data)."""
    import matplotlib.pyplot as plt

    pos = np.arange(len(losses["optimal"]))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    who = "stated machine's " if stated else ""
    a1.plot(pos, losses["optimal"], "k--", marker="o", label=f"{who}optimal: myopic entropy h(t+2)")
    a1.plot(
        pos,
        losses["expected"],
        marker="s",
        color="C0",
        label="network, expected over the next token"
        + (" under the stated machine" if stated else ""),
    )
    if stated:
        a1.plot(pos, losses["stated"], marker="^", color="C2", label="stated machine, data")
    a1.plot(
        pos,
        losses["sampled"],
        ls="none",
        marker="x",
        color="C0",
        alpha=0.5,
        label="network, " + ("data's next token" if stated else "sampled next token"),
    )
    a1.set_xlabel("context position t")
    a1.set_ylabel("cross-entropy (nats)")
    a1.legend(fontsize=7 if stated else 8)
    a2.semilogy(pos, np.maximum(losses["kl"], 1e-8), marker="o", color="C3")
    a2.set_xlabel("context position t")
    a2.set_ylabel("KL(stated machine ‖ model) (nats)" if stated else "KL(exact ‖ model) (nats)")
    fig.tight_layout()
    return fig


def plot_loss_curve(hist: Any, optimal_mean: float, *, stated: bool = False) -> Any:
    """Training loss against tokens with the optimal-loss floor, and the held-out gap (log;
    ``stated``: data mode, the gap to a stated machine, which may be negative: linear axis)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    tokens = np.asarray(hist.tokens_seen, dtype=float)
    loss = np.asarray(hist.loss)
    w = max(1, len(loss) // 100)
    smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
    a1.plot(tokens, loss, color="C0", alpha=0.25, lw=0.6)
    a1.plot(tokens[w - 1 :], smooth, color="C0", label="training loss")
    floor = "stated machine's optimal loss" if stated else "optimal floor"
    a1.axhline(optimal_mean, color="k", ls="--", label=f"{floor} {optimal_mean:.4f}")
    a1.set_xlabel("tokens seen")
    a1.set_ylabel("cross-entropy (nats)")
    low = min(optimal_mean, float(np.min(smooth))) if stated else optimal_mean  # may beat it
    a1.set_ylim(low - 0.02, max(optimal_mean + 0.3, float(np.median(loss[:5])) + 0.02))
    a1.legend(fontsize=8)
    if hist.eval_loss:
        step_tokens = dict(zip(hist.step, hist.tokens_seen, strict=True))
        gaps = hist.eval_gap if hist.eval_gap is not None else hist.eval_loss
        pairs = [
            (step_tokens[s], g)
            for s, g in zip(hist.eval_step, gaps, strict=True)
            if s in step_tokens
        ]
        if pairs and stated:
            et, eg = np.asarray(pairs).T
            a2.semilogx(et, eg, marker=".", color="C3")
            a2.axhline(0.0, color="k", lw=0.6)
        elif pairs:
            et, eg = np.asarray(pairs).T
            a2.loglog(et, np.maximum(eg, 1e-5), marker=".", color="C3")
        a2.set_xlabel("tokens seen")
        a2.set_ylabel(
            "held-out loss − stated machine's loss (nats)"
            if stated
            else "held-out loss − exact predictor's loss (nats)"
        )
    fig.tight_layout()
    return fig


def plot_r2_by_layer(
    layers: list[str],
    curves: dict[str, list[float]],
    baselines: dict[str, float],
    bar: float | None = None,
) -> Any:
    """1 - R² of the linear probe at each layer (and all concatenated), log scale, beside the
    k-token baselines and the final layer's bar (``bar`` = the allowed 1 - R²)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(layers))
    styles = [("-", "o", 2.5), ("-", "o", 1.2), ("--", "s", 1.2), (":", "s", 1.2)]
    for (name, ys), (ls, mk, lw) in zip(curves.items(), styles, strict=False):
        ax.semilogy(x, np.maximum(1 - np.asarray(ys), 1e-6), ls=ls, marker=mk, lw=lw, label=name)
    for i, (name, v) in enumerate(baselines.items()):
        ax.axhline(max(1 - v, 1e-6), color=f"{0.1 + 0.12 * i:.2f}", ls=":", lw=1)
        ax.text(len(layers) - 0.5, max(1 - v, 1e-6), name, fontsize=7, va="bottom", ha="right")
    if bar is not None and bar > 0:
        ax.axhline(bar, color="C3", ls="--", lw=1)
        ax.text(0.1, bar, "bar for the final layer", color="C3", fontsize=7, va="bottom")
    ax.set_xticks(x, layers)
    ax.set_ylabel("1 − R² on held-out sequences (log)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def figures(cfg: Config, m: BeliefMeasurements) -> list[FigureSpec]:
    """The experiment's four figures, with captions: the belief simplex beside the probes' images,
    loss by position, the training curve and 1 − R² by layer."""
    return [_simplex_figure(cfg, m), *_loss_figures(m), _r2_figure(cfg, m)]


def _stated_caption(m: BeliefMeasurements) -> str:
    if not m.data:
        return ""
    return (
        f" Data mode: the network was trained on {m.data['source']}; beliefs, next-token "
        f"distributions and optimal loss are those of the stated machine {m.process}, not of a "
        "known truth."
    )


def _simplex_figure(cfg: Config, m: BeliefMeasurements) -> FigureSpec:
    final = f"final layer (L{cfg.n_layers - 1}) probe"
    titles = {"final": final, "concat": "all layers concatenated"}
    r2 = m.r2["beliefs_trained"]
    fig = plot_simplex(
        m.beliefs,
        {titles[k]: v for k, v in m.images.items()},
        {final: r2[f"L{cfg.n_layers - 1}"], titles["concat"]: r2["concat"]},
        m.process,
    )
    pca = "" if m.beliefs.shape[1] == 3 else "; projected on the top two principal components"
    return FigureSpec(
        name="belief_simplex",
        figure=fig,
        caption="Exact beliefs after each held-out prefix (left) and "
        "the linear probes' images of the residual stream, each point coloured by "
        f"its exact belief{pca}." + _stated_caption(m),
    )


def _loss_figures(m: BeliefMeasurements) -> list[FigureSpec]:
    losses = {"sampled": m.sampled, "expected": m.expected, "optimal": m.optimal}
    losses["kl"] = m.kl_trained.mean(axis=0)
    stated = bool(m.data)
    if stated:
        losses["stated"] = m.stated_sampled
    return [
        FigureSpec(
            name="loss_by_position",
            figure=plot_loss_by_position(losses, stated=stated),
            caption="Held-out cross-entropy per position beside the exact optimal loss (myopic "
            "entropy; Crutchfield & Feldman 2003), and the KL divergence from the exact "
            "next-token distribution to the network's." + _stated_caption(m),
        ),
        FigureSpec(
            name="loss_curve",
            figure=plot_loss_curve(m.history, float(np.mean(m.optimal)), stated=stated),
            caption="Training loss with the optimal-loss floor (myopic entropy averaged over "
            "positions); right: held-out loss minus the exact predictor's loss on the same "
            "sequences, log axes." + _stated_caption(m),
        ),
    ]


def _r2_figure(cfg: Config, m: BeliefMeasurements) -> FigureSpec:
    curves = {
        f"{t}, {s}": list(m.r2[f"{k}_{s}"].values())
        for k, t in (("beliefs", "beliefs"), ("next_token", "next-token probs"))
        for s in ("trained", "untrained")
    }
    baselines = m.r2_onehot | {"exact next-token log-probs": m.r2_logprobs}
    note = (
        " The next-token distribution is an invertible linear image of the belief for this "
        "process (emission matrix of full row rank), so the control target cannot separate "
        "the two."
        if m.affine_control
        else ""
    )
    layers = list(m.r2["beliefs_trained"])
    return FigureSpec(
        name="r2_by_layer",
        figure=plot_r2_by_layer(layers, curves, baselines, cfg.r2_tolerance),
        caption="1 − R² of linear probes by layer (embed = token + position embedding; concat "
        "= all layers side by side); dotted: the mean belief given the position and "
        "the last k tokens, and the best affine read-out of the belief from the exact next-token "
        "log-probabilities (what carrying only the optimal prediction would give); dashed red: "
        "the final layer's bar." + note + _stated_caption(m),
    )


__all__ = [
    "belief_colors",
    "figures",
    "pca_basis",
    "plot_loss_by_position",
    "plot_loss_curve",
    "plot_r2_by_layer",
    "plot_simplex",
    "simplex_coords",
]
