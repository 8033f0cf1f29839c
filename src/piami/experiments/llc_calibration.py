"""LLC calibration: the SGLD estimate of the local learning coefficient against exact RLCTs.

Theory. Singular learning theory gives the real log canonical threshold ``lambda`` exactly for a few
families (:mod:`piami.theory.learning_coefficient`): regular models (``d/2``), normal-crossing
potentials ``K(w) = prod_i w_i^(2 k_i)`` (``min_i 1/(2 k_i)``), and deep linear networks (Aoyagi
2024, Thm 1). The local learning coefficient ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))``
(Lau et al. 2023, eq. 3) should recover it at a true parameter; for deep linear networks the
global RLCT is the local one at a minimal-rank factorization (every layer of rank ``r``).

Measurement. Whether one estimate lands within 10% of ``lambda`` depends on the seed, so this
experiment is a plan of sub-runs (:mod:`piami.lab.plan`): ``n_seeds`` runs of
``llc-calibration-seed`` (:mod:`piami.experiments._llc_cases`: every case at one seed, seeds
``seed * n_seeds + i``, so different top-level seeds never share a sub-run), and one run of
``llc-calibration-checkpoints`` (:mod:`piami.experiments._llc_checkpoints`: the LLC along a
belief-geometry transformer's training, a measurement with no exact value). The combine step
makes one prediction per family: the fraction of (case, seed) estimates within 10% of the exact
RLCT, with its Clopper-Pearson interval, against a bar of 80% -- both numbers stated before any
setting was tuned. Per-case mean relative errors and their spread over seeds are in metrics and
in the figure.

Tuning apart from scoring. The SGLD step and localization were chosen by the grid of
``llc-calibration-tuning`` (:mod:`piami.experiments._llc_tuning`) on tuning cases that are never
scored (the Config refuses a scored case that is a tuning case). Chains, burn-in and draws follow
from the CPU budget (the default plan: at most about 20 CPU-minutes in all); vectorized chains
make 128 potential chains cost about 1.4x what 32 do, so the potentials get 128. The quick
variant scores the shallowest case of each family with 4 chains and 3/8 of the steps; that
budget was checked beforehand on the tuning cases of the same depths (regressions ``4-2``,
``8-6``; deep linear ``4-6-3:2``; both tuning potentials).

Measured once (2026-12-03, ``piami run llc-calibration-tuning``, 16 chains x 12000 steps, 128
potential chains x 25000, 2 seeds, ~15 CPU-minutes): step 1e-3, gamma 0.5 for families 1 and 3
(worst RMS error over the tuning cases 6.7%; 2e-3 drifts upwards by 30-40% on the deepest
nets, 2.5e-4 to 5e-4 stay 14-21% low on the L = 4 net); step 3e-3, gamma 0.5 for the
potentials (1.7%; 1e-4 had not mixed, +40%). The quick budget on its tuning cases: 25/25
estimates within 10% at 5 seeds (deeper tuning nets at that budget: up to 16% low, which is why
the quick variant scores no deeper net).

The default plan, measured once (2026-12-03, ``run_experiment("llc-calibration")`` in process,
seed 0, so sub-run seeds 0-4; 11 CPU-minutes): regressions 15/15 and potentials 15/15 within 10%;
deep linear 39/50 (78%, below the 80% bar: the run fails). The two five-layer nets overshoot at
every seed (``4-6-5-6-4-3:2`` by +32% to +41%, ``3-4-5-4-3-2:1`` by +21% to +33%): the upward
drift of five-layer chains at step 1e-3 that the one five-layer tuning net (+6.5% to +6.9%) did
not show. The other eight nets land within 10% at 39 of 40 seeds, ``3-5-2-4:0`` included (-3% to
-6%). The settings were not re-tuned on this result.

Control. In every seed the first deep linear case is estimated again with its chains at ten
times the nominal ``n beta`` while ``lambda_hat`` uses the nominal one: a broken estimator that
must miss the exact value by more than 10% at every seed. ``temperature_factor`` breaks the
scored estimates in the same way, for the test that the run then fails.

History: the previous single-seed version, with settings tuned on the scored cases, had
``3-5-2-4:0`` (``lambda = 3``, multiplicity 2) pass at seed 0 (-9.2%) and fail at seed 1 (-11.5%,
reproduced 2026-12-03 before this rewrite): at ``n beta = n / ln n``, ``n = 10^4``, the estimand itself sits near 2.70,
the slow ``-(m - 1) / ln(n beta)`` approach of a multiplicity-2 threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments import _llc_cases, _llc_checkpoints, _llc_tuning
from piami.experiments._llc_cases import CaseConfig, balanced_factorization, cases
from piami.lab import (
    Comparison,
    Experiment,
    PlanOutcome,
    Result,
    SubRun,
    binomial_interval,
    register,
)

__all__ = ["EXPERIMENT", "Config", "balanced_factorization"]

for _part in (_llc_cases.EXPERIMENT, _llc_checkpoints.EXPERIMENT, _llc_tuning.EXPERIMENT):
    register(_part)

FAMILIES = ("regression", "potential", "deep linear")
MIN_SEEDS = 5  # a rate over fewer seeds is not identified


@dataclass(frozen=True, kw_only=True)
class Config(CaseConfig):
    """Settings of llc-calibration: those of one seed (:class:`CaseConfig`), and these."""

    n_seeds: int = 5  # seeds per case; sub-run seeds are seed * n_seeds + i
    rate_bar: float = 0.8  # a priori: fraction of estimates within tolerance a family must reach
    checkpoint_llc: bool = True  # part (4): LLC along the belief-geometry training checkpoints
    belief_steps: int = 500  # part (4): training steps of the belief model
    belief_checkpoints: int = 6  # part (4): log-spaced checkpoints kept (and measured)
    llc_burnin: int = 100  # part (4): burn-in steps per checkpoint
    llc_draws: int = 300  # part (4): draws per checkpoint

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_seeds, bool) or not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise PiamiValueError(
                f"n_seeds must be an integer >= 1 (>= 5 to decide), got {self.n_seeds!r}"
            )
        bar = self.rate_bar
        if isinstance(bar, bool) or not (isinstance(bar, (int, float)) and 0 < bar <= 1):
            raise PiamiValueError(f"rate_bar must lie in (0, 1], got {self.rate_bar!r}")
        _llc_checkpoints.CheckpointConfig(**self._fields(_llc_checkpoints.CheckpointConfig))
        tuned = {
            "regular": _llc_tuning.TUNING_REGULAR,
            "potentials": _llc_tuning.TUNING_POTENTIALS,
            "deep_linear": _llc_tuning.TUNING_DEEP_LINEAR,
        }
        for field, tuning in tuned.items():
            keys = {_architecture(field, t) for t in tuning}
            both = sorted(s for s in getattr(self, field) if _architecture(field, s) in keys)
            if both:
                raise PiamiValueError(
                    f"{field}: {both} are tuning cases (the SGLD settings were chosen on them), so "
                    f"they cannot be scored; score other architectures (tuning cases: {tuning})"
                )

    def _fields(self, cls: type) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)}

    def seeds(self) -> list[int]:
        """The seeds of the per-seed sub-runs: disjoint for different top-level seeds."""
        return [self.seed * self.n_seeds + i for i in range(self.n_seeds)]


def _architecture(field: str, spec: str) -> tuple:
    """A case up to relabeling: widths or their reverse (a transposed problem), exponents sorted."""
    if field == "deep_linear":
        widths, rank = _llc_cases.parse_deep(spec)
        return (min(tuple(widths), tuple(widths[::-1])), rank)
    if field == "regular":
        return tuple(sorted(_llc_cases.parse_regular(spec)))
    return tuple(sorted(int(k) for k in spec.split("-")))


def plan(cfg: Config) -> list[SubRun]:
    """One ``llc-calibration-seed`` run per seed, and the checkpoint part."""
    subs = [
        SubRun(
            key=f"seed={s}",
            experiment="llc-calibration-seed",
            overrides={**cfg._fields(CaseConfig), "seed": s},
        )
        for s in cfg.seeds()
    ]
    if cfg.checkpoint_llc:
        over = {**cfg._fields(_llc_checkpoints.CheckpointConfig), "seed": cfg.seed}
        subs.append(
            SubRun(key="checkpoints", experiment="llc-calibration-checkpoints", overrides=over)
        )
    return subs


def combine(cfg: Config, outcome: PlanOutcome) -> Result:
    """Rates over seeds per family, the control, per-case errors and the checkpoint curve."""
    result = Result(
        experiment="llc-calibration",
        config={},
        seed=cfg.seed,
        description=(
            "The local learning coefficient estimated by localized SGLD (all chains in one "
            "vectorized computation) against exact RLCTs: linear regressions (d/2), normal-crossing "
            "potentials (min 1/(2k)) and deep linear networks at minimal-rank factorizations "
            f"(Aoyagi 2024), at {cfg.n_seeds} seeds; per family, the fraction of estimates within "
            f"{cfg.tolerance:.0%} against a bar of {cfg.rate_bar:.0%} stated before tuning, with SGLD "
            "settings tuned on other architectures; a control at a wrong temperature; then the LLC "
            "along a belief-geometry transformer's training."
        ),
    )
    runs = [(s, outcome.results.get(f"seed={s}")) for s in cfg.seeds()]
    runs = [(s, r) for s, r in runs if r is not None]
    per_case = _per_case(cfg, runs)
    result.metrics["seeds"] = [s for s, _ in runs]
    result.metrics["cases"] = per_case
    result.metrics["hyperparameters"] = _hyperparameters(cfg)
    for family in FAMILIES:
        rows = [c for c in per_case if c["family"] == family]
        if rows:
            result.comparisons.append(_rate_row(cfg, family, rows, len(runs)))
    controls = [r.metrics["control"] for _, r in runs if "control" in r.metrics]
    if controls:
        result.comparisons.append(_control_rate(cfg, controls, len(runs)))
        result.metrics["control"] = controls
    result.timing["seeds"] = {f"seed={s}": r.timing.get("cases", []) for s, r in runs}
    if per_case:
        result.add_figure(
            "llc_vs_truth",
            _plot_cases(per_case, cfg.tolerance),
            f"LLC estimate (mean over {len(runs)} seeds, bars: spread over seeds) against the "
            f"exact RLCT; band: the {cfg.tolerance:.0%} tolerance",
        )
    ck = outcome.results.get("checkpoints")
    if ck is not None:
        result.comparisons.extend(ck.comparisons)
        result.metrics["checkpoints"] = ck.metrics.get("checkpoints", [])
        result.metrics["training_curve"] = ck.metrics.get("training_curve", {})
        result.timing["checkpoints"] = ck.timing.get("checkpoints", [])
        result.add_figure(
            "llc_along_training",
            _llc_checkpoints.plot_checkpoints(
                result.metrics["checkpoints"], result.metrics["training_curve"]
            ),
            "LLC at the belief-geometry model's checkpoints over its training loss (a measurement)",
        )
    return result


def _per_case(cfg: Config, runs: list[tuple[int, Result]]) -> list[dict[str, Any]]:
    out = []
    for case in cases(cfg):
        got = [
            next(r for r in res.metrics["cases"] if r["case"] == case["name"])
            for _, res in runs
            if any(r["case"] == case["name"] for r in res.metrics.get("cases", []))
        ]
        errs = np.array([g["rel_error"] for g in got], dtype=float)
        est = np.array([g["estimate"] for g in got], dtype=float)
        within = [bool(abs(e) <= cfg.tolerance) for e in errs]
        out.append(
            {
                "case": case["name"],
                "family": case["family"],
                "truth": case["truth"][0],
                "multiplicity": case["truth"][1],
                "n_seeds": len(got),
                "within": int(sum(within)),
                "mean_rel_error": float(errs.mean()) if len(got) else float("nan"),
                "std_rel_error": float(errs.std(ddof=1)) if len(got) > 1 else float("nan"),
                "min_rel_error": float(errs.min()) if len(got) else float("nan"),
                "max_rel_error": float(errs.max()) if len(got) else float("nan"),
                "mean_estimate": float(est.mean()) if len(got) else float("nan"),
                "std_estimate": float(est.std(ddof=1)) if len(got) > 1 else float("nan"),
                "per_seed_rel_error": errs.tolist(),
                "finite_n_beta_expectation": got[0].get("finite_n_beta_expectation")
                if got
                else None,
                "max_r_hat": max((g["r_hat"] for g in got), default=float("nan")),
                "diverged_chains": int(sum(g["diverged_chains"] for g in got)),
            }
        )
    return out


def _tuned_on() -> str:
    return "; ".join(
        (
            "regressions " + ", ".join(_llc_tuning.TUNING_REGULAR),
            "potentials " + ", ".join(_llc_tuning.TUNING_POTENTIALS),
            "deep linear " + ", ".join(_llc_tuning.TUNING_DEEP_LINEAR),
        )
    )


def _rate_row(cfg: Config, family: str, rows: list[dict], n_runs: int) -> Comparison:
    k, n = sum(r["within"] for r in rows), sum(r["n_seeds"] for r in rows)
    interval = binomial_interval(k, n) if n else None
    per = "; ".join(
        f"{r['case']}: {r['within']}/{r['n_seeds']}, mean error {r['mean_rel_error']:+.3f} "
        f"± {r['std_rel_error']:.3f}"
        for r in rows
    )
    why = (
        ""
        if n_runs >= MIN_SEEDS
        else f"only {n_runs} seed(s) finished; a rate needs >= {MIN_SEEDS}"
    )
    return Comparison(
        name=f"LLC within {cfg.tolerance:.0%} of the exact RLCT, {family}: rate over cases and seeds",
        kind="prediction",
        predicted=cfg.rate_bar,
        measured=k / n if n else None,
        tolerance=0.0,
        tolerance_source=(
            f"a priori: at least {cfg.rate_bar:.0%} of (case, seed) estimates within the issue's "
            f"{cfg.tolerance:.0%} bar, both stated before tuning; SGLD settings tuned on "
            f"{_tuned_on()} (never scored)"
        ),
        sense="at_least",
        unit="fraction",
        reference=_llc_cases.REFERENCES[family],
        measured_interval=interval,
        not_identified=why,
        note=(
            f"{k}/{n} estimates within {cfg.tolerance:.0%} (95% Clopper-Pearson interval over "
            f"cases pooled as if exchangeable); per case, within/seeds and mean relative error "
            f"± its spread over seeds: {per}"
        ),
    )


def _control_rate(cfg: Config, controls: list[dict], n_runs: int) -> Comparison:
    k = sum(abs(c["rel_error"]) > cfg.tolerance for c in controls)
    n = len(controls)
    errs = ", ".join(f"{c['rel_error']:+.2f}" for c in controls)
    why = (
        ""
        if n_runs >= MIN_SEEDS
        else f"only {n_runs} seed(s) finished; a rate needs >= {MIN_SEEDS}"
    )
    return Comparison(
        name="control: LLC with chains at a wrong temperature misses the exact RLCT (rate over seeds)",
        kind="control",
        predicted=1.0,
        measured=k / n,
        tolerance=0.0,
        tolerance_source=(
            f"a priori: a broken estimator must miss by more than the {cfg.tolerance:.0%} bar at "
            "every seed"
        ),
        sense="at_least",
        unit="fraction",
        measured_interval=binomial_interval(k, n),
        not_identified=why,
        note=(
            f"{controls[0]['case']} with its chains at n beta x "
            f"{controls[0]['temperature_factor']:g} and lambda_hat from the nominal n beta: "
            f"relative errors {errs}; {k}/{n} seeds miss by more than {cfg.tolerance:.0%}"
        ),
    )


def _hyperparameters(cfg: Config) -> dict[str, Any]:
    fam13 = {k: getattr(cfg, k) for k in ("sampler", "integrator", "step_size", "gamma")}
    fam13 |= {k: getattr(cfg, k) for k in ("n_chains", "n_burnin", "n_draws", "batch_size")}
    fam2 = {k: getattr(cfg, "nc_" + k) for k in ("step_size", "gamma", "n_chains", "n_burnin")}
    fam2 |= {"n_draws": cfg.nc_n_draws, "n_beta": cfg.nc_n_beta, "dtype": "float64"}
    return {
        "regular_and_deep_linear": fam13
        | {"n_beta": f"n / ln n, n = {cfg.n_samples}", "preconditioner": "frozen after burn-in"},
        "normal_crossing": fam2 | {"sampler": cfg.sampler, "integrator": cfg.integrator},
        "tuned_on": {
            "regular": list(_llc_tuning.TUNING_REGULAR),
            "potentials": list(_llc_tuning.TUNING_POTENTIALS),
            "deep_linear": list(_llc_tuning.TUNING_DEEP_LINEAR),
            "how": "piami run llc-calibration-tuning (grid of step and gamma; chains from the budget)",
        },
        "temperature_factor": cfg.temperature_factor,
        "control_temperature_factor": cfg.control_temperature_factor,
    }


def _plot_cases(rows: list[dict], tol: float) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    truth = np.array([c["truth"] for c in rows])
    est = np.array([c["mean_estimate"] for c in rows])
    err = np.nan_to_num(np.array([c["std_estimate"] for c in rows]))
    grid = np.geomspace(truth.min() * 0.7, truth.max() * 1.4, 50)
    ax.fill_between(grid, grid * (1 - tol), grid * (1 + tol), color="0.88", label=f"±{tol:.0%}")
    ax.plot(grid, grid, "k-", lw=0.8)
    for fam, mk in zip(FAMILIES, ("s", "^", "o"), strict=True):
        sel = np.array([c["family"] == fam for c in rows])
        if sel.any():
            ax.errorbar(truth[sel], est[sel], yerr=err[sel], fmt=mk, ms=5, capsize=2, label=fam)
    ax.set(
        xscale="log", yscale="log", xlabel="exact RLCT λ", ylabel="LLC estimate λ̂ (mean over seeds)"
    )
    ax.legend()
    return fig


EXPERIMENT = Experiment(
    name="llc-calibration",
    config_cls=Config,
    plan=plan,
    combine=combine,
    quick={
        "regular": ("6-5",),
        "potentials": ("2",),
        "deep_linear": ("5-4-3:1",),
        "n_chains": 4,
        "n_burnin": 1500,
        "n_draws": 3000,
        "nc_n_burnin": 1000,
        "nc_n_draws": 3000,
        "belief_steps": 60,
        "belief_checkpoints": 2,
        "llc_burnin": 10,
        "llc_draws": 20,
    },
    summary="local learning coefficient (vectorized SGLD) against exact RLCTs over seeds, and along training",
)
