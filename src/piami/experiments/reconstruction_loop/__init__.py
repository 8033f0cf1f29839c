"""Closing the loop: data -> reconstructed machine -> its beliefs -> what a network trained on the
same data carries (issue 15, item 4).

Synthetic part (truth known). A raw sample of a hidden Markov process (Mess3(0.05, 0.85) by
default) is reconstructed by CSSR (Shalizi & Klinkner 2004) at the default history length
(:func:`~piami.instruments.reconstruction.default_max_length`), and belief-geometry's Transformer
is trained on windows of the same raw sample, never on a machine. On fresh held-out sequences,
linear probes read four targets from its residual stream at every layer: the exact belief
``eta``, the reconstructed machine's belief ``rho`` (``machine.beliefs``; for a unifilar CSSR
machine one-hot once synchronized), and both as predictions of the next ``l`` symbols
(``eta V``, ``rho V_rec``; a presentation's predictions are its belief times a fixed matrix,
Upper 1997, Jaeger 2000).

Theory. Shai et al. 2024: a network trained to predict carries ``eta`` linearly. Any presentation
of the same process predicts the same futures, so for an exact reconstruction ``rho V_rec = eta V``
and ``eta`` is a linear function of ``rho``; but ``rho`` is not a linear function of ``eta`` (the
CSSR machine has dozens of states, the process 3 linear dimensions), so nothing predicts that
the network carries the belief vector ``rho`` itself: a network that carries exactly ``eta``
scores ``R²(rho | eta)`` on it, measured in the run without any network.

Rows (:mod:`.compare`): predictions on ``eta`` (issue 3's bar, R² >= 0.985), on ``rho V_rec``
(the same bar) and on the gap between the two predictive R² (a bound derived from the
reconstruction's error, measured without the network); the literal hypothesis "``rho`` is carried
as well as ``eta``" as a ``refuted`` row; a sanity row (``eta`` read linearly from ``rho``);
controls (untrained network below the bar, trained above untrained on ``rho``, shuffled beliefs).

Text part (``text=True``). Shakespeare mapped to vowel / consonant / space-or-newline / other
(:func:`~piami.processes.corpus.map_text`), the last tenth held out; CSSR and the same network
on the rest; the machine (states, entropy rate, statistical complexity in bits) in the metrics;
R² of the reconstructed beliefs and predictive beliefs by layer beside the position + last-k-token
lookups.
No exact truth exists on text, so its rows are controls and a sanity check: the trained network
carries more than the untrained one, shuffled beliefs score nothing, and the machine predicts
held-out text better than the symbol frequencies.

Broken ingredients: ``shuffle_beliefs=True`` (reconstructed beliefs permuted across rows) and
``n_steps=2`` both fail the run. One command runs the whole loop: ``piami run reconstruction-loop``.
"""

from __future__ import annotations

from piami.experiments.reconstruction_loop.compare import compare, predictive_gap_bound
from piami.experiments.reconstruction_loop.config import (
    R2_TOLERANCE,
    TEXT_ALPHABET,
    Config,
    belief_config,
)
from piami.experiments.reconstruction_loop.measure import (
    LoopMeasurements,
    map_text,
    measure,
    predictive_matrix,
)
from piami.experiments.reconstruction_loop.plots import figures
from piami.lab import Experiment


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    parts = []
    if cfg.synthetic:
        parts.append(
            f"CSSR reconstructs {cfg.process} from {cfg.n_samples:,} raw symbols; a "
            f"{cfg.n_layers}-layer transformer (d_model {cfg.d_model}) is trained on windows of "
            "the same raw sample, and linear probes read the exact beliefs, the reconstructed "
            "machine's beliefs and both machines' predictions of the next "
            f"{cfg.future_length} symbols from its residual stream."
        )
    if cfg.text:
        chars = "all of" if cfg.text_chars is None else f"{cfg.text_chars:,} characters of"
        parts.append(
            f"The same loop runs on {chars} Shakespeare mapped to vowel / consonant / space / "
            "other: CSSR's machine is reported and its beliefs probed in the network trained on "
            "the text, beside the untrained network and position + last-k-token lookups."
        )
    if cfg.shuffle_beliefs:
        parts.append("BROKEN INGREDIENT: reconstructed beliefs shuffled across rows.")
    return " ".join(parts)


EXPERIMENT = Experiment(
    name="reconstruction-loop",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={
        "n_samples": 1_000_000,
        "text_chars": 1_000_000,
        "n_layers": 2,
        "d_mlp": 128,
        "n_steps": 400,
        "batch_size": 128,
        "n_probe_seqs": 2000,
    },
    summary="data -> CSSR machine -> beliefs a network trained on the same data carries, "
    "on a known process and on Shakespeare",
)

__all__ = [
    "EXPERIMENT",
    "R2_TOLERANCE",
    "TEXT_ALPHABET",
    "Config",
    "LoopMeasurements",
    "belief_config",
    "compare",
    "describe",
    "figures",
    "map_text",
    "measure",
    "predictive_gap_bound",
    "predictive_matrix",
]
