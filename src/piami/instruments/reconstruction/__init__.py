"""Reconstruction: from a symbol sequence to a minimal predictive model of the process behind it.

Computational mechanics (Shalizi & Crutchfield 2001) names the minimal sufficient statistic of the
past, the causal states; reconstruction estimates them from samples. Each method returns a
:class:`~piami.instruments.reconstruction.result.Reconstruction` whose ``machine`` is a piami
process, so every exact tool (beliefs, entropy rate, statistical complexity, excess entropy, the
mixed-state presentation) applies to the reconstructed model:

- :mod:`~piami.instruments.reconstruction.cssr`: Causal-State Splitting Reconstruction
  (Shalizi & Klinkner 2004);
- :mod:`~piami.instruments.reconstruction.spectral`: observable-operator learning from the Hankel
  matrix (:mod:`~piami.instruments.reconstruction.hankel`; Hsu, Kakade & Zhang 2009), a
  generalized HMM;
- :mod:`~piami.instruments.reconstruction.bsi`: Bayesian structural inference over topological
  epsilon-machines (Strelioff & Crutchfield 2014);
- :mod:`~piami.instruments.reconstruction.transducer`: CSSR over input-output pairs, returning an
  epsilon-transducer (Barnett & Crutchfield 2015).
"""

from piami.instruments.reconstruction.bsi import bsi
from piami.instruments.reconstruction.cssr import cssr
from piami.instruments.reconstruction.hankel import (
    EmpiricalWordProbabilities,
    empirical_word_probabilities,
    exact_hankel_rank,
    hankel_matrix,
)
from piami.instruments.reconstruction.result import Reconstruction, default_max_length
from piami.instruments.reconstruction.score import (
    ExcessLogLoss,
    excess_log_loss,
    kl_rate_unifilar,
    smoothed,
)
from piami.instruments.reconstruction.spectral import observable_operator_model, spectral
from piami.instruments.reconstruction.summary import (
    block_bootstrap,
    machine_measures,
    machine_record,
    state_diagram_dot,
)
from piami.instruments.reconstruction.topological import (
    candidate_estimate,
    canonical_form,
    count_topological_machines,
    is_topological_machine,
    topological_machines,
)
from piami.instruments.reconstruction.transducer import (
    TransducerReconstruction,
    cssr_transducer,
)

__all__ = [
    "EmpiricalWordProbabilities",
    "ExcessLogLoss",
    "Reconstruction",
    "TransducerReconstruction",
    "block_bootstrap",
    "bsi",
    "candidate_estimate",
    "canonical_form",
    "count_topological_machines",
    "cssr",
    "cssr_transducer",
    "default_max_length",
    "empirical_word_probabilities",
    "exact_hankel_rank",
    "excess_log_loss",
    "hankel_matrix",
    "is_topological_machine",
    "kl_rate_unifilar",
    "machine_measures",
    "machine_record",
    "observable_operator_model",
    "smoothed",
    "spectral",
    "state_diagram_dot",
    "topological_machines",
]
