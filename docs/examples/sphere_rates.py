"""A user's experiment made of sub-runs: how often TwoNN lands within 10%, as a rate over seeds.

The second example of docs/lab.md. It runs ``sphere-dimension`` (the module
``sphere_dimension``) once per seed and turns the seeds into one rate with its Clopper-Pearson
interval, against a bar stated before any run:

    PYTHONPATH=docs/examples PIAMI_PLUGINS=sphere_dimension,sphere_rates \
        piami run sphere-rates --quick --workers 2
"""

# --8<-- [start:plan]
from __future__ import annotations

from dataclasses import dataclass

from piami.lab import (
    Comparison,
    Experiment,
    Measurements,
    PlanOutcome,
    SubRun,
    binomial_interval,
)

RATE_BAR = 0.8  # a priori: at least 4 seeds in 5 within the tolerance


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the rate experiment (each seed's run: its own defaults)."""

    seed: int = 0  # sub-runs get seed * n_seeds + i: no two top-level seeds share one
    n_seeds: int = 5  # runs of sphere-dimension
    n_points: int = 2000  # passed on to every sub-run


def plan(cfg: Config) -> list[SubRun]:
    """One ``sphere-dimension`` run per seed; the runs layer may run them in
    parallel, or reuse those it has stored (same code, same config)."""
    seeds = range(cfg.seed * cfg.n_seeds, (cfg.seed + 1) * cfg.n_seeds)
    return [
        SubRun(
            key=f"seed={s}",
            experiment="sphere-dimension",
            overrides={"seed": s, "n_points": cfg.n_points},
        )
        for s in seeds
    ]


# --8<-- [end:plan]


# --8<-- [start:combine]
@dataclass(kw_only=True)
class RateMeasurements(Measurements):
    within: int = 0  # sub-runs whose prediction rows all passed
    decided: int = 0  # sub-runs that finished with every prediction decided


def combine(cfg: Config, outcome: PlanOutcome) -> RateMeasurements:
    """Count the seeds whose every prediction passed (``outcome.results``)."""
    m = RateMeasurements()
    for result in outcome.results.values():
        preds = [c for c in result.comparisons if c.kind == "prediction"]
        if all(c.passed is not None for c in preds):
            m.decided += 1
            m.within += all(c.passed for c in preds)
    m.metrics = {"within": m.within, "decided": m.decided}
    m.metrics["planned"] = outcome.n_planned
    return m


# --8<-- [end:combine]


# --8<-- [start:compare]
def compare(cfg: Config, m: RateMeasurements) -> list[Comparison]:
    """The rate against its bar; not identified unless every seed was decided."""
    n = max(m.decided, 1)
    return [
        Comparison(
            name="share of seeds whose TwoNN estimates all land within 10%",
            kind="prediction",
            predicted=RATE_BAR,
            measured=m.within / n,
            tolerance=0.0,
            sense="at_least",
            tolerance_source="a priori: 4 in 5, stated before any run",
            measured_interval=binomial_interval(m.within, n),
            not_identified="" if m.decided == cfg.n_seeds else "a seed is undecided",
            note=f"{m.within} of {m.decided} seeds",
        )
    ]


# --8<-- [end:compare]


# --8<-- [start:register]
EXPERIMENT = Experiment(
    name="sphere-rates",
    config_cls=Config,
    plan=plan,
    combine=combine,
    compare=compare,
    quick={"n_seeds": 3, "n_points": 1000},
    summary="rate over seeds of sphere-dimension runs whose rows all pass",
)
# --8<-- [end:register]
