"""The rows of the modular-addition experiment: one seed's, the controls, and the rates over seeds.

Pure functions of the measurements (no training), so they are unit-tested on made-up numbers:

- :func:`seed_rows`: one seed's events as predictions against the bars of
  :mod:`.config` (held-out accuracy, grokking delay, width of the rise, key-frequency FVE; Nanda et
  al. 2023), not identified without a grokking event;
- :func:`control_rows`: a shuffled-label run's held-out accuracy within four binomial standard
  errors of chance, and its key frequencies short of the FVE bar;
- :func:`compare`: the whole experiment's rows, the share of seeds with each event against
  :data:`~.config.RATE_BAR` with its Clopper-Pearson interval (not identified while a seed may
  still grok), and the control's rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from piami.experiments.modular_addition.config import (
    HORIZON_LR_WD,
    MIN_DELAY,
    MIN_FVE,
    MIN_TEST_ACC,
    RATE_BAR,
    REFERENCE,
    SHARP_WIDTH,
    Config,
    SeedConfig,
    horizon_epochs,
)
from piami.lab import Comparison, binomial_interval

if TYPE_CHECKING:
    from piami.experiments.modular_addition.combine import ModularMeasurements

RATE_SOURCE = (
    "a priori: at least 4 of 5 seeds, stated before any run (Nanda et al. see grokking with key "
    "frequencies in every seed of their recipe)"
)
#: The rates over seeds: (row name, the seed's event counted, what the counted seeds did).
RATES = (
    (
        "share of seeds that grok: held-out accuracy >= 90%, novel pairs at least twice as late "
        "as the training pairs",
        "grokked",
        "generalized and were delayed",
    ),
    (
        "share of seeds that generalize with a sharp rise, width <= 0.5",
        "sharp",
        "generalized sharply",
    ),
    (
        "share of seeds whose key frequencies explain >= 90% of held-out logit variance",
        "fourier",
        "generalized through their key frequencies",
    ),
)


def undecided_reason(cfg: SeedConfig, m: dict[str, Any]) -> str:
    """Why a seed's grokking rows cannot be decided, or '' when they can."""
    if m["events"]["generalized"]:
        return ""
    why = f"held-out accuracy {m['test_acc_final']:.3f} < {MIN_TEST_ACC} at epoch {cfg.n_epochs}"
    if not m["events"]["decided"]:
        why += f", before the horizon {m['horizon_epochs']:.0f} epochs (it may still grok)"
    return why + ": no grokking event to time or read out"


def seed_rows(cfg: SeedConfig, m: dict[str, Any]) -> list[Comparison]:
    """One seed's rows: its events as predictions (not identified without a grokking event).

    Args:
        cfg: the seed's config.
        m: the seed's metrics (:func:`piami.experiments.modular_addition.seed.read_out`).
    """
    why = undecided_reason(cfg, m)
    common = {"kind": "prediction", "tolerance": 0.0, "reference": REFERENCE}
    return [
        Comparison(
            name="held-out accuracy at the last epoch",
            predicted=MIN_TEST_ACC,
            measured=m["test_acc_final"],
            sense="at_least",
            tolerance_source="a priori: 90% of the held-out pairs, stated before any run",
            not_identified="" if m["events"]["decided"] else why,
            note=f"horizon {m['horizon_epochs']:.0f} epochs = {HORIZON_LR_WD:g} / (lr wd)",
            **common,
        ),
        Comparison(
            name="grokking delay, t50(novel held-out pairs) / t50(training pairs)",
            predicted=MIN_DELAY,
            measured=m["delay"],
            sense="at_least",
            not_identified=why,
            tolerance_source="a priori: generalization at least twice as late as memorization",
            note="novel: held-out pairs whose mirror (b, a) was not trained either",
            **common,
        ),
        Comparison(
            name="width of the novel-pair accuracy rise, (t90 - t10) / t50",
            predicted=SHARP_WIDTH,
            measured=m["width"],
            sense="at_most",
            not_identified=why,
            tolerance_source="derived: a smooth 1 - exp(-t/tau) has width 3.17; sharp is 6x less",
            note=f"t_x interpolated between evaluations every {cfg.eval_every} epochs",
            **common,
        ),
        Comparison(
            name="share of held-out logit variance in the key frequencies",
            predicted=MIN_FVE,
            measured=m["test_fve_final"],
            sense="at_least",
            not_identified=why,
            tolerance_source="a priori: the issue's 90% bar",
            note=f"key frequencies {m['key_frequencies']} read off the embedding (none: 0)",
            **common,
        ),
    ]


def control_rows(cfg: SeedConfig, m: dict[str, Any]) -> list[Comparison]:
    """Rows of a shuffled-label run: held-out accuracy at chance and no Fourier read-out.

    Args:
        cfg: the run's config (``p`` gives chance, ``1/p``).
        m: the run's metrics: ``test_acc_final``, ``test_fve_final``, ``n_test``.
    """
    chance = 1.0 / cfg.p
    se = math.sqrt(chance * (1 - chance) / m["n_test"])
    note = "answers permuted over all pairs after the split: nothing to generalize"
    return [
        Comparison(
            name="shuffled labels: held-out accuracy at the last epoch",
            kind="control",
            predicted=chance,
            measured=m["test_acc_final"],
            tolerance=4 * se,
            sense="at_most",
            tolerance_source=f"derived: 4 binomial standard errors of chance 1/p on {m['n_test']} "
            "held-out pairs",
            note=note,
            reference=REFERENCE,
        ),
        Comparison(
            name="shuffled labels: share of held-out logit variance in the key frequencies",
            kind="control",
            predicted=MIN_FVE,
            measured=m["test_fve_final"],
            tolerance=0.0,
            sense="at_most",
            reference=REFERENCE,
            note=note,
            tolerance_source=(
                "a priori: the 90% bar a trained seed must reach, not reached by a null"
            ),
        ),
    ]


def rate_row(
    name: str, event: str, seeds: dict[str, dict[str, Any]], cfg: Config, what: str
) -> Comparison:
    """A rate over seeds of one event, against :data:`RATE_BAR`; not identified if a seed is
    undecided (it had not generalized when training stopped before the horizon).

    Args:
        name: the row's name.
        event: the key of the seed's ``metrics["events"]`` counted.
        seeds: sub-run key -> that seed's metrics.
        cfg: the experiment's config.
        what: what the counted seeds did, for the note.
    """
    events = {k: m["events"] for k, m in seeds.items()}
    k = sum(bool(ev[event]) for ev in events.values())
    n = len(events)
    undecided = [key for key, ev in events.items() if not ev["decided"]]
    why = ""
    if n == 0:
        why = "no seed's run finished"
    elif undecided:
        horizon = horizon_epochs(cfg)
        why = (
            f"{len(undecided)} of {n} seeds had not generalized when training stopped at epoch "
            f"{cfg.n_epochs}, before the horizon {horizon:.0f} = {HORIZON_LR_WD:g} / (lr wd) "
            "epochs: they may still grok, so the rate is not known"
        )
    hits = ", ".join(key for key, ev in events.items() if ev[event]) or "none"
    return Comparison(
        name=name,
        kind="prediction",
        predicted=RATE_BAR,
        measured=k / n if n else None,
        measured_interval=binomial_interval(k, n) if n else None,
        tolerance=0.0,
        tolerance_source=RATE_SOURCE,
        sense="at_least",
        unit="share of seeds",
        reference=REFERENCE,
        not_identified=why,
        note=f"{k} of {n} seeds {what} ({hits}); per-seed numbers in metrics['seeds']",
    )


def compare(cfg: Config, m: ModularMeasurements) -> list[Comparison]:
    """The rates over seeds (:data:`RATES`), then the shuffled-label control's rows (not
    identified, with the reason, when the control run failed)."""
    rows = [rate_row(name, event, m.seeds, cfg, what) for name, event, what in RATES]
    if m.control is not None:
        return rows + control_rows(cfg, m.control)
    why = f"the control run failed: {m.control_failure or 'missing'}"
    n_test = cfg.p * cfg.p - round(cfg.frac_train * cfg.p * cfg.p)
    placeholder = {"test_acc_final": None, "test_fve_final": None, "n_test": n_test}
    return rows + [
        dataclasses.replace(c, measured=None, not_identified=why)
        for c in control_rows(cfg, placeholder)
    ]
