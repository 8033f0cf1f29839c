"""Instrument calibration: every instrument measured on systems whose answer is known exactly.

Interpretability instruments are used on networks whose answer nobody knows. Here each one first
meets ground truth (a prediction or sanity row with a stated tolerance) and a null it must tell
apart from that truth (a control row), in the same run:

* **CKA** (Kornblith et al. 2019): invariance to orthogonal maps and isotropic scaling (exact) for
  linear, RBF and debiased CKA; on independent representations the plug-in CKA sits at its
  finite-sample bias ``d / (n + d)`` and the debiased one at 0 (the null a biased estimator fails).
* **Intrinsic dimension**: TwoNN (Facco et al. 2017) and the Levina-Bickel MLE on spheres ``S^d``,
  ``d = 2..5``; the control is S^2 in R^10 with every coordinate shuffled (no manifold left).
  Box-counting and correlation dimension of the Sierpinski triangle (``log 3 / log 2``), drawn as
  the belief set of an HMM whose information dimension is exact; the control is the filled
  triangle (2).
* **Weights** (:mod:`.weights`): effective rank of a planted spectrum; a deep linear network
  recovers its teacher's modes (Saxe et al. 2014); a bilinear layer gives back planted features and
  eigenvalues (Pearce et al. 2024), its readout identities hold to float precision, and the
  untrained layer misses the bar.
* **SAEs** (:mod:`.sae`) on data in superposition: recovered fraction and MCC; an SAE on Gaussian
  noise with the same covariance recovers nothing.
* **Natural latents** (:mod:`.natural_latents`; Wentworth & Lorell): the uniqueness bound on
  random tables, the identities behind its two errors, the exhaustive search on a planted shared
  bit and on a blurred one.
* **Belief geometry** (:mod:`.beliefs`, :mod:`.belief_rows`; Mess3): the correlation dimension of
  a trained transformer's own residual stream, without a probe, beside the theory's dimension of
  the belief set, not identified where the network does not resolve its belief set; the untrained
  network is the null. An SAE on that residual stream beside the direct probe (metrics only: no
  bar).

Layout: each section is a pair ``measure_x(cfg, rng) -> XMeasured`` and ``compare_x(cfg, m)``
(CKA and intrinsic dimension in :mod:`.ground_truth`, the fractal set in :mod:`.fractal`, the
others in the modules named above), listed in :data:`SECTIONS`. :func:`measure` runs them in
order, each on its own generator, then the Mess3 settings; :func:`compare` and :func:`figures`
(drawn by :mod:`.plots`) are pure functions of the measurements. The settings are in
:mod:`.config`.

Everything is seeded from ``Config.seed``; no wall-clock limit changes what is computed (section
wall times go to ``Result.timing``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.experiments.instrument_calibration.belief_rows import compare_beliefs
from piami.experiments.instrument_calibration.beliefs import BeliefMeasured, measure_beliefs
from piami.experiments.instrument_calibration.config import QUICK, Config
from piami.experiments.instrument_calibration.fractal import (
    FractalMeasured,
    compare_fractal,
    measure_fractal,
)
from piami.experiments.instrument_calibration.ground_truth import (
    CkaMeasured,
    DimensionMeasured,
    compare_cka,
    compare_dimension,
    measure_cka,
    measure_dimension,
)
from piami.experiments.instrument_calibration.natural_latents import (
    NaturalLatentsMeasured,
    compare_natural_latents,
    measure_natural_latents,
)
from piami.experiments.instrument_calibration.plots import (
    plot_beliefs,
    plot_cka,
    plot_dimension,
    plot_fractal,
    plot_natural_latents,
    plot_sae,
    plot_weights,
)
from piami.experiments.instrument_calibration.sae import SaeMeasured, compare_sae, measure_sae
from piami.experiments.instrument_calibration.weights import (
    WeightsMeasured,
    compare_weights,
    measure_weights,
)
from piami.lab import Comparison, Experiment, FigureSpec, Measurements
from piami.models import limit_threads


@dataclass(frozen=True)
class Section:
    """One section of ground truth: its name (in metrics and figures) and its three functions."""

    name: str
    measure: Callable[[Config, np.random.Generator], Any]
    compare: Callable[[Config, Any], list[Comparison]]
    plot: Callable[[Any], FigureSpec]


#: The sections in run order; section ``i`` draws from ``default_rng([seed, i])``.
SECTIONS = (
    Section("cka", measure_cka, compare_cka, plot_cka),
    Section("dimension", measure_dimension, compare_dimension, plot_dimension),
    Section("fractal", measure_fractal, compare_fractal, plot_fractal),
    Section("weights", measure_weights, compare_weights, plot_weights),
    Section("sae", measure_sae, compare_sae, plot_sae),
    Section(
        "natural_latents", measure_natural_latents, compare_natural_latents, plot_natural_latents
    ),
)


@dataclass(kw_only=True)
class CalibrationMeasurements(Measurements):
    """What every section measured (one field per entry of :data:`SECTIONS`).

    Attributes:
        beliefs: one entry per Mess3 setting (empty when ``cfg.network`` is False).
    """

    cka: CkaMeasured
    dimension: DimensionMeasured
    fractal: FractalMeasured
    weights: WeightsMeasured
    sae: SaeMeasured
    natural_latents: NaturalLatentsMeasured
    beliefs: list[BeliefMeasured] = field(default_factory=list)


def measure(cfg: Config, *, progress: bool = True) -> CalibrationMeasurements:
    """Run every section on its own generator, then train and measure each Mess3 setting."""
    walls: dict[str, float] = {}
    measured: dict[str, Any] = {}
    with limit_threads(cfg.n_threads):
        for i, section in enumerate(SECTIONS):
            t0 = time.perf_counter()
            measured[section.name] = section.measure(cfg, np.random.default_rng([cfg.seed, i]))
            walls[section.name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        beliefs = []
        if cfg.network:
            rng = np.random.default_rng([cfg.seed, len(SECTIONS)])
            beliefs = measure_beliefs(cfg, rng, progress)
        walls["belief_geometry"] = time.perf_counter() - t0
    metrics: dict[str, Any] = {name: m.metrics() for name, m in measured.items()}
    timing: dict[str, Any] = {}
    if cfg.network:
        metrics["belief_geometry"] = {b.key: b.metrics() for b in beliefs}
        timing["belief_train_wall_s"] = {b.key: b.train_wall_s for b in beliefs}
    else:
        metrics["belief_geometry"] = "skipped (network=False)"
    timing["section_wall_s"] = walls
    return CalibrationMeasurements(**measured, beliefs=beliefs, metrics=metrics, timing=timing)


def compare(cfg: Config, m: CalibrationMeasurements) -> list[Comparison]:
    """Every section's rows, in :data:`SECTIONS` order, then those of each Mess3 setting."""
    rows = [row for s in SECTIONS for row in s.compare(cfg, getattr(m, s.name))]
    return rows + compare_beliefs(cfg, m.beliefs)


def figures(cfg: Config, m: CalibrationMeasurements) -> list[FigureSpec]:
    """One figure per section, and the belief sets beside the residual streams."""
    specs = [s.plot(getattr(m, s.name)) for s in SECTIONS]
    if m.beliefs:
        specs.append(plot_beliefs(m.beliefs))
    return specs


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        "Each instrument is run on a system whose answer is known exactly, and beside a null it "
        "must tell apart from that answer: CKA invariances and its independent-representation "
        "null; TwoNN and MLE on spheres and on a shuffled cloud; box-counting and correlation "
        "dimension of a Sierpinski belief set and of the filled triangle; effective rank, "
        "deep-linear teacher modes, bilinear eigenfeatures and identities and the untrained "
        "layer; sparse autoencoders on data in superposition and on matched noise; the "
        "natural-latent bound, identities and search. Then the belief set of Mess3: its dimension "
        "from theory beside the correlation dimension of a trained transformer's own residual "
        "stream (no probe), with the untrained network as the null."
    )


EXPERIMENT = Experiment(
    name="instrument-calibration",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick=QUICK,
    summary="each instrument (CKA, TwoNN/MLE, fractal dims, weights, SAEs, natural latents) on "
    "ground truth and a null",
)

__all__ = [
    "EXPERIMENT",
    "SECTIONS",
    "CalibrationMeasurements",
    "Config",
    "Section",
    "compare",
    "describe",
    "figures",
    "measure",
]
