"""The plan of the modular-addition experiment (one run per seed and a shuffled-label control) and
the step that gathers their results into :class:`ModularMeasurements`.

Each sub-run is ``modular-addition-seed`` (:mod:`.seed`) with the experiment's settings; the seeds
are ``seed * n_seeds + i``, so different top-level seeds never share a run, and the control trains
on the first seed's split and initial weights with shuffled answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from piami.experiments.modular_addition.config import (
    MIN_DELAY,
    MIN_FVE,
    MIN_TEST_ACC,
    RATE_BAR,
    SEED_EXPERIMENT_NAME,
    SHARP_WIDTH,
    Config,
    SeedConfig,
    horizon_epochs,
)
from piami.lab import Measurements, PlanOutcome, SubRun

CONTROL_KEY = "control: shuffled labels"
#: Per-seed metrics kept in the combined result (the curves stay with each seed's own run).
KEPT = (
    "events",
    "test_acc_final",
    "test_fve_final",
    "width",
    "delay",
    "epochs_novel_acc_10_50_90",
    "epoch_train_acc_50",
    "key_frequencies",
    "final",
)


@dataclass(kw_only=True)
class ModularMeasurements(Measurements):
    """What the seeds' runs gave, for the rates, the controls and the figure.

    Attributes:
        seeds: sub-run key -> that seed's metrics (:func:`.seed.read_out`), for every seed that
            finished.
        control: the shuffled-label run's metrics; None when it failed.
        control_failure: why the control run failed ('' when it finished or was not planned).
    """

    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    control: dict[str, Any] | None = None
    control_failure: str = ""


def seeds_of(cfg: Config) -> list[int]:
    """The seeds of the planned runs: ``cfg.seed * n_seeds + i`` (disjoint across ``cfg.seed``)."""
    return [cfg.seed * cfg.n_seeds + i for i in range(cfg.n_seeds)]


def plan(cfg: Config) -> list[SubRun]:
    """One run per seed, and the shuffled-label control on the first seed's split and weights."""
    base = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(SeedConfig)}
    subs = [
        SubRun(key=f"seed={s}", experiment=SEED_EXPERIMENT_NAME, overrides={**base, "seed": s})
        for s in seeds_of(cfg)
    ]
    first = seeds_of(cfg)[0]
    control = {**base, "seed": first, "shuffle_labels": True}
    return [*subs, SubRun(key=CONTROL_KEY, experiment=SEED_EXPERIMENT_NAME, overrides=control)]


def summary_metrics(
    cfg: Config, seeds: dict[str, dict[str, Any]], control: dict[str, Any] | None
) -> dict[str, Any]:
    """Per-seed numbers (no curves) and the control's, for the report and the certificate."""
    bars = {
        "rate": RATE_BAR,
        "min_test_acc": MIN_TEST_ACC,
        "min_delay": MIN_DELAY,
        "sharp_width": SHARP_WIDTH,
        "min_fve": MIN_FVE,
    }
    out: dict[str, Any] = {
        "seeds": {k: {f: m.get(f) for f in KEPT} for k, m in seeds.items()},
        "horizon_epochs": horizon_epochs(cfg),
        "bars": bars,
    }
    if control is not None:
        out["control"] = {f: control.get(f) for f in KEPT}
    return out


def combine(cfg: Config, outcome: PlanOutcome) -> ModularMeasurements:
    """The seeds' and the control's metrics, gathered from the finished sub-runs."""
    seeds = {k: r.metrics for k, r in outcome.results.items() if k != CONTROL_KEY}
    control_run = outcome.results.get(CONTROL_KEY)
    control = None if control_run is None else control_run.metrics
    return ModularMeasurements(
        metrics=summary_metrics(cfg, seeds, control),
        timing={
            f"{k}: train_wall_s": r.timing.get("train_wall_s") for k, r in outcome.results.items()
        },
        seeds=seeds,
        control=control,
        control_failure=outcome.failures.get(CONTROL_KEY, ""),
    )
