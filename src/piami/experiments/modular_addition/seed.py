"""One seed of the modular-addition grokking experiment: train, read out, and judge that seed.

The sub-experiment ``modular-addition-seed``, part of ``modular-addition``, which plans one per
seed and turns them into rates (:mod:`piami.experiments.modular_addition`). Training is
:mod:`.train`, the rows :func:`.compare.seed_rows` and :func:`.compare.control_rows`, the figure
:func:`.plots.seed_figure`. The held-out pairs split into *mirror* pairs (``(b, a)`` was trained:
with near-uniform attention the output depends on ``W_E[a] + W_E[b]``, so memorizing ``(a, b)``
answers ``(b, a)``) and *novel* pairs (neither ``(a, b)`` nor ``(b, a)`` trained); only the novel
ones measure generalization beyond a commutative memorization, so the timing of the rise is read on
them. A seed's events, counted over seeds by the parent:

- *generalized*: held-out accuracy at the last epoch at least :data:`.config.MIN_TEST_ACC` (0.9);
- *grokked*: generalized, and ``t50(novel) / t50(train) >= MIN_DELAY`` (2), ``t_x`` the first
  epoch (interpolated linearly between evaluations,
  :func:`piami.instruments.curves.first_crossing`) at which an accuracy reaches ``x``;
- *sharp*: generalized, and the width ``(t90 - t10) / t50`` of the novel-pair rise at most
  :data:`.config.SHARP_WIDTH` (0.5); a smooth ``1 - exp(-t / tau)`` has ``(ln 10 - ln(10/9)) /
  ln 2 = 3.17``, six times wider;
- *Fourier*: generalized, and the key frequencies of the embedding
  (:func:`piami.instruments.fourier.key_frequencies`) carry at least :data:`.config.MIN_FVE` (0.9)
  of the held-out logits' variance (Nanda et al. 2023, eq. 1); no key frequency found counts as 0;
- *decided*: generalized, or trained through the horizon (:func:`.config.horizon_epochs`): a seed
  that stops earlier without generalizing may still grok.

The delay, width and FVE rows of one seed are not identified without a grokking event (held-out
accuracy below 90% at the end). A shuffled-label run (``shuffle_labels``) gives control rows
instead: held-out accuracy at chance, no Fourier read-out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from piami.experiments.modular_addition.compare import control_rows, seed_rows
from piami.experiments.modular_addition.config import (
    MIN_DELAY,
    MIN_FVE,
    MIN_TEST_ACC,
    SEED_EXPERIMENT_NAME,
    SHARP_WIDTH,
    SeedConfig,
    horizon_epochs,
)
from piami.experiments.modular_addition.plots import seed_figure
from piami.experiments.modular_addition.train import GrokkingRun, logit_table, train
from piami.instruments import fourier
from piami.instruments.curves import first_crossing
from piami.lab import Comparison, Experiment, FigureSpec, Measurements
from piami.models.device import limit_threads
from piami.models.transformer import Transformer

QUICK_SEED = {"p": 31, "d_model": 32, "d_mlp": 128, "n_epochs": 100, "eval_every": 5}


@dataclass(kw_only=True)
class SeedMeasurements(Measurements):
    """One seed's numbers (``metrics``: :func:`read_out`) and its full-resolution curves.

    Attributes:
        epochs: ``(n_evals,)`` epochs at which the curves were measured.
        curves: per evaluation, the :data:`.train.CURVES` (losses in nats), for the figure.
    """

    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def _or_none(t: float) -> float | None:
    """None for a curve that never reached the level (NaN from ``first_crossing``)."""
    return None if math.isnan(t) else t


def progress_measures(run: GrokkingRun, keys: np.ndarray) -> dict[str, list[float]]:
    """Restricted loss (all pairs), excluded loss (training pairs) and held-out FVE per snapshot
    (Nanda et al. 2023, section 5.1); empty lists when there are no key frequencies."""
    names = ("epoch", "restricted_loss", "excluded_loss", "test_fve")
    out: dict[str, list[float]] = {name: [] for name in names}
    if not keys.size:
        return out
    # weights overwritten below; its own generator leaves torch's global RNG be
    model = Transformer(
        run.model.cfg,
        generator=torch.Generator(),
        device=run.model.device,
        dtype=run.model.W_E.dtype,
    )
    for epoch, state in run.snapshots:
        model.load_state_dict(state)
        logits = logit_table(model, run.task)
        out["epoch"].append(epoch)
        out["restricted_loss"].append(fourier.restricted_loss(logits, keys))
        out["excluded_loss"].append(fourier.excluded_loss(logits, keys, run.train_mask))
        out["test_fve"].append(fourier.logit_variance_explained(logits, keys, ~run.train_mask))
    return out


def read_out(cfg: SeedConfig, run: GrokkingRun) -> dict[str, Any]:
    """The seed's numbers and events (module docstring), JSON-ready and free of wall-clock time.

    Args:
        cfg: the seed's config.
        run: its trained network, curves and snapshots (:func:`.train.train`).
    """
    e, c = run.epochs, run.curves
    spec = fourier.embedding_spectrum(run.model.W_E, cfg.p)
    keys = fourier.key_frequencies(spec)
    logits = logit_table(run.model, run.task)
    fve = fourier.logit_variance_explained(logits, keys, ~run.train_mask)  # 0 when no keys
    novel = c["test_acc_novel"]
    t10, t50, t90 = (_or_none(first_crossing(e, novel, x)) for x in (0.1, 0.5, 0.9))
    t50_train = _or_none(first_crossing(e, c["train_acc"], 0.5))
    final_acc = float(c["test_acc"][-1])
    generalized = final_acc >= MIN_TEST_ACC
    width = (t90 - t10) / t50 if None not in (t10, t50, t90) and t50 > 0 else None
    delay = t50 / t50_train if t50 is not None and t50_train else None
    horizon = horizon_epochs(cfg)
    events = {
        "generalized": generalized,
        "decided": generalized or cfg.n_epochs >= horizon,
        "grokked": generalized and delay is not None and delay >= MIN_DELAY,
        "sharp": generalized and width is not None and width <= SHARP_WIDTH,
        "fourier": generalized and fve >= MIN_FVE,
    }
    step = max(1, len(e) // 200)
    return {
        "events": events,
        "test_acc_final": final_acc,
        "n_test": int((~run.train_mask).sum()),
        "test_fve_final": fve,
        "width": width,
        "delay": delay,
        "epochs_novel_acc_10_50_90": [t10, t50, t90],
        "epoch_train_acc_50": t50_train,
        "horizon_epochs": horizon,
        "key_frequencies": keys.tolist(),
        "embedding_energy_in_key_frequencies": float(spec[keys].sum() / spec.sum()),
        "embedding_spectrum": (spec / spec.sum()).tolist(),
        "final": {k: float(v[-1]) for k, v in c.items()},
        "final_restricted_loss": fourier.restricted_loss(logits, keys) if keys.size else None,
        "final_excluded_loss_train": (
            fourier.excluded_loss(logits, keys, run.train_mask) if keys.size else None
        ),
        "progress_measures": progress_measures(run, keys),
        "curves": {"epoch": e[::step].tolist(), **{k: v[::step].tolist() for k, v in c.items()}},
    }


def measure(cfg: SeedConfig, *, progress: bool = True) -> SeedMeasurements:
    """Train one seed and read it out (see the module docstring)."""
    run = train(cfg, progress=progress)
    with limit_threads(cfg.n_threads):
        metrics = read_out(cfg, run)
    return SeedMeasurements(
        metrics=metrics,
        timing={"train_wall_s": run.wall_s, "epochs_per_s": cfg.n_epochs / max(run.wall_s, 1e-9)},
        epochs=run.epochs,
        curves=run.curves,
    )


def compare(cfg: SeedConfig, m: SeedMeasurements) -> list[Comparison]:
    """The seed's rows (:func:`.compare.seed_rows`), or a shuffled-label run's control rows."""
    if cfg.shuffle_labels:
        return control_rows(cfg, m.metrics)
    return seed_rows(cfg, m.metrics)


def figures(cfg: SeedConfig, m: SeedMeasurements) -> list[FigureSpec]:
    """Curves, progress measures and embedding spectrum of the seed (:func:`.plots.seed_figure`)."""
    return [seed_figure(m.epochs, m.curves, m.metrics)]


def describe(cfg: SeedConfig) -> str:
    """The report's opening paragraph."""
    return (
        f"One seed of modular-addition: (a + b) mod {cfg.p} from {cfg.frac_train:.0%} of the "
        f"pairs{' with shuffled answers (control)' if cfg.shuffle_labels else ''}, "
        f"{cfg.n_epochs} epochs of full-batch AdamW (lr {cfg.lr:g}, weight decay "
        f"{cfg.weight_decay:g})."
    )


EXPERIMENT = Experiment(
    name=SEED_EXPERIMENT_NAME,
    config_cls=SeedConfig,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick=QUICK_SEED,
    summary="One seed of modular-addition (planned by it): train, Fourier read-out, grokking times",
    part_of="modular-addition",
)
