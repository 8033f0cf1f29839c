"""Instrument calibration: every instrument measured on systems whose answer is known exactly.

Interpretability instruments are used on networks whose answer nobody knows. Here each one first
meets ground truth, and its error is reported as a comparison:

* **CKA** (Kornblith et al. 2019): invariance to orthogonal maps and isotropic scaling (to 1e-6) for
  linear, RBF and debiased CKA; the debiased CKA of independent representations is ~0.
* **Intrinsic dimension**: TwoNN (Facco et al. 2017) and the Levina-Bickel MLE on spheres ``S^d``,
  ``d = 2..5``, 2,000 points each; box-counting and correlation dimension of the Sierpinski triangle
  (``log 3 / log 2``), drawn as the belief set of an HMM whose information dimension is exact.
* **Weights**: effective rank of a matrix with a planted spectrum; a deep linear network trained on
  a teacher recovers its modes (Saxe et al. 2014); a bilinear layer trained on a task built from
  known features gives them back as eigenvectors of its interaction matrices (Pearce et al. 2024).
* **SAEs**: TopK and L1 SAEs on data in superposition (``n_features`` random unit directions in
  ``R^d``, ``n_features > d``, Bernoulli firing, magnitudes U(0.5, 1.5)): recovered fraction above
  cosine 0.9, MMCS, MCC, L0, explained variance, dead latents.
* **Natural latents** (Wentworth & Lorell): ``H(L'|L) <= eps_med + 2 eps_red`` on random tables; the
  best deterministic natural latent of a table with a planted shared bit.
* **Belief geometry** (Mess3 at two settings): the fractal dimensions of the belief set from theory
  beside the same dimension of a trained transformer's residual stream mapped by its probe; an SAE on
  that residual stream against the direct probe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments import _calibration_beliefs as CB
from piami.experiments import _calibration_plots as plots
from piami.experiments import _calibration_truth as truth
from piami.lab import Experiment, Result
from piami.models.device import limit_threads


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the instrument-calibration experiment (default <= 10 min on 2 CPUs)."""

    seed: int = 0  # seeds every draw, initialization and training stream
    n_points: int = 2000  # points per manifold for TwoNN / MLE (the bar is at 2,000)
    twonn_tolerance: float = 0.05  # relative error allowed for TwoNN at d = 2..5
    n_twonn_draws: int = 5  # independent point clouds per dimension
    sae_samples: int = 20000  # superposition samples
    sae_features: int = 64  # known features (random unit directions)
    sae_dim: int = 32  # ambient dimension (< sae_features: superposition)
    sae_p_fire: float = 0.047  # Bernoulli firing probability per feature (~3 active)
    sae_latents: int = 128  # SAE dictionary size
    sae_steps: int = 1500  # Adam steps per SAE
    bilinear_steps: int = 1500  # AdamW steps for the bilinear layer
    n_random_tables: int = 300  # random tables for the natural-latent bound
    fractal_steps: int = 1500  # belief-update steps per chain (after burn-in)
    fractal_chains: int = 16  # chains per subset
    n_subsets: int = 5  # disjoint subsets for the intervals
    network: bool = True  # train the belief-geometry model (Mess3 sections)
    mess3_x: tuple[float, ...] = (0.05, 0.15)  # Mess3 x of each setting
    mess3_a: tuple[float, ...] = (0.85, 0.6)  # Mess3 a of each setting
    n_ctx: int = 10  # context of the belief model
    n_layers: int = 4  # transformer blocks
    d_model: int = 64  # residual width
    train_steps: int = 2000  # optimizer steps per belief model
    batch_size: int = 512  # sequences per step
    train_budget_s: float = 150.0  # wall-clock cap per belief model
    n_probe_seqs: int = 3000  # held-out sequences (fit set; as many again to score)
    dimension_tolerance: float = 0.15  # allowed |network - theory| correlation dimension
    sae_belief_latents: int = 256  # SAE size on the residual stream
    sae_belief_k: tuple[int, ...] = (2, 4, 16)  # TopK values on the residual stream
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch/BLAS threads (1 is fastest on a shared 2-core machine)

    def __post_init__(self) -> None:
        ints = (
            "n_points", "n_twonn_draws", "sae_samples", "sae_features", "sae_dim", "sae_latents", "sae_steps",
            "bilinear_steps", "n_random_tables", "fractal_steps", "fractal_chains", "n_ctx",
            "n_layers", "d_model", "train_steps", "batch_size", "n_probe_seqs", "sae_belief_latents",
        )  # fmt: skip
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_points < 100:
            raise PiamiValueError(f"n_points must be >= 100, got {self.n_points}")
        if not isinstance(self.n_subsets, int) or self.n_subsets < 2:
            raise PiamiValueError(f"n_subsets must be an integer >= 2, got {self.n_subsets!r}")
        if self.fractal_chains < 2:
            raise PiamiValueError("fractal_chains must be >= 2 (their spread gives the errors)")
        if self.sae_features <= self.sae_dim:
            raise PiamiValueError(
                f"superposition needs sae_features > sae_dim, got {self.sae_features} <= {self.sae_dim}"
            )
        if not 0 < self.sae_p_fire <= 1:
            raise PiamiValueError(f"sae_p_fire must be in (0, 1], got {self.sae_p_fire}")
        if len(self.mess3_x) != len(self.mess3_a) or not self.mess3_x:
            raise PiamiValueError("mess3_x and mess3_a must be non-empty and of equal length")
        for x, a in zip(self.mess3_x, self.mess3_a, strict=True):
            if not (0 < x < 0.5 and 0 <= a <= 1):
                raise PiamiValueError(f"Mess3 needs 0 < x < 0.5 and 0 <= a <= 1, got ({x}, {a})")
        if not self.sae_belief_k or any(
            k < 1 or k > self.sae_belief_latents for k in self.sae_belief_k
        ):
            raise PiamiValueError("sae_belief_k must hold values in [1, sae_belief_latents]")
        if not (
            self.twonn_tolerance > 0 and self.dimension_tolerance > 0 and self.train_budget_s > 0
        ):
            raise PiamiValueError("tolerances and train_budget_s must be > 0")
        if self.n_probe_seqs < 100:
            raise PiamiValueError(f"n_probe_seqs must be >= 100, got {self.n_probe_seqs}")


def run(cfg: Config, *, progress: bool = True) -> Result:
    with limit_threads(cfg.n_threads):
        return _run(cfg, progress=progress)


def _run(cfg: Config, *, progress: bool) -> Result:
    result = Result(
        experiment="instrument-calibration",
        config={},
        seed=cfg.seed,
        description=(
            "Each instrument is run on a system whose answer is known exactly, and its error is reported: "
            "CKA invariances; TwoNN and MLE on spheres of known dimension; box-counting and correlation "
            "dimension of a Sierpinski belief set; effective rank, deep-linear teacher modes and bilinear "
            "eigenfeatures; sparse autoencoders on data in superposition; the natural-latent uniqueness "
            "bound. Then the belief set of Mess3 at two settings: its fractal dimensions from theory beside "
            "the same dimension measured through a trained transformer and its linear probe, and an SAE on "
            "that residual stream against the probe."
        ),
    )
    rng = np.random.default_rng(cfg.seed)
    sections = [
        ("cka", truth.cka_section),
        ("dimension", truth.dimension_section),
        ("fractal", truth.fractal_section),
        ("weights", truth.weights_section),
        ("sae", truth.sae_section),
        ("natural_latents", truth.natural_latent_section),
    ]
    walls = {}
    for name, fn in sections:
        t0 = time.perf_counter()
        comps, metrics, fig_data = fn(cfg, np.random.default_rng([cfg.seed, len(result.metrics)]))
        walls[name] = time.perf_counter() - t0
        result.comparisons.extend(comps)
        result.metrics[name] = metrics
        fig, caption = plots.PLOTTERS[name](fig_data)
        result.add_figure(name, fig, caption)

    t0 = time.perf_counter()
    if cfg.network:
        belief_metrics, belief_pts = {}, {}
        for x, a in zip(cfg.mess3_x, cfg.mess3_a, strict=True):
            comps, metrics, pts = CB.network_section(x, a, cfg, rng, progress)
            result.comparisons.extend(comps)
            belief_metrics[f"mess3({x:g},{a:g})"] = metrics
            belief_pts[f"Mess3({x:g}, {a:g})"] = pts
        result.metrics["belief_geometry"] = belief_metrics
        fig, caption = plots.plot_beliefs(belief_pts, belief_metrics)
        result.add_figure("belief_dimensions", fig, caption)
    else:
        result.metrics["belief_geometry"] = "skipped (network=False)"
    walls["belief_geometry"] = time.perf_counter() - t0
    result.metrics["section_wall_s"] = walls
    return result


EXPERIMENT = Experiment(
    name="instrument-calibration",
    config_cls=Config,
    run=run,
    quick={
        "sae_samples": 8000,
        "sae_steps": 600,
        "bilinear_steps": 400,
        "n_random_tables": 100,
        "fractal_steps": 400,
        "fractal_chains": 8,
        "n_layers": 2,
        "d_model": 32,
        "train_steps": 300,
        "batch_size": 256,
        "train_budget_s": 8.0,
        "n_probe_seqs": 600,
        "sae_belief_latents": 64,
        "sae_belief_k": (4,),
        "dimension_tolerance": 0.3,
    },
    summary="each instrument (CKA, TwoNN/MLE, fractal dims, weights, SAEs, natural latents) on ground truth",
)
