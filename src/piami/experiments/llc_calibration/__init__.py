"""LLC calibration: the SGLD estimate of the local learning coefficient against exact RLCTs.

Theory. Singular learning theory gives the real log canonical threshold ``lambda`` exactly for a few
families (:mod:`piami.theory.learning_coefficient`): regular models (``d/2``), normal-crossing
potentials ``K(w) = prod_i w_i^(2 k_i)`` (``min_i 1/(2 k_i)``), and deep linear networks (Aoyagi
2024, Thm 1). The local learning coefficient ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))`` (Lau et
al. 2023, eq. 3) should recover it at a true parameter; for deep linear networks the global RLCT is
the local one at a minimal-rank factorization (every layer of rank ``r``).

Measurement. Whether one estimate lands within 10% of ``lambda`` depends on the seed, so this
experiment is a plan of sub-runs (:mod:`piami.lab.plan`): ``n_seeds`` runs of
``llc-calibration-seed`` (:mod:`.seed`: every case of :mod:`.cases` at one seed, seeds
``seed * n_seeds + i``, so different top-level seeds never share a sub-run), and one run of
``llc-calibration-checkpoints`` (:mod:`.checkpoints`: the LLC along a belief-geometry transformer's
training, a measurement with no exact value). The combine step (:mod:`.combine`) pools them per
case, and :mod:`.compare` makes one prediction per family: the fraction of (case, seed) estimates
within 10% of the exact RLCT, with its Clopper-Pearson interval, against a bar of 80% -- both
numbers stated before any setting was tuned. Per-case mean relative errors and their spread over
seeds are in metrics and in the figure.

Tuning apart from scoring. The SGLD step and localization were chosen by the grid of
``llc-calibration-tuning`` (:mod:`.tuning`) on tuning cases that are never scored (the Config
refuses a scored case that is a tuning case). Chains, burn-in and draws follow from the CPU budget
(the default plan: at most about 20 CPU-minutes in all); vectorized chains make 128 potential chains
cost about 1.4x what 32 do, so the potentials get 128. The quick variant scores the shallowest case
of each family with 4 chains and 3/8 of the steps; that budget was checked beforehand on the tuning
cases of the same depths (regressions ``4-2``, ``8-6``; deep linear ``4-6-3:2``; both tuning
potentials).

Measured once (2026-12-03, ``piami run llc-calibration-tuning``, 16 chains x 12000 steps, 128
potential chains x 25000, 2 seeds, ~15 CPU-minutes): step 1e-3, gamma 0.5 for families 1 and 3
(worst RMS error over the tuning cases 6.7%; 2e-3 drifts upwards by 30-40% on the deepest nets,
2.5e-4 to 5e-4 stay 14-21% low on the L = 4 net); step 3e-3, gamma 0.5 for the potentials (1.7%;
1e-4 had not mixed, +40%). The quick budget on its tuning cases: 25/25 estimates within 10% at 5
seeds (deeper tuning nets at that budget: up to 16% low, which is why the quick variant scores no
deeper net).

The default plan, measured once (2026-12-03, ``run_experiment("llc-calibration")`` in process, seed
0, so sub-run seeds 0-4; 11 CPU-minutes): regressions 15/15 and potentials 15/15 within 10%; deep
linear 39/50 (78%, below the 80% bar: the run fails). The two five-layer nets overshoot at every
seed (``4-6-5-6-4-3:2`` by +32% to +41%, ``3-4-5-4-3-2:1`` by +21% to +33%): the upward drift of
five-layer chains at step 1e-3 that the one five-layer tuning net (+6.5% to +6.9%) did not show. The
other eight nets land within 10% at 39 of 40 seeds, ``3-5-2-4:0`` included (-3% to -6%). The
settings were not re-tuned on this result.

Control. In every seed the first deep linear case is estimated again with its chains at ten times
the nominal ``n beta`` while ``lambda_hat`` uses the nominal one: a broken estimator that must miss
the exact value by more than 10% at every seed. ``temperature_factor`` breaks the scored estimates
in the same way, for the test that the run then fails.

History: the previous single-seed version, with settings tuned on the scored cases, had
``3-5-2-4:0`` (``lambda = 3``, multiplicity 2) pass at seed 0 (-9.2%) and fail at seed 1 (-11.5%,
reproduced 2026-12-03 before this rewrite): at ``n beta = n / ln n``, ``n = 10^4``, the estimand
itself sits near 2.70, the slow ``-(m - 1) / ln(n beta)`` approach of a multiplicity-2 threshold.

Layout. :mod:`.cases` (the cases, their exact RLCTs, one estimate), :mod:`.seed`, :mod:`.tuning` and
:mod:`.checkpoints` (the sub-experiments, each ``measure`` / ``compare``), :mod:`.config`,
:mod:`.combine` (plan and combine), :mod:`.compare` (the rows), :mod:`.plots` (the figures).
"""

from __future__ import annotations

from piami.experiments.llc_calibration.cases import CaseConfig, balanced_factorization, cases
from piami.experiments.llc_calibration.checkpoints import EXPERIMENT as CHECKPOINTS
from piami.experiments.llc_calibration.combine import LLCMeasurements, combine, plan
from piami.experiments.llc_calibration.compare import compare
from piami.experiments.llc_calibration.config import Config
from piami.experiments.llc_calibration.plots import plot_cases, plot_checkpoints
from piami.experiments.llc_calibration.seed import EXPERIMENT as SEED
from piami.experiments.llc_calibration.tuning import EXPERIMENT as TUNING
from piami.lab import Experiment, FigureSpec, register

__all__ = [
    "EXPERIMENT",
    "CaseConfig",
    "Config",
    "LLCMeasurements",
    "balanced_factorization",
    "cases",
    "combine",
    "compare",
    "describe",
    "figures",
    "plan",
]

for _part in (SEED, CHECKPOINTS, TUNING):
    register(_part)


def figures(cfg: Config, m: LLCMeasurements) -> list[FigureSpec]:
    """The estimates against the exact RLCTs, and the LLC along training (when measured)."""
    out = []
    if m.cases:
        out.append(
            FigureSpec(
                name="llc_vs_truth",
                figure=plot_cases(m.cases, cfg.tolerance),
                caption=(
                    f"LLC estimate (mean over {len(m.seeds)} seeds, bars: spread over seeds) "
                    f"against the exact RLCT; band: the {cfg.tolerance:.0%} tolerance"
                ),
            )
        )
    if m.checkpoints is not None:
        out.append(
            FigureSpec(
                name="llc_along_training",
                figure=plot_checkpoints(m.checkpoints, m.training_curve),
                caption=(
                    "LLC at the belief-geometry model's checkpoints over its training loss (a "
                    "measurement)"
                ),
            )
        )
    return out


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        "The local learning coefficient estimated by localized SGLD (all chains in one "
        "vectorized computation) against exact RLCTs: linear regressions (d/2), normal-crossing "
        "potentials (min 1/(2k)) and deep linear networks at minimal-rank factorizations "
        f"(Aoyagi 2024), at {cfg.n_seeds} seeds; per family, the fraction of estimates within "
        f"{cfg.tolerance:.0%} against a bar of {cfg.rate_bar:.0%} stated before tuning, with SGLD "
        "settings tuned on other architectures; a control at a wrong temperature; then the LLC "
        "along a belief-geometry transformer's training."
    )


EXPERIMENT = Experiment(
    name="llc-calibration",
    config_cls=Config,
    plan=plan,
    combine=combine,
    compare=compare,
    figures=figures,
    describe=describe,
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
    summary=(
        "local learning coefficient (vectorized SGLD) against exact RLCTs over seeds, and along "
        "training"
    ),
)
