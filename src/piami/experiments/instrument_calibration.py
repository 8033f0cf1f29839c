"""Instrument calibration: every instrument measured on systems whose answer is known exactly.

Interpretability instruments are used on networks whose answer nobody knows. Here each one first
meets ground truth (a prediction or sanity row with a stated tolerance) and a null it must tell
apart from that truth (a control row), in the same run:

* **CKA** (Kornblith et al. 2019): invariance to orthogonal maps and isotropic scaling (exact) for
  linear, RBF and debiased CKA; on independent representations the plug-in CKA sits at its
  finite-sample bias ``d / (n + d)`` and the debiased one at 0 (the null a biased estimator fails).
* **Intrinsic dimension**: TwoNN (Facco et al. 2017) and the Levina-Bickel MLE on spheres ``S^d``,
  ``d = 2..5``; the control is S^2 in R^10 with every coordinate shuffled (no manifold left).
  Box-counting and correlation dimension of the Sierpinski triangle (``log 3 / log 2``), drawn as the
  belief set of an HMM whose information dimension is exact; the control is the filled triangle (2).
* **Weights** (:mod:`._calibration_weights`): effective rank of a planted spectrum; a deep linear
  network recovers its teacher's modes (Saxe et al. 2014); a bilinear layer gives back planted
  features and eigenvalues (Pearce et al. 2024), its readout identities hold to float precision,
  and the untrained layer misses the bar.
* **SAEs** on data in superposition: recovered fraction and MCC; an SAE on Gaussian noise with the
  same covariance recovers nothing.
* **Natural latents** (Wentworth & Lorell): the uniqueness bound on random tables, the identities
  behind its two errors, the exhaustive search on a planted shared bit and on a blurred one.
* **Belief geometry** (:mod:`._calibration_beliefs`, Mess3): the correlation dimension of a trained
  transformer's own residual stream, without a probe, beside the theory's dimension of the belief
  set, not identified where the network does not resolve its belief set; the untrained network is
  the null. An SAE on that residual stream beside the direct probe (metrics only: no bar).

Everything is seeded from ``Config.seed``; no wall-clock limit changes what is computed (section
wall times go to ``Result.timing``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments import _calibration_beliefs as CB
from piami.experiments import _calibration_plots as plots
from piami.experiments import _calibration_truth as truth
from piami.experiments import _calibration_weights as weights
from piami.lab import Experiment, Result
from piami.models.device import limit_threads

SECTIONS = (
    ("cka", truth.cka_section),
    ("dimension", truth.dimension_section),
    ("fractal", truth.fractal_section),
    ("weights", weights.weights_section),
    ("sae", weights.sae_section),
    ("natural_latents", truth.natural_latent_section),
)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the instrument-calibration experiment."""

    seed: int = 0  # seeds every draw, initialization and training stream
    n_points: int = 2000  # points per manifold for TwoNN / MLE (the bar is at 2,000)
    twonn_tolerance: float = 0.05  # relative error allowed for TwoNN and MLE at d = 2..5
    n_twonn_draws: int = 5  # independent point clouds per dimension
    sae_samples: int = 20000  # superposition samples
    sae_features: int = 64  # known features (random unit directions)
    sae_dim: int = 32  # ambient dimension (< sae_features: superposition)
    sae_p_fire: float = 0.047  # Bernoulli firing probability per feature (~3 active)
    sae_latents: int = 128  # SAE dictionary size
    sae_steps: int = 1500  # Adam steps per SAE
    bilinear_steps: int = 1500  # AdamW steps for the bilinear layer
    n_random_tables: int = 300  # random tables for the natural-latent bound and identities
    fractal_steps: int = 1500  # belief-update steps per chain (after burn-in)
    fractal_chains: int = 16  # chains per subset
    n_subsets: int = 5  # disjoint subsets for the intervals
    network: bool = True  # train the belief-geometry model (Mess3 sections)
    mess3_x: tuple[float, ...] = (0.05, 0.15)  # Mess3 x of each setting
    mess3_a: tuple[float, ...] = (0.85, 0.6)  # Mess3 a of each setting
    n_ctx: int = 10  # context of the belief model
    n_layers: int = 4  # transformer blocks
    d_model: int = 64  # residual width
    train_steps: int = 2000  # optimizer steps per belief model (no wall-clock limit)
    batch_size: int = 512  # sequences per step
    n_probe_seqs: int = 3000  # held-out sequences for the SAE and probe (as many again to score)
    n_dim_seqs: int = 4000  # held-out contexts whose last residual vectors are measured
    dimension_quantiles: tuple[float, float] = (0.01, 0.1)  # pair-distance quantiles of the radii
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
            "n_layers", "d_model", "train_steps", "batch_size", "n_probe_seqs", "n_dim_seqs",
            "sae_belief_latents",
        )  # fmt: skip
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_points < 100:
            raise PiamiValueError(
                f"n_points must be >= 100 (TwoNN needs a cloud), got {self.n_points}"
            )
        if not isinstance(self.n_subsets, int) or self.n_subsets < 2:
            raise PiamiValueError(f"n_subsets must be an integer >= 2, got {self.n_subsets!r}")
        if self.fractal_chains < 2 or self.n_twonn_draws < 2:
            raise PiamiValueError(
                "fractal_chains and n_twonn_draws must be >= 2 (their spread gives the errors)"
            )
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
        q = self.dimension_quantiles
        if len(q) != 2 or not 0 < q[0] < q[1] < 1:
            raise PiamiValueError(
                f"dimension_quantiles must be (low, high) with 0 < low < high < 1, got {q}"
            )
        if not (self.twonn_tolerance > 0 and self.dimension_tolerance > 0):
            raise PiamiValueError("twonn_tolerance and dimension_tolerance must be > 0")
        if self.n_probe_seqs < 100 or self.n_dim_seqs < 50 * self.n_subsets:
            raise PiamiValueError(
                f"n_probe_seqs must be >= 100 and n_dim_seqs >= 50 * n_subsets, got "
                f"{self.n_probe_seqs} and {self.n_dim_seqs}"
            )


def run(cfg: Config, *, progress: bool = True) -> Result:
    with limit_threads(cfg.n_threads):
        return _run(cfg, progress=progress)


def _run(cfg: Config, *, progress: bool) -> Result:
    result = Result(
        experiment="instrument-calibration",
        config={},
        seed=cfg.seed,
        description=(
            "Each instrument is run on a system whose answer is known exactly, and beside a null it "
            "must tell apart from that answer: CKA invariances and its independent-representation null; "
            "TwoNN and MLE on spheres and on a shuffled cloud; box-counting and correlation dimension of a "
            "Sierpinski belief set and of the filled triangle; effective rank, deep-linear teacher modes, "
            "bilinear eigenfeatures and identities and the untrained layer; sparse autoencoders on data in "
            "superposition and on matched noise; the natural-latent bound, identities and search. Then the "
            "belief set of Mess3: its dimension from theory beside the correlation dimension of a trained "
            "transformer's own residual stream (no probe), with the untrained network as the null."
        ),
    )
    walls = {}
    for i, (name, fn) in enumerate(SECTIONS):
        t0 = time.perf_counter()
        comps, metrics, fig_data = fn(cfg, np.random.default_rng([cfg.seed, i]))
        walls[name] = time.perf_counter() - t0
        result.comparisons.extend(comps)
        result.metrics[name] = metrics
        fig, caption = plots.PLOTTERS[name](fig_data)
        result.add_figure(name, fig, caption)

    t0 = time.perf_counter()
    if cfg.network:
        rng = np.random.default_rng([cfg.seed, len(SECTIONS)])
        belief_metrics, belief_pts, train_walls = {}, {}, {}
        for x, a in zip(cfg.mess3_x, cfg.mess3_a, strict=True):
            comps, metrics, pts, timing = CB.network_section(x, a, cfg, rng, progress)
            result.comparisons.extend(comps)
            belief_metrics[f"mess3({x:g},{a:g})"] = metrics
            belief_pts[f"Mess3({x:g}, {a:g})"] = pts
            train_walls[f"mess3({x:g},{a:g})"] = timing["train_wall_s"]
        result.metrics["belief_geometry"] = belief_metrics
        result.timing["belief_train_wall_s"] = train_walls
        fig, caption = plots.plot_beliefs(belief_pts)
        result.add_figure("belief_dimensions", fig, caption)
    else:
        result.metrics["belief_geometry"] = "skipped (network=False)"
    walls["belief_geometry"] = time.perf_counter() - t0
    result.timing["section_wall_s"] = walls
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
        "mess3_x": (0.15,),
        "mess3_a": (0.6,),
        "n_layers": 2,
        "d_model": 32,
        "train_steps": 150,
        "batch_size": 256,
        "n_probe_seqs": 600,
        "n_dim_seqs": 2000,
        "sae_belief_latents": 64,
        "sae_belief_k": (4,),
    },
    summary="each instrument (CKA, TwoNN/MLE, fractal dims, weights, SAEs, natural latents) on ground truth and a null",
)
