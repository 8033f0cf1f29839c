"""piami.instruments: measurements of data and networks, each named after its theory twin.

Instruments take arrays (activations, weights, token sequences), so they work on any model. Every
one is calibrated on a system whose answer is known (see the ``instrument-calibration`` and
``llc-calibration`` experiments) before it is trusted on one whose answer is not.

The fitted ones (:class:`LinearProbe`, :class:`LLCEstimator`, :class:`SparseAutoencoder`,
:class:`TwoNN`, :class:`LevinaBickelMLE`, :class:`PowerLawFit`) follow scikit-learn's estimator
contract, stated in :mod:`piami.instruments.contract`: the constructor stores hyperparameters,
``fit`` returns ``self`` and sets attributes ending in ``_``, ``score`` is a float, randomness
comes from ``random_state``.

Names are imported lazily, so ``import piami.instruments`` stays cheap; e.g.
``from piami.instruments import LinearProbe, cka, twonn_dimension``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "contract": ("NotFittedError", "PiamiEstimator", "check_random_state"),
    "probes": ("LinearProbe", "r2_scores"),
    "belief_probe": ("BeliefProbeReport", "predictor_kl", "probe_beliefs"),
    "by_layer": (
        "causal_lm_loss",
        "cka_by_layer",
        "dimension_by_layer",
        "flatten_positions",
        "next_token_data",
    ),
    "curves": ("first_crossing", "loglog_slope", "loglog_slope_interval"),
    "learning_coefficient": ("LLCEstimator",),
    "statistics": ("lagged_correlations", "CorrelationProfile"),
    "entropy": (
        "conditional_entropies",
        "EntropyProfile",
        "entropy_plugin",
        "entropy_miller_madow",
        "entropy_nsb",
    ),
    "scaling": ("PowerLawFit",),
    "exponents": ("fit_beta", "fit_gamma", "predict_alpha_d", "measure_statistics"),
    "geometry": ("cka", "cka_from_kernels", "hsic", "kernel_matrix", "center_kernel"),
    "dimension": (
        "TwoNN",
        "LevinaBickelMLE",
        "twonn_dimension",
        "mle_dimension",
        "h0_persistence",
        "persistence_diagrams",
        "DimensionEstimate",
    ),
    "weights": (
        "singular_spectrum",
        "effective_rank",
        "compare_modes",
        "end_to_end",
        "bilinear_interaction",
        "bilinear_eigendecomposition",
        "recovered_features",
    ),
    "sae": (
        "SparseAutoencoder",
        "make_superposition",
        "feature_recovery",
        "match_directions",
        "explained_variance",
    ),
    "percolation": (
        "PercolationCheck",
        "degree_check",
        "fit_cluster_exponent",
        "mass_radius_dimension",
        "tree_shape_check",
    ),
    "fourier": (
        "fourier_basis",
        "frequency_spectrum",
        "embedding_spectrum",
        "key_frequencies",
        "sum_frequency_basis",
        "project_sum_frequencies",
        "remove_sum_frequencies",
        "restricted_loss",
        "excluded_loss",
        "logit_variance_explained",
        "grid_cross_entropy",
        "grid_accuracy",
    ),
}

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'piami.instruments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"piami.instruments.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
