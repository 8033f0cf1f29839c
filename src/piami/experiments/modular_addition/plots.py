"""Figures of the modular-addition grokking experiment: one seed's curves and spectrum
(:mod:`.seed`), and every seed beside the bars (:mod:`piami.experiments.modular_addition`).

Functions of plain arrays and metric dicts: this module imports nothing of the experiment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from piami.lab import FigureSpec


def seed_figure(
    epochs: np.ndarray, curves: Mapping[str, np.ndarray], m: Mapping[str, Any]
) -> FigureSpec:
    """Curves, progress measures and embedding spectrum of one seed.

    Args:
        epochs: ``(n_evals,)`` epochs of the evaluations.
        curves: per evaluation, the seed's losses and accuracies (:data:`.train.CURVES`).
        m: the seed's metrics (:func:`.seed.read_out`).
    """
    import matplotlib.pyplot as plt

    c, e, prog = curves, epochs, m["progress_measures"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 3.8))
    ax1.semilogy(e, c["train_loss"], label="train loss")
    ax1.semilogy(e, c["test_loss"], label="held-out loss")
    ax1.semilogy(prog["epoch"], prog["restricted_loss"], "o-", ms=3, label="restricted loss")
    ax1.semilogy(prog["epoch"], prog["excluded_loss"], "s-", ms=3, label="excluded loss (train)")
    ax1.set(xlabel="epoch", ylabel="cross entropy (nats)", title="losses and progress measures")
    ax2.plot(e, c["train_acc"], label="train")
    ax2.plot(e, c["test_acc"], label="held-out")
    ax2.plot(e, c["test_acc_mirror"], "--", lw=0.8, label="held-out, (b, a) trained")
    ax2.plot(e, c["test_acc_novel"], ":", lw=1.2, label="held-out, novel")
    ax2.plot(prog["epoch"], prog["test_fve"], "o-", ms=3, label="key-frequency FVE (held-out)")
    for name, t in zip(("t10", "t50", "t90"), m["epochs_novel_acc_10_50_90"], strict=True):
        if t is not None:
            ax2.axvline(t, color="gray", lw=0.8, ls=":")
            ax2.text(t, 0.02, name, rotation=90, fontsize=7, color="gray")
    ax2.set(xlabel="epoch", ylim=(-0.05, 1.05), title="accuracy and variance explained")
    spec = np.asarray(m["embedding_spectrum"])
    keys = set(m["key_frequencies"])
    ax3.bar(
        np.arange(spec.size), spec, color=["C3" if i in keys else "C0" for i in range(spec.size)]
    )
    ax3.set(xlabel="frequency k (w = 2 pi k / p)", ylabel="share of ||W_E||^2", title="embedding")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
    return FigureSpec(
        name="curves",
        figure=fig,
        caption=(
            "Left: train and held-out loss; restricted loss (logits kept to the key-frequency "
            "waves, all pairs) and excluded loss (those waves removed, training pairs). Middle: "
            "accuracies (held-out split by whether the mirror pair (b, a) was trained on), the "
            "share of held-out logit variance in the key frequencies, and t10/t50/t90 of the "
            "novel pairs. Right: energy of the number embeddings per frequency; key frequencies "
            f"{sorted(keys)} in red."
        ),
    )


def seeds_figure(
    seeds: Mapping[str, Mapping[str, Any]],
    control: Mapping[str, Any] | None,
    bars: tuple[float, float, float],
) -> FigureSpec:
    """Every seed's novel-pair accuracy over epochs, and its width, delay and FVE beside the bars.

    Args:
        seeds: sub-run key -> that seed's metrics.
        control: the shuffled-label run's metrics, or None.
        bars: ``(sharp_width, min_delay, min_fve)``.
    """
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for i, (key, m) in enumerate(seeds.items()):
        cv = m["curves"]
        ax1.plot(cv["epoch"], cv["test_acc_novel"], color=f"C{i % 10}", label=key)
        ax1.plot(cv["epoch"], cv["train_acc"], color=f"C{i % 10}", lw=0.6, ls="--")
    if control is not None:
        cv = control["curves"]
        ax1.plot(cv["epoch"], cv["test_acc"], color="k", lw=1.0, label="shuffled labels (held-out)")
    title = "novel held-out pairs (solid), training pairs (dashed)"
    ax1.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.05, 1.05), title=title)
    ax1.legend(fontsize=7)
    names = ("width (t90 - t10) / t50", "delay t50 / t50(train)", "held-out FVE")
    fields = ("width", "delay", "test_fve_final")
    x = np.arange(len(seeds))
    for j, (name, f, bar) in enumerate(zip(names, fields, bars, strict=True)):
        vals = [np.nan if m[f] is None else m[f] for m in seeds.values()]
        ax2.plot(x + 0.2 * (j - 1), vals, "o", color=f"C{j}", label=f"{name} (bar {bar:g})")
        ax2.axhline(bar, color=f"C{j}", lw=0.8, ls=":")
    ax2.set_xticks(x, list(seeds), rotation=30, fontsize=7)
    ax2.set(yscale="log", title="per seed, beside the bars (dotted)")
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return FigureSpec(
        name="seeds",
        figure=fig,
        caption=(
            "Left: accuracy on the novel held-out pairs (neither (a, b) nor (b, a) trained) and "
            "on the training pairs, per seed, with the shuffled-label control. Right: each seed's "
            "width of the novel-pair rise (sharp: at most its bar), grokking delay and held-out "
            "FVE (at least their bars); a missing point was not measured (the seed did not "
            "generalize)."
        ),
    )
