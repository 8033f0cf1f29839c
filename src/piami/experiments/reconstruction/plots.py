"""The KL rate against N beside d / (2N); RRXOR's entropy rate and states against L."""

from __future__ import annotations

import numpy as np

from piami.experiments.reconstruction.config import SYNCHRONIZABLE, Config
from piami.experiments.reconstruction.measure import ReconstructionMeasurements
from piami.lab import FigureSpec


def figures(cfg: Config, m: ReconstructionMeasurements) -> list[FigureSpec]:
    """KL rate against N beside d / (2N); RRXOR's entropy rate and states against L."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    sizes = np.asarray(cfg.sizes, float)
    for name, color in zip(SYNCHRONIZABLE, ("C0", "C1"), strict=True):
        kl = m.kl[name]
        ax1.loglog(sizes, kl.mean(axis=1), "o-", color=color, label=f"{name} (mean)")
        ax1.loglog(np.repeat(sizes, kl.shape[1]), kl.ravel(), ".", color=color, alpha=0.25)
        ax1.loglog(sizes, m.n_params[name] / (2 * sizes), "--", color=color, lw=1)
    ax1.set(xlabel="symbols N", ylabel="KL rate to the process (nats/symbol)")
    ax1.set_title("CSSR: excess log-loss; dashed d / (2N)", fontsize=9)
    ax1.legend(fontsize=8)
    L = np.asarray(cfg.rrxor_lengths)
    ax2.errorbar(L, m.rrxor_h_bits, yerr=3 * np.asarray(m.rrxor_h_se_bits), fmt="o-")
    ax2.axhline(2 / 3, color="k", ls="--", lw=1, label="h = 2/3 bit")
    for x, y, s in zip(L, m.rrxor_h_bits, m.rrxor_states, strict=True):
        ax2.annotate(f"{s} states", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax2.set(xlabel="history length L", ylabel="entropy rate (bits)")
    ax2.set_title("RRXOR: no finite synchronization", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    caption = (
        "Left: exact KL rate of each CSSR reconstruction to its process (dots: samples; "
        "line: mean) beside the parametric d / (2N). Right: RRXOR, entropy rate of the "
        "reconstruction (3 standard errors) and its number of states against L."
    )
    return [FigureSpec(name="reconstruction", figure=fig, caption=caption)]
