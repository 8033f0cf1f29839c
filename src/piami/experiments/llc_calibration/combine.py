"""llc-calibration's plan (one sub-run per seed, and the checkpoint part) and its combine step.

The per-seed sub-runs (:mod:`.seed`) each estimate every case once; :func:`combine` pools them
per case (estimates within the tolerance, mean and spread of the relative error over seeds) and
takes the checkpoint part's curve (:mod:`.checkpoints`) as it is. It compares nothing: the rows
are :mod:`.compare`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.experiments.llc_calibration.cases import CaseConfig, cases
from piami.experiments.llc_calibration.checkpoints import CheckpointConfig
from piami.experiments.llc_calibration.config import Config
from piami.experiments.llc_calibration.tuning import (
    TUNING_DEEP_LINEAR,
    TUNING_POTENTIALS,
    TUNING_REGULAR,
)
from piami.lab import Measurements, PlanOutcome, Result, SubRun


@dataclass(kw_only=True)
class LLCMeasurements(Measurements):
    """What the sub-runs measured, pooled.

    Attributes:
        seeds: the seeds whose sub-run finished.
        cases: one row per case: ``family``, ``truth``, ``n_seeds``, ``within`` (estimates within
            the tolerance), mean / spread / extremes of the relative error over seeds, ...
        controls: the wrong-temperature control's row of each finished seed.
        checkpoints: the LLC at each training checkpoint (None: the part did not run or finish).
        training_curve: the belief model's training curve.
    """

    seeds: list[int] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] | None = None
    training_curve: dict[str, Any] = field(default_factory=dict)


def plan(cfg: Config) -> list[SubRun]:
    """One ``llc-calibration-seed`` run per seed, and the checkpoint part."""
    subs = [
        SubRun(
            key=f"seed={s}",
            experiment="llc-calibration-seed",
            overrides={**cfg.fields_of(CaseConfig), "seed": s},
        )
        for s in cfg.seeds()
    ]
    if cfg.checkpoint_llc:
        over = {**cfg.fields_of(CheckpointConfig), "seed": cfg.seed}
        subs.append(
            SubRun(key="checkpoints", experiment="llc-calibration-checkpoints", overrides=over)
        )
    return subs


def combine(cfg: Config, outcome: PlanOutcome) -> LLCMeasurements:
    """Per-case rates and errors over the seeds that finished, the controls, the curve."""
    runs = [(s, outcome.results.get(f"seed={s}")) for s in cfg.seeds()]
    runs = [(s, r) for s, r in runs if r is not None]
    m = LLCMeasurements(
        seeds=[s for s, _ in runs],
        cases=[pool_case(cfg, case, [r for _, r in runs]) for case in cases(cfg)],
        controls=[r.metrics["control"] for _, r in runs if "control" in r.metrics],
    )
    m.metrics = {"seeds": m.seeds, "cases": m.cases, "hyperparameters": hyperparameters(cfg)}
    if m.controls:
        m.metrics["control"] = m.controls
    m.timing["seeds"] = {f"seed={s}": r.timing.get("cases", []) for s, r in runs}
    ck = outcome.results.get("checkpoints")
    if ck is not None:
        m.checkpoints = m.metrics["checkpoints"] = ck.metrics.get("checkpoints", [])
        m.training_curve = m.metrics["training_curve"] = ck.metrics.get("training_curve", {})
        m.timing["checkpoints"] = ck.timing.get("checkpoints", [])
    return m


def pool_case(cfg: Config, case: dict[str, Any], results: list[Result]) -> dict[str, Any]:
    """One case over the seeds' results: how many within tolerance, errors' mean and spread."""
    got = [
        next(r for r in res.metrics["cases"] if r["case"] == case["name"])
        for res in results
        if any(r["case"] == case["name"] for r in res.metrics.get("cases", []))
    ]
    errs = np.array([g["rel_error"] for g in got], dtype=float)
    est = np.array([g["estimate"] for g in got], dtype=float)
    n = len(got)
    nan = float("nan")
    return {
        "case": case["name"],
        "family": case["family"],
        "truth": case["truth"][0],
        "multiplicity": case["truth"][1],
        "n_seeds": n,
        "within": int(sum(bool(abs(e) <= cfg.tolerance) for e in errs)),
        "mean_rel_error": float(errs.mean()) if n else nan,
        "std_rel_error": float(errs.std(ddof=1)) if n > 1 else nan,
        "min_rel_error": float(errs.min()) if n else nan,
        "max_rel_error": float(errs.max()) if n else nan,
        "mean_estimate": float(est.mean()) if n else nan,
        "std_estimate": float(est.std(ddof=1)) if n > 1 else nan,
        "per_seed_rel_error": errs.tolist(),
        "finite_n_beta_expectation": got[0].get("finite_n_beta_expectation") if got else None,
        "max_r_hat": max((g["r_hat"] for g in got), default=nan),
        "diverged_chains": int(sum(g["diverged_chains"] for g in got)),
    }


def hyperparameters(cfg: Config) -> dict[str, Any]:
    """The SGLD settings of each family, and the tuning cases they were chosen on."""
    fam13 = {k: getattr(cfg, k) for k in ("sampler", "integrator", "step_size", "gamma")}
    fam13 |= {k: getattr(cfg, k) for k in ("n_chains", "n_burnin", "n_draws", "batch_size")}
    fam2 = {k: getattr(cfg, "nc_" + k) for k in ("step_size", "gamma", "n_chains", "n_burnin")}
    fam2 |= {"n_draws": cfg.nc_n_draws, "n_beta": cfg.nc_n_beta, "dtype": "float64"}
    return {
        "regular_and_deep_linear": fam13
        | {"n_beta": f"n / ln n, n = {cfg.n_samples}", "preconditioner": "frozen after burn-in"},
        "normal_crossing": fam2 | {"sampler": cfg.sampler, "integrator": cfg.integrator},
        "tuned_on": {
            "regular": list(TUNING_REGULAR),
            "potentials": list(TUNING_POTENTIALS),
            "deep_linear": list(TUNING_DEEP_LINEAR),
            "how": "piami run llc-calibration-tuning (grid of step and gamma; chains from the "
            "budget)",
        },
        "temperature_factor": cfg.temperature_factor,
        "control_temperature_factor": cfg.control_temperature_factor,
    }
