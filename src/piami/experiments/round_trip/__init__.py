"""The round trip: piami's Mess3 network exported to Hugging Face, reloaded, and measured again.

A user who trusts piami's instruments on piami's models should be able to trust them on their own.
This experiment closes that loop on the belief-geometry network (Shai et al. 2024): trained as
belief-geometry trains it (:func:`~piami.experiments.belief_geometry.train_belief_model`; the
quick variant trains its quick network), written as an exactly equivalent GPT-2 folder
(:func:`~piami.models.save_huggingface`), reloaded through ``transformers``, and read through
piami's hooks and through the Hugging Face path by the same TransformerLens names and the same
instruments: the residual stream, probe R² of the exact beliefs by layer
(:func:`~piami.instruments.probe_beliefs`), KL to the exact predictor, linear CKA between layers,
TwoNN by layer, and the LLC (same seed and SGLD settings; through the export map, in piami's
coordinates, :mod:`.export_map`).

Rows (:mod:`.compare`): each deterministic reading agrees within twice the float32 rounding of
the two paths, measured against their float64 twins; the LLC within the 95% spread of two means of
its chains. Control: a deliberately broken export (``W_Q`` not rescaled, so attention logits are
off by ``sqrt(d_model / d_head)``) runs through the same readings and must differ beyond the same
budgets. Settings: :mod:`.config`; measurements: :mod:`.measure`.
"""

from __future__ import annotations

from piami.experiments.round_trip.compare import compare, control_rows, path_rows
from piami.experiments.round_trip.config import QUICK, Config
from piami.experiments.round_trip.measure import RoundTripMeasurements, measure
from piami.experiments.round_trip.plots import figures
from piami.lab import Experiment


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        f"The belief-geometry network ({cfg.n_layers} layers, Mess3) is exported as a Hugging "
        "Face GPT-2 folder, reloaded through transformers, and measured through piami's hooks "
        "and through the reloaded model with the same instruments on the same sequences: the "
        "residual stream by TransformerLens names, probe R² of the exact beliefs by layer, KL to "
        "the exact predictor, linear CKA between layers, TwoNN by layer and the LLC (same seed "
        f"and SGLD settings, {cfg.llc_chains} chains). Each reading must agree within the float32 "
        "rounding of the two paths (measured against their float64 twins), the LLC within the "
        "spread of its chains. Control: an export with W_Q not rescaled must fail the same rows."
    )


EXPERIMENT = Experiment(
    name="round-trip",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick=QUICK,
    summary="piami's Mess3 network exported to Hugging Face and reloaded: the same instrument "
    "readings on both paths",
)

__all__ = [
    "EXPERIMENT",
    "Config",
    "RoundTripMeasurements",
    "compare",
    "control_rows",
    "describe",
    "figures",
    "measure",
    "path_rows",
]
