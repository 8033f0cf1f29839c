"""Developmental stages: do the LLC curve's critical points line up with what the model learns?

Theory. Hoogland et al. (TMLR 2025, "Loss landscape degeneracy and stagewise development in
transformers") estimate the local learning coefficient (LLC, Lau et al. 2023, eq. 3) along the
training of a 2-layer attention-only language model and cut training into stages at the critical
points of the LLC against log step (its maxima, minima and plateaus). The stages they find end
where the model has learned bigram statistics, then n-grams and positions, then induction heads
(their LM: steps 900, 6.5k, 8.5k, 17k, 50k): the LLC is claimed to see development that the loss
alone hides.

Measurement, at laptop scale (:mod:`.measure`). piami's Transformer with two attention-only
layers is trained on Shakespeare in characters for a few thousand steps with log-spaced
checkpoints; at each, the LLC by localized SGLD (the same settings and seed throughout, its chain
spread, R-hat and Geweke diagnostics; a non-converged or negative estimate is flagged and left
out) and
independent markers (:mod:`.markers`): held-out loss, the bigram share (how much of what bigram
statistics add to character frequencies the model has learned), previous-token attention, and an
induction score on repeated random characters. :mod:`.stages` finds the critical points of the
LLC curve and of each marker after a local linear smoothing stated beforehand.

Comparison (:mod:`.compare`). A structure forms within a stage and the stage ends when it is
complete, so the events set beside the LLC's boundaries are the markers' own critical points
(where a marker levels off or turns): whether each lies within one checkpoint interval (in log
step) of an LLC boundary, and whether each LLC boundary lies near one; rows are not identified
when the chains' spread is too large to place a boundary or when a marker never forms. Whether
the step counts match Hoogland et al.'s is not the question. Controls: the boundaries' tolerance
windows must leave most of the log-step range uncovered (else any event would match by chance),
and a model trained on the same characters shuffled (no bigram, n-gram or repetition structure)
must show no induction rise, no bigram learning, and a lower final LLC. ``shuffle_text=True``
trains the main model on the shuffled text, a broken ingredient under which the bigram and
induction rows cannot pass.

Layout: :mod:`.config`, :mod:`.markers`, :mod:`.stages` (the critical-point finder),
:mod:`.measure`, :mod:`.analysis`, :mod:`.compare`, :mod:`.plots`.
"""

from __future__ import annotations

from piami.experiments.developmental_stages.analysis import ALIGNED, Analysis, analyse
from piami.experiments.developmental_stages.compare import analyses, compare
from piami.experiments.developmental_stages.config import Config
from piami.experiments.developmental_stages.markers import (
    bigram_model,
    induction_sequences,
    measure_markers,
)
from piami.experiments.developmental_stages.measure import StageMeasurements, measure
from piami.experiments.developmental_stages.plots import figures
from piami.experiments.developmental_stages.stages import (
    CriticalPoints,
    critical_points,
    local_linear,
    nearest_distance,
    transition_step,
)
from piami.lab import Experiment

__all__ = [
    "ALIGNED",
    "EXPERIMENT",
    "Analysis",
    "Config",
    "CriticalPoints",
    "StageMeasurements",
    "analyse",
    "analyses",
    "bigram_model",
    "compare",
    "critical_points",
    "describe",
    "figures",
    "induction_sequences",
    "local_linear",
    "measure",
    "measure_markers",
    "nearest_distance",
    "transition_step",
]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    text = (
        f"A 2-layer attention-only transformer (d_model {cfg.d_model}, {cfg.n_heads} heads, "
        f"context {cfg.n_ctx}) trained on Shakespeare characters for {cfg.n_steps} steps; at "
        f"{cfg.n_checkpoints} log-spaced checkpoints, the LLC ({cfg.llc_chains} SGLD chains, the "
        "same settings throughout) and independent markers (held-out loss, bigram share, "
        "previous-token attention, induction score). Stage boundaries are the critical points of "
        "the smoothed LLC curve (Hoogland et al., TMLR 2025); each marker's transition is set "
        f"beside them with a tolerance of one checkpoint interval ({cfg.tolerance():.2f} decades)."
    )
    if cfg.control:
        text += " The same analysis runs on a model trained on the characters shuffled."
    if cfg.shuffle_text:
        text += " BROKEN INGREDIENT: the main model is trained on shuffled text."
    return text


EXPERIMENT = Experiment(
    name="developmental-stages",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={
        "text_chars": 200_000,
        "n_ctx": 32,
        "n_steps": 200,
        "batch_size": 16,
        "n_checkpoints": 12,
        "llc_chains": 2,
        "llc_burnin": 10,
        "llc_draws": 50,
        "llc_windows": 64,
        "llc_batch": 4,
        "n_marker_windows": 16,
        "n_induction_seqs": 16,
    },
    summary=(
        "LLC stage boundaries along a 2-layer attention-only LM's training on Shakespeare, beside "
        "bigram, previous-token and induction markers, with a shuffled-text control"
    ),
)
