"""Part (4) of llc-calibration: the LLC along a belief-geometry transformer's training checkpoints.

The model of the ``belief-geometry`` experiment (Shai et al. 2024) is trained through its public
:func:`~piami.experiments.belief_geometry.train_belief_model` (a small size by default); at each
log-spaced checkpoint :class:`~piami.instruments.LLCEstimator` (``vmap`` over
``functional_call``, cross-entropy per token) estimates the local learning coefficient
``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))`` (Lau et al. 2023, eq. 3) on a fixed data set of
``n`` sequences, ``n beta = n / ln n`` with ``n`` counted in sequences. No exact value is known for
a transformer: the curve is a measurement (metrics and a figure), not a comparison. Early
checkpoints are not minima, so their chains drift downhill and the estimate there is only
indicative (the localization ``gamma`` keeps them near the checkpoint).

The transformer checks its token ids (a value-dependent branch that ``vmap`` cannot batch), so the
estimator runs it once per chain, each chain on its own minibatches; the sanity row says whether
the chains' minibatches were independent. The run is a sub-run of llc-calibration
(``llc-calibration-checkpoints``): no wall-clock cap, the same seed gives the same numbers.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import PiamiValueError
from piami.experiments import belief_geometry as bg
from piami.experiments.llc_calibration.plots import plot_checkpoints
from piami.instruments.learning_coefficient import LLCEstimator
from piami.lab import Comparison, Experiment, FigureSpec, Measurements
from piami.models import limit_threads
from piami.processes import from_spec
from piami.train import list_checkpoints, load_checkpoint

# One setting for every checkpoint (the usual transformer choice: strong localization).
LLC_SETTINGS = dict(sampler="sgld", step_size=1e-4, gamma=100.0, n_chains=2, batch_size=64)
N_SEQS = 2048  # sequences in the fixed data set of the LLC
CAPTION = "LLC at the belief-geometry model's checkpoints over its training loss"


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """Settings of the checkpoint part (every field is also a field of llc-calibration's Config)."""

    seed: int = 0  # seeds the belief model's training and the chains
    belief_steps: int = 500  # training steps of the belief model
    belief_checkpoints: int = 6  # log-spaced checkpoints kept (and measured)
    llc_burnin: int = 100  # burn-in steps per checkpoint
    llc_draws: int = 300  # draws per checkpoint
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch CPU threads

    def __post_init__(self) -> None:
        for name, low in (
            ("belief_steps", 10),
            ("belief_checkpoints", 2),
            ("llc_burnin", 0),
            ("llc_draws", 4),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise PiamiValueError(f"{name} must be an integer >= {low}, got {v!r}")


@dataclass(kw_only=True)
class CheckpointMeasurements(Measurements):
    """The LLC along training.

    Attributes:
        rows: one per checkpoint (step, training loss, LLC mean and spread, batching, ...).
        curve: the training curve (``step``, ``loss``, ``optimal_loss``, ``stop_reason``).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    curve: dict[str, Any] = field(default_factory=dict)


def measure(cfg: CheckpointConfig, *, progress: bool = True) -> CheckpointMeasurements:
    """Train the belief model, estimate the LLC at each checkpoint (see the module docstring)."""
    with limit_threads(cfg.n_threads), tempfile.TemporaryDirectory(prefix="piami-llc-") as tmp:
        rows, curve, timing = llc_along_training(cfg, tmp, progress=progress)
    return CheckpointMeasurements(
        rows=rows,
        curve=curve,
        metrics={"checkpoints": rows, "training_curve": curve},
        timing={"checkpoints": timing},
    )


def compare(cfg: CheckpointConfig, m: CheckpointMeasurements) -> list[Comparison]:
    """The sanity row: the chains drew their own minibatches (the curve itself is no comparison)."""
    return [independence_row(m.rows)]


def independence_row(rows: list[dict[str, Any]]) -> Comparison:
    """Sanity: at every checkpoint the LLC's chains drew independent minibatches."""
    independent = all(r["independent_batches"] for r in rows)
    modes = sorted({r["batching"] for r in rows})
    return Comparison(
        name="LLC chains along training draw their own minibatches",
        kind="sanity",
        predicted=1.0,
        measured=float(independent),
        tolerance=0.0,
        tolerance_source="derived: R-hat and the spread across chains assume independent chains",
        note=(
            f"batching: {', '.join(modes)} (the transformer's token check cannot be vmapped "
            "over per-chain batches, so each chain runs on its own batch)"
        ),
    )


def figures(cfg: CheckpointConfig, m: CheckpointMeasurements) -> list[FigureSpec]:
    """The LLC and the training loss over steps."""
    fig = plot_checkpoints(m.rows, m.curve)
    return [FigureSpec(name="llc_along_training", figure=fig, caption=CAPTION)]


def describe(cfg: CheckpointConfig) -> str:
    """The report's opening paragraph."""
    return (
        "The LLC along the training checkpoints of a belief-geometry transformer: a measurement "
        "(no exact value is known), with a check that the chains drew independent minibatches."
    )


def belief_config(cfg: CheckpointConfig) -> bg.Config:
    """The belief-geometry config trained here: 2 layers, MLP width 128, no wall-clock cap."""
    return bg.Config(
        seed=cfg.seed,
        n_layers=2,
        d_mlp=128,
        n_steps=cfg.belief_steps,
        batch_size=256,
        time_budget_s=None,  # no wall-clock cap: the same seed trains the same weights
        n_checkpoints=cfg.belief_checkpoints,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )


def llc_along_training(
    cfg: CheckpointConfig, out_dir: str | Path, *, progress: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Train the belief model and estimate the LLC at each checkpoint.

    Returns:
        ``(rows, curve, timing)``: one row per checkpoint, the training curve (steps, losses,
        optimal loss) and the wall time of each estimate.
    """
    bcfg = belief_config(cfg)
    _, run_dir, hist = bg.train_belief_model(bcfg, out_dir, progress=progress)
    proc = from_spec(bcfg.process)
    tokens = proc.sample(N_SEQS, bcfg.n_ctx + 1, rng=np.random.default_rng([cfg.seed, 7]))
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    data = (tokens[:, :-1], tokens[:, 1:])
    vocab = proc.n_symbols

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))

    settings = {**LLC_SETTINGS, "n_burnin": cfg.llc_burnin, "n_draws": cfg.llc_draws}
    rows, timing = [], []
    for step, path in list_checkpoints(run_dir):
        model, meta = load_checkpoint(path, device=cfg.device, dtype=cfg.dtype)
        est = LLCEstimator(**settings, random_state=cfg.seed, device=cfg.device, dtype=cfg.dtype)
        with warnings.catch_warnings():  # the per-chain fallback is expected here (sanity row)
            warnings.filterwarnings("ignore", message="LLCEstimator: the model's forward")
            est.fit(model, data, loss_fn)
        rows.append(_row(int(step), meta, model, est, settings))
        d = est.diagnostics_
        timing.append(
            {"step": int(step), "seconds": d["seconds"], "draws_per_second": d["draws_per_second"]}
        )
    curve = {
        "step": [int(s) for s in hist.step],
        "loss": [float(v) for v in hist.loss],
        "optimal_loss": hist.optimal_loss,
        "stop_reason": getattr(hist, "stop_reason", ""),
    }
    return rows, curve, timing


def _row(
    step: int, meta: dict, model: torch.nn.Module, est: LLCEstimator, settings: dict
) -> dict[str, Any]:
    d = est.diagnostics_
    return {
        "step": step,
        "train_loss": meta.get("loss"),
        "llc_mean": est.llc_mean_,
        "llc_std": est.llc_std_,
        "reference_loss": est.reference_loss_,
        "r_hat": d["r_hat"],
        "batching": d["batching"],
        "independent_batches": bool(d["independent_batches"]),
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "settings": {**settings, "n_seqs": N_SEQS},
    }


EXPERIMENT = Experiment(
    name="llc-calibration-checkpoints",
    config_cls=CheckpointConfig,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    part_of="llc-calibration",
    summary="the LLC along a belief-geometry transformer's training checkpoints (a measurement)",
)
