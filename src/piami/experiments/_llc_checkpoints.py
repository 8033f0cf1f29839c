"""Part (4) of llc-calibration: the LLC along a belief-geometry transformer's training checkpoints.

The model of the ``belief-geometry`` experiment (Shai et al. 2024) is trained through
:func:`piami.experiments.belief_geometry.train_belief_model` (its quick size by default); at each
log-spaced checkpoint :class:`~piami.instruments.LLCEstimator` (``vmap`` over ``functional_call``,
cross-entropy per token) estimates the LLC on a fixed data set of ``n`` sequences, ``n beta = n / ln n``
with ``n`` counted in sequences. No exact value is known for a transformer: the curve is a
measurement. Early checkpoints are not minima, so their chains drift downhill and the estimate
there is only indicative (the localization ``gamma`` keeps them near the checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from piami.instruments.learning_coefficient import LLCEstimator

# One setting for every checkpoint (the usual transformer choice: strong localization).
LLC_SETTINGS = dict(sampler="sgld", step_size=1e-4, gamma=100.0, n_chains=2, batch_size=64)
N_SEQS = 2048  # sequences in the fixed data set of the LLC


def llc_along_training(
    cfg: Any, out_dir: str | Path, *, progress: bool = False
) -> tuple[list[dict], Any]:
    """Train the belief model, estimate the LLC at each checkpoint; return rows and a figure."""
    from piami.experiments import belief_geometry as bg
    from piami.train.checkpoint import list_checkpoints, load_checkpoint

    bcfg = bg.Config(
        seed=cfg.seed,
        n_layers=2,
        d_mlp=128,
        n_steps=cfg.belief_steps,
        batch_size=256,
        time_budget_s=cfg.belief_time_budget_s,
        n_checkpoints=cfg.belief_checkpoints,
        device=cfg.device,
        dtype=cfg.dtype,
    )
    _, run_dir, hist = bg.train_belief_model(bcfg, out_dir, progress=progress)
    proc = bg.process_of(bcfg)
    tokens = proc.sample(N_SEQS, bcfg.n_ctx + 1, rng=np.random.default_rng([cfg.seed, 7]))
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    data = (tokens[:, :-1], tokens[:, 1:])
    vocab = proc.n_symbols

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))

    rows = []
    for step, path in list_checkpoints(run_dir):
        model, meta = load_checkpoint(path, device=cfg.device, dtype=cfg.dtype)
        est = LLCEstimator(
            **LLC_SETTINGS,
            n_burnin=cfg.llc_burnin,
            n_draws=cfg.llc_draws,
            seed=cfg.seed,
            device=cfg.device,
            dtype=cfg.dtype,
        )
        est.fit(model, data, loss_fn)
        rows.append(
            {
                "step": int(step),
                "train_loss": meta.get("loss"),
                "llc_mean": est.llc_mean_,
                "llc_std": est.llc_std_,
                "reference_loss": est.reference_loss_,
                "r_hat": est.diagnostics_["r_hat"],
                "n_params": int(sum(p.numel() for p in model.parameters())),
                "settings": {
                    **LLC_SETTINGS,
                    "n_burnin": cfg.llc_burnin,
                    "n_draws": cfg.llc_draws,
                    "n_seqs": N_SEQS,
                },
            }
        )
    return rows, _plot(rows, hist)


def _plot(rows: list[dict], hist: Any) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = np.asarray(hist.step, dtype=float)
    ax.plot(steps, hist.loss, color="0.5", lw=0.8, label="training loss")
    if hist.optimal_loss is not None:
        ax.axhline(hist.optimal_loss, color="0.3", ls=":", lw=0.8, label="optimal loss")
    ax.set(xscale="log", xlabel="step", ylabel="loss (nats / token)")
    ax2 = ax.twinx()
    s = np.array([max(r["step"], 1) for r in rows], dtype=float)
    m = np.array([r["llc_mean"] for r in rows])
    e = np.array([r["llc_std"] for r in rows])
    ax2.errorbar(s, m, yerr=e, fmt="o-", color="C3", ms=4, capsize=2, label="LLC")
    ax2.set_ylabel("LLC λ̂ (step 0 drawn at 1)", color="C3")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="center right")
    return fig
