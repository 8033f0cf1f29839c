"""Figures of the modular-addition grokking experiment (:mod:`piami.experiments.modular_addition`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from piami.lab import Result

if TYPE_CHECKING:
    from piami.experiments.modular_addition import GrokkingRun


def figures(result: Result, run: GrokkingRun, prog: dict, spec: np.ndarray, keys, marks) -> None:
    import matplotlib.pyplot as plt

    c, e = run.curves, run.epochs
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.semilogy(e, c["train_loss"], label="train loss")
    ax1.semilogy(e, c["test_loss"], label="test loss")
    ax1.semilogy(prog["epoch"], prog["restricted_loss"], "o-", ms=3, label="restricted loss")
    ax1.semilogy(prog["epoch"], prog["excluded_loss"], "s-", ms=3, label="excluded loss (train)")
    ax1.set(xlabel="epoch", ylabel="cross entropy (nats)", title="losses and progress measures")
    ax2.plot(e, c["train_acc"], label="train accuracy")
    ax2.plot(e, c["test_acc"], label="test accuracy")
    ax2.plot(e, c["test_acc_mirror"], "--", lw=0.8, label="test, (b, a) trained")
    ax2.plot(e, c["test_acc_novel"], ":", lw=0.8, label="test, (b, a) held out")
    ax2.plot(prog["epoch"], prog["test_fve"], "o-", ms=3, label="key-frequency FVE (test)")
    for name, t in marks.items():
        if t is not None:
            ax2.axvline(t, color="gray", lw=0.8, ls=":")
            ax2.text(t, 0.02, name, rotation=90, fontsize=7, color="gray")
    ax2.set(xlabel="epoch", ylim=(-0.05, 1.05), title="accuracy and variance explained")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
    result.add_figure(
        "curves",
        fig,
        "Left: train and test loss; restricted loss (logits kept to the key-frequency waves, all "
        "pairs) and excluded loss (those waves removed, training pairs). Right: accuracies (test "
        "split by whether the mirror pair (b, a) was trained on), the share of held-out logit "
        "variance in the key frequencies, and t10/t50/t90 of test accuracy.",
    )
    fig, ax = plt.subplots(figsize=(8, 3))
    colors = ["C3" if i in set(keys.tolist()) else "C0" for i in range(spec.size)]
    ax.bar(np.arange(spec.size), spec / spec.sum(), color=colors)
    ax.set(xlabel="frequency k (w = 2 pi k / p)", ylabel="share of ||W_E||^2", title="embedding")
    result.add_figure(
        "embedding_spectrum",
        fig,
        f"Energy of the number embeddings per frequency; key frequencies {keys.tolist()} in red.",
    )
