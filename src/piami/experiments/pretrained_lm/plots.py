"""Loss by context position, and belief R² by layer beside the read-outs and the random weights."""

from __future__ import annotations

import numpy as np

from piami.experiments.pretrained_lm.config import Config
from piami.experiments.pretrained_lm.measure import PLMMeasurements
from piami.lab import FigureSpec


def _panels(n: int, width: float = 4.8):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, 3.8), squeeze=False)
    return fig, axes[0]


def loss_figure(cfg: Config, m: PLMMeasurements) -> FigureSpec:
    """Mean loss of each symbol by position: model, random weights, optimum, unigram baselines."""
    fig, axes = _panels(len(m.processes))
    for ax, (name, p) in zip(axes, m.processes.items(), strict=True):
        c = p["curves"]
        t = np.arange(1, len(c["model"]) + 1)  # symbols seen + 1 (log axis)
        ax.plot(t, c["model"], "-", color="C0", lw=1.4, label=m.metrics.get("model", "model"))
        ax.plot(t, c["random"], "-", color="C3", lw=1.0, alpha=0.8, label="random weights")
        ax.plot(t, c["in_context_unigram"], "-", color="C2", lw=1.0, label="in-context unigram")
        ax.plot(t, c["optimal"], "-", color="k", lw=0.8, alpha=0.5, label="optimal (these seqs)")
        ax.plot(t, c["optimal_expected"], "--", color="k", lw=1.2, label="optimal (exact)")
        ax.axhline(p["unigram_entropy"], color="C2", ls=":", lw=1.2, label="unigram entropy H(X)")
        ax.axvline(p["late_start"] + 1, color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set(title=name, xlabel="context position t + 1", ylabel="loss (nats)")
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    caption = (
        f"Mean loss of symbol t over {cfg.n_seqs} sequences, by position; the models' predictions "
        "are restricted to the alphabet tokens and renormalized. Dashed: the exact expected "
        "optimal loss h(t + 1); dotted: the unigram entropy; grey line: start of the second half, "
        "over which the loss rows are decided."
    )
    return FigureSpec(name="loss_by_position", figure=fig, caption=caption)


def r2_figure(cfg: Config, m: PLMMeasurements) -> FigureSpec:
    """Held-out belief R² by layer: model and random weights, and the last-k read-outs."""
    fig, axes = _panels(len(m.processes))
    for ax, (name, p) in zip(axes, m.processes.items(), strict=True):
        x = np.arange(len(m.layers))
        for w, color, label in (("model", "C0", "model"), ("random", "C3", "random weights")):
            ax.plot(x, p["r2"][w], "o-", color=color, ms=3, lw=1.2, label=label)
            b = p["best_layer"][w]
            ax.plot([b], [p["r2"][w][b]], "*", color=color, ms=11)
        for k, v in p["control_r2"].items():
            main = int(k) == p["control_k"]
            ax.axhline(v, color="C2", lw=1.4 if main else 0.6, alpha=1.0 if main else 0.5)
            ax.text(x[-1], v, f" k={k}", fontsize=6, va="center", color="C2")
        for i, (K, v) in enumerate(p.get("history_r2", {}).items()):
            label = "linear in the last K symbols" if i == 0 else None
            ax.axhline(v, color="C4", ls="--", lw=0.8, alpha=0.7, label=label)
            ax.text(x[0], v, f"K={K} ", fontsize=6, va="bottom", ha="left", color="C4")
        ax.axhline(p["shuffled"]["model"], color="0.5", ls=":", lw=1, label="shuffled beliefs")
        step = max(1, len(x) // 8)
        ax.set_xticks(x[::step], [m.layers[i] for i in x[::step]], fontsize=7)
        ax.set(title=name, xlabel="layer", ylabel="held-out belief R²")
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.02)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    caption = (
        "Held-out R² of ridge probes from each layer's residual stream to the exact belief "
        "(stars: the layer chosen on held-back fitting sequences). Green lines: the exact best "
        f"read-out from the position and the last k symbols (thick: k = {cfg.control_k}, the "
        "row's yardstick); purple dashed: the best affine read-out from one-hot codes of the last "
        "K symbols (a linear code of the recent history); dotted: a probe on shuffled beliefs."
    )
    return FigureSpec(name="r2_by_layer", figure=fig, caption=caption)


def depth_figure(cfg: Config, m: PLMMeasurements) -> FigureSpec:
    """TwoNN by layer with 95% intervals, and the CKA of each layer to the next: both models."""
    fig, (ax_id, ax_cka) = _panels(2)
    x = np.arange(len(m.layers))
    for w, color, label in (("model", "C0", "pretrained"), ("random", "C3", "random weights")):
        p = m.depth[w]
        d = np.asarray(p["twonn"])
        yerr = np.abs(np.stack([d - np.asarray(p["low"]), np.asarray(p["high"]) - d]))
        ax_id.errorbar(x, d, yerr=yerr, fmt="o-", color=color, ms=3, lw=1.2, label=label)
        if "mle" in p:
            ax_id.plot(
                x,
                p["mle"],
                "s--",
                color=color,
                ms=2.5,
                lw=0.9,
                alpha=0.7,
                label=f"{label}, Levina-Bickel MLE",
            )
        ax_cka.plot(x[:-1] + 0.5, p["cka_adjacent"], "o-", color=color, ms=3, lw=1.2, label=label)
    step = max(1, len(x) // 8)
    for ax in (ax_id, ax_cka):
        ax.set_xticks(x[::step], [m.layers[i] for i in x[::step]], fontsize=7)
        ax.legend(fontsize=7)
    # log scale: a random embedding table reads ~100, the blocks 2-12
    ax_id.set_yscale("log")
    ax_id.set(xlabel="layer", ylabel="intrinsic dimension (log scale)", title="dimension by depth")
    ax_cka.set(xlabel="between layer i and i + 1", ylabel="linear CKA", title="adjacent layers")
    fig.tight_layout()
    caption = (
        f"Real text ({cfg.text_seqs} pieces of {cfg.text_len} tokens of {cfg.text_source}): the "
        "TwoNN intrinsic dimension of each layer's residual stream (every position a point, the "
        "same rows for every layer and model; bars: exact 95% intervals), the Levina-Bickel MLE "
        "on the same rows (dashed), and the linear CKA "
        "between adjacent layers, for the pretrained model and the same architecture with random "
        "weights."
    )
    return FigureSpec(name="geometry_by_depth", figure=fig, caption=caption)


def generated_figure(cfg: Config, m: PLMMeasurements) -> FigureSpec:
    """Correlation decay and conditional entropies of generated, corpus and shuffled text."""
    fig, (ax_c, ax_h) = _panels(2)
    g = m.generated
    styles = {
        "generated": ("C0", "model's text"),
        "corpus": ("k", "corpus"),
        "shuffled": ("C3", "model's text, shuffled"),
    }
    for name, (color, label) in styles.items():
        d = g[name]
        ax_c.loglog(d["lags"], d["top_sv"], "o-", color=color, ms=3, lw=1.1, label=label)
        ax_c.loglog(d["lags"], 3 * np.asarray(d["floor"]), ":", color=color, lw=0.9)
        h = np.asarray(d["H_n"]) / np.log(2)
        ok = np.asarray(d["H_n_trusted"], dtype=bool)
        n = np.arange(h.size)
        ax_h.plot(n[ok], h[ok], "o-", color=color, ms=3, lw=1.1, label=label)
        ax_h.plot(n[~ok], h[~ok], "o", color=color, ms=3, mfc="none")
    ax_c.set(
        xlabel="lag n (characters)",
        ylabel="||C(n)|| (top singular value)",
        title="correlations (dotted: 3 x noise floor)",
    )
    ax_h.set(
        xlabel="context length n",
        ylabel="H_n (bits per letter class)",
        title="conditional entropies (open: sparse)",
    )
    for ax in (ax_c, ax_h):
        ax.legend(fontsize=7)
    fig.tight_layout()
    caption = (
        f"{cfg.gen_seqs} continuations of {cfg.gen_len} tokens after Shakespeare prompts: "
        "sampled from the model (temperature 1), the corpus's own, and the model's characters "
        f"shuffled across all continuations; every row cut to {g['chars']} characters in four "
        "letter classes (vowel, consonant, space, other). Left: the correlation strength by lag "
        "with three times the shuffle noise floor; right: the NSB conditional entropies."
    )
    return FigureSpec(name="generated_text_statistics", figure=fig, caption=caption)


def figures(cfg: Config, m: PLMMeasurements) -> list[FigureSpec]:
    """The loss-by-position and R²-by-layer figures, the geometry by depth and the statistics of
    generated text when measured."""
    out = [loss_figure(cfg, m), r2_figure(cfg, m)] if m.processes else []
    out += [depth_figure(cfg, m)] if m.depth else []
    return out + ([generated_figure(cfg, m)] if "generated" in m.generated else [])


__all__ = ["depth_figure", "figures", "generated_figure", "loss_figure", "r2_figure"]
