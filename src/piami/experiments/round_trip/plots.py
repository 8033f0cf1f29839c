"""Figures of the round trip (matplotlib, Agg-safe): readings by path side by side."""

from __future__ import annotations

from piami.experiments.round_trip.config import Config
from piami.experiments.round_trip.measure import RoundTripMeasurements
from piami.lab import FigureSpec

STYLE = {"piami": ("piami hooks", "o"), "hf": ("HF reload", "x"), "broken": ("broken export", "s")}


def figures(cfg: Config, m: RoundTripMeasurements) -> list[FigureSpec]:
    """Probe R² by layer on every path, and the LLC of every chain on every path."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = [*m.names, "all"]
    for path, (label, marker) in STYLE.items():
        r2 = m.readings[path]["float32"]["r2"]
        ax1.plot(range(len(labels)), [r2[n] for n in labels], marker=marker, label=label)
    ax1.set_xticks(range(len(labels)))
    ax1.set_xticklabels(
        [n.replace("blocks.", "").replace("hook_", "") for n in labels], rotation=30
    )
    ax1.set_ylabel("held-out probe R² of the beliefs")
    ax1.legend(fontsize=8)
    paths = ["piami", "hf", "broken", "hf_native"]
    for i, path in enumerate(paths):
        chains = m.llc[path]["per_chain"]
        ax2.plot([i] * len(chains), chains, "o", alpha=0.6)
        ax2.plot([i - 0.2, i + 0.2], [m.llc[path]["mean"]] * 2, "k-")
    ax2.set_xticks(range(len(paths)))
    ax2.set_xticklabels(["piami", "HF (piami coords)", "broken", "HF (own coords)"], fontsize=8)
    ax2.set_ylabel("LLC per chain (same seed)")
    fig.tight_layout()
    return [
        FigureSpec(
            name="round_trip",
            figure=fig,
            caption="Probe R² by layer through piami's hooks, the reloaded Hugging Face export "
            "and the broken export; LLC of every chain on every path (bars: means).",
        )
    ]


__all__ = ["figures"]
