"""One seed of llc-calibration: the SGLD estimate of the LLC on every case whose RLCT is exact.

A sub-run (experiment ``llc-calibration-seed``, planned by ``llc-calibration``) estimates the local
learning coefficient ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))`` (Lau et al. 2023, eq. 3) with
:class:`~piami.instruments.LLCEstimator` at one seed, on every case of :mod:`.cases` (regressions,
normal-crossing potentials, deep linear networks), each compared with its exact RLCT.

The control: the first deep linear case (else the first regression) is estimated again, with a
quarter of the burn-in and draws, its chains at a wrong temperature (``n beta`` times
``control_temperature_factor``) while ``lambda_hat`` uses the nominal ``n beta``; this broken
estimator gives about ``lambda / factor`` and must miss the exact value by more than the
tolerance. ``temperature_factor`` breaks every scored estimate the same way (a switch for the
test that the run then fails).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from piami.experiments.llc_calibration.cases import (
    REFERENCES,
    TOL_SOURCE,
    CaseConfig,
    cases,
    control_budget,
    control_case,
    estimate,
    parse_potential,
    row_of,
)
from piami.lab import Comparison, Experiment, Measurements
from piami.models import limit_threads
from piami.theory.learning_coefficient import normal_crossing_expectation


@dataclass(kw_only=True)
class SeedMeasurements(Measurements):
    """The estimates of one seed.

    Attributes:
        cases: one row per case (:func:`~.cases.row_of`; potentials add their finite-``n beta``
            expectation).
        control: the wrong-temperature control's row (None when there is no case).
    """

    cases: list[dict[str, Any]] = field(default_factory=list)
    control: dict[str, Any] | None = None


def measure(cfg: CaseConfig, *, progress: bool = True) -> SeedMeasurements:
    """Estimate every case of ``cfg`` at ``cfg.seed``, and the wrong-temperature control."""
    rows, timing = [], []
    all_cases = cases(cfg)
    with limit_threads(cfg.n_threads):
        for case in all_cases:
            est = estimate(cfg, case, cfg.seed, factor=cfg.temperature_factor)
            row, t = row_of(case, est, cfg.temperature_factor)
            if case["family"] == "potential":
                row["finite_n_beta_expectation"] = normal_crossing_expectation(
                    parse_potential(case["spec"]), cfg.nc_n_beta, cfg.nc_gamma
                )
            rows.append(row)
            timing.append(t)
        m = SeedMeasurements(cases=rows, metrics={"cases": rows})
        ctrl = control_case(all_cases)
        if ctrl is not None:
            f = cfg.control_temperature_factor
            row, t = row_of(ctrl, estimate(control_budget(cfg), ctrl, cfg.seed, factor=f), f)
            m.control = m.metrics["control"] = {**row, "temperature_factor": f}
            timing.append({**t, "case": f"control: {t['case']}"})
    m.timing["cases"] = timing
    return m


def compare(cfg: CaseConfig, m: SeedMeasurements) -> list[Comparison]:
    """Each case's estimate against its exact RLCT, then the control (which must miss)."""
    rows = [case_row(cfg, row) for row in m.cases]
    if m.control is not None:
        rows.append(control_row(cfg, m.control))
    return rows


def case_row(cfg: CaseConfig, row: dict[str, Any]) -> Comparison:
    """One case's estimate within ``cfg.tolerance`` (relative) of its exact RLCT."""
    return Comparison(
        name=f"LLC, {row['case']}",
        kind="prediction",
        predicted=row["truth"],
        measured=row["estimate"],
        tolerance=cfg.tolerance,
        tolerance_source=TOL_SOURCE,
        relative=True,
        reference=REFERENCES[row["family"]],
        note=(
            f"multiplicity {row['multiplicity']}; {row['n_chains']} chains, std across chains "
            f"{row['std_across_chains']:.3g}, R-hat {row['r_hat']:.3f}; one seed of the rate "
            "over seeds that llc-calibration scores"
        ),
    )


def control_row(cfg: CaseConfig, row: dict[str, Any]) -> Comparison:
    """The mis-tempered estimate must miss the exact RLCT by more than the tolerance."""
    f = row["temperature_factor"]
    return Comparison(
        name="control: LLC with chains at a wrong temperature misses the exact RLCT",
        kind="control",
        predicted=cfg.tolerance,
        measured=abs(row["rel_error"]),
        tolerance=0.0,
        tolerance_source=TOL_SOURCE,
        sense="at_least",
        unit="relative error",
        note=(
            f"{row['case']}: chains at n beta x {f:g}, lambda_hat from the nominal n beta: "
            f"{row['estimate']:.4g} against lambda {row['truth']:.4g}; a working comparison "
            "must see the broken estimator miss by more than the tolerance"
        ),
    )


def describe(cfg: CaseConfig) -> str:
    """The report's opening paragraph."""
    return (
        "One seed of llc-calibration: the LLC by localized SGLD against the exact RLCT of "
        "regressions, normal-crossing potentials and deep linear networks, and the estimator "
        "at a wrong temperature (a control that must miss)."
    )


EXPERIMENT = Experiment(
    name="llc-calibration-seed",
    config_cls=CaseConfig,
    measure=measure,
    compare=compare,
    describe=describe,
    part_of="llc-calibration",
    summary="one seed of llc-calibration: LLC against exact RLCTs, and a wrong-temperature control",
)
