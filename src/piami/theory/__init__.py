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
from piami.theory.mixed_state import (
    BeliefLayers,
    MixedStatePresentation,
    belief_layers,
    mixed_state_presentation,
    unsynchronized_probability,
)
from piami.theory.scaling import alpha_d, collapse, power_law, predicted_loss, resolvable_context

__all__ = [
    "LN2",
    "BeliefLayers",
    "EntropyRate",
    "MixedStatePresentation",
    "alpha_d",
    "belief_layers",
    "belief_trajectories",
    "block_entropies",
    "collapse",
    "conditional_entropy_bounds",
    "entropy",
    "entropy_rate",
    "entropy_rate_blackwell",
    "excess_entropy",
    "is_unifilar",
    "mixed_state_presentation",
    "myopic_entropies",
    "power_law",
    "predicted_loss",
    "resolvable_context",
    "stationary_distribution",
    "statistical_complexity",
    "to_bits",
    "unsynchronized_probability",
]
