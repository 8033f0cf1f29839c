"""piami.theory: the exact side, float64 numpy/scipy only (never imports torch)."""

from piami.theory.beliefs import belief_trajectories, stationary_distribution
from piami.theory.information import (
    LN2,
    EntropyRate,
    block_entropies,
    conditional_entropy_bounds,
    entropy,
    entropy_rate,
    entropy_rate_blackwell,
    excess_entropy,
    is_unifilar,
    myopic_entropies,
    statistical_complexity,
    to_bits,
)
from piami.theory.learning_curves import (
    KernelCurve,
    asymptotic_exponent,
    kernel_learning_curve,
    power_law_spectrum,
)
from piami.theory.mixed_state import (
    BeliefLayers,
    MixedStatePresentation,
    belief_layers,
    mixed_state_presentation,
    unsynchronized_probability,
)
from piami.theory.percolation import CAYLEY_SHAPES_6, cluster_size_pmf, mean_tree_distance
from piami.theory.random_features import (
    RandomFeatureCurve,
    random_feature_learning_curve,
    random_feature_spectrum,
)
from piami.theory.scaling import alpha_d, collapse, power_law, predicted_loss, resolvable_context

__all__ = [
    "CAYLEY_SHAPES_6",
    "LN2",
    "BeliefLayers",
    "EntropyRate",
    "KernelCurve",
    "MixedStatePresentation",
    "RandomFeatureCurve",
    "alpha_d",
    "asymptotic_exponent",
    "belief_layers",
    "belief_trajectories",
    "block_entropies",
    "cluster_size_pmf",
    "collapse",
    "conditional_entropy_bounds",
    "entropy",
    "entropy_rate",
    "entropy_rate_blackwell",
    "excess_entropy",
    "is_unifilar",
    "kernel_learning_curve",
    "mean_tree_distance",
    "mixed_state_presentation",
    "myopic_entropies",
    "power_law",
    "power_law_spectrum",
    "predicted_loss",
    "random_feature_learning_curve",
    "random_feature_spectrum",
    "resolvable_context",
    "stationary_distribution",
    "statistical_complexity",
    "to_bits",
    "unsynchronized_probability",
]
