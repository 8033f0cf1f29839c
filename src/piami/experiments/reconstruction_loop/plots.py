"""R² of every target by layer, trained and untrained, beside the best 3-token lookup."""

from __future__ import annotations

from piami.experiments.reconstruction_loop.config import Config
from piami.experiments.reconstruction_loop.measure import (
    SYNTHETIC_TARGETS,
    TEXT_TARGETS,
    LoopMeasurements,
)
from piami.lab import FigureSpec

_LABELS = {
    "true": "true belief",
    "true_predictive": "true predictive",
    "recon": "reconstructed belief",
    "recon_predictive": "reconstructed predictive",
    "text_recon": "reconstructed belief",
    "text_recon_predictive": "reconstructed predictive",
}
_K3 = "position + last 3 tokens"


def figures(cfg: Config, m: LoopMeasurements) -> list[FigureSpec]:
    """One panel per part: held-out R² by layer (solid: trained; dashed: untrained; dotted: the
    position + last-3-token lookup)."""
    import matplotlib.pyplot as plt

    parts = [(p, t) for p, t in (("synthetic", SYNTHETIC_TARGETS), ("text", TEXT_TARGETS))]
    parts = [(p, t) for p, t in parts if f"{t[0]}|trained" in m.r2]
    if not parts:
        return []
    fig, axes = plt.subplots(1, len(parts), figsize=(4.8 * len(parts), 3.8), squeeze=False)
    for ax, (part, targets) in zip(axes[0], parts, strict=True):
        for i, t in enumerate(targets):
            color = f"C{i}"
            layers = list(m.r2[f"{t}|trained"])
            x = range(len(layers))
            size = {"ms": 9 - 1.5 * i, "lw": 2.6 - 0.5 * i}  # overlapping curves stay visible
            trained, untrained = m.r2[f"{t}|trained"], m.r2[f"{t}|untrained"]
            ax.plot(x, list(trained.values()), "o-", color=color, label=_LABELS[t], **size)
            ax.plot(x, list(untrained.values()), "s--", color=color, alpha=0.6, **size)
            if _K3 in m.lookup.get(t, {}):
                ax.axhline(m.lookup[t][_K3], color=color, ls=":", lw=1)
            ax.set_xticks(list(x), layers, fontsize=8)
        rec = m.machines.get(part, {})
        ax.set_title(
            f"{part}: CSSR machine, {rec.get('n_states', '?')} states at L = "
            f"{rec.get('max_length', '?')}",
            fontsize=9,
        )
        ax.set(xlabel="layer", ylabel="held-out R²", ylim=(min(0.0, ax.get_ylim()[0]), 1.02))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    caption = (
        "Held-out R² of linear probes from the residual stream to each target, by layer (concat: "
        "all layers side by side). Solid: trained network; dashed: the same network untrained; "
        "dotted: the best read-out from the position and the last 3 tokens. Predictive targets "
        f"are a machine's probabilities of the next {cfg.future_length} symbols."
    )
    return [FigureSpec(name="r2_by_layer", figure=fig, caption=caption)]


__all__ = ["figures"]
