"""Predict the data-limited scaling exponent from the data's statistics, then measure it.

Cagnetta, Raventos, Ganguli and Wyart (2026): if the token correlations decay as
``||C(n)|| ~ n**(-beta)`` and the conditional entropies as ``H_n - H_inf ~ n**(-gamma)``, a model
trained on ``P`` tokens resolves a context ``n*(P) ~ P**(1/(2 beta))`` and its loss falls as
``L(P) - H_inf ~ P**(-alpha_D)`` with ``alpha_D = gamma / (2 beta)`` (:mod:`piami.theory.scaling`).

The experiment plans one training run per training-set size ``P`` (sub-runs of
``scaling-train-point``, executed by whoever runs the plan: in process, or stored and parallel with
``piami run scaling-from-statistics --workers N``), then combines them:

* ``beta``: top singular value of ``C(n)`` on the training part, fitted on the lags above three
  times the shuffle noise floor;
* ``gamma``: from the n-gram losses ``L_n`` (Cagnetta et al., eq. 2: the test loss with ``n``
  tokens of context) of the model trained on the most data, fitted on the lengths it resolves,
  ``n <= n*(P_max)``: the lags whose correlation stands above the same floor rescaled to
  ``P_max`` tokens. The count-based estimate (NSB entropies of the n-gram counts) is kept beside
  it but not used: on a few million characters it trusts only ``n <= 5`` or so, where ``H_n``
  does not yet show its asymptote (the fit puts ``H_inf`` on its bound, 0 nats, impossible for
  English);
* the measured ``alpha_D``: the fit ``L(P) = E + A P**(-alpha)`` of the test loss with at least
  ``n_ctx / 2`` tokens of context.

The package: ``config`` (the settings), ``point`` (the training point, a sub-experiment of its
own), ``statistics`` (beta, the n-gram entropies and the calibration of the beta instrument),
``measure`` (``combine``: the points and the statistics made into :class:`ScalingMeasurements`),
``compare`` (the rows and their bars, a pure function of the measurements) and ``plots`` (the
figures; ``piami stats`` draws its profiles with :func:`plot_correlations` and
:func:`plot_entropies`).

Rows (bars fixed before any run of this version, constants of
:mod:`piami.experiments.scaling_from_statistics.compare`, never config fields):

* prediction ``alpha_D``: within 25% of the predicted value. Not identified when either 95%
  interval is wider than the tolerance band itself, or a fit sits on a bound, or a fit cannot be
  made; the z-score of the two intervals is reported.
* control: the model trained on the most data gains at least 0.1 nats over the unigram predictor
  (an untrained, undertrained or context-blind model fails it; ``shuffle_train=True`` makes one);
* control: a token-order permutation of the training part leaves no lag above the noise floor;
* sanity: the ``beta`` instrument on a Random Hierarchy Model, against the exact correlations of
  the same grammar.

History (measured 2026-12-03, seed 0, before the plan/combine rewrite): the statistics of the
full defaults (``measure_statistics`` on the 1.8M training characters of Shakespeare) gave
``alpha_D`` 0.200 with a 95% interval [0.165, 0.635] and ``H_inf`` on its bound, 0 nats (the issue
had 0.222 [0.164, 0.506]); the tolerance was then the root-sum-square of the two half-widths, so
almost any exponent in [0, 0.45] passed.
"""

from __future__ import annotations

from piami.experiments.scaling_from_statistics import compare
from piami.experiments.scaling_from_statistics.config import POINT_FIELDS, Config
from piami.experiments.scaling_from_statistics.measure import ScalingMeasurements, combine
from piami.experiments.scaling_from_statistics.plots import (
    figures,
    plot_correlations,
    plot_entropies,
)
from piami.experiments.scaling_from_statistics.point import EXPERIMENT as POINT
from piami.experiments.scaling_from_statistics.point import PointConfig
from piami.lab import Experiment, SubRun, register

register(POINT)  # the sub-run this experiment plans (discovered with this package)


def plan(cfg: Config) -> list[SubRun]:
    """One ``scaling-train-point`` per training-set size, all with the run's seed.

    The points share the seed (common random numbers along the curve); two top-level seeds give
    disjoint point seeds.
    """
    base = {k: getattr(cfg, k) for k in POINT_FIELDS}
    return [
        SubRun(
            key=f"P={P}",
            experiment=POINT.name,
            overrides={**base, "seed": cfg.seed, "n_train_tokens": P},
        )
        for P in cfg.sizes()
    ]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        "Measure the correlation-decay exponent beta of a corpus and the entropy exponent "
        "gamma from the n-gram losses of the model trained on the most data, predict the "
        "data-limited exponent alpha_D = gamma/(2 beta) (Cagnetta, Raventos, Ganguli and Wyart "
        "2026), and compare it with the exponent of the learning curve L(P) = E + A P^-alpha "
        "of transformers trained on log-spaced training sizes P (early-stopped)."
    )


EXPERIMENT = Experiment(
    name="scaling-from-statistics",
    config_cls=Config,
    plan=plan,
    combine=combine,
    compare=compare.compare,
    figures=figures,
    describe=describe,
    quick={
        "max_chars": 300_000,
        "test_tokens": 10_000,
        "n_max_lag": 64,
        "n_lags": 10,
        "n_max_entropy": 5,
        "p_min": 3_000,
        "p_max": 100_000,
        "n_ctx": 16,
        "n_layers": 1,
        "d_model": 32,
        "d_mlp": 64,
        "n_steps": 150,
        "lr": 0.01,
        "eval_every": 50,
        "eval_stride": 4,
        "n_boot": 50,
    },
    summary="predict alpha_D = gamma/(2 beta) from text statistics, then measure it by training",
)

__all__ = [
    "EXPERIMENT",
    "POINT",
    "Config",
    "PointConfig",
    "ScalingMeasurements",
    "combine",
    "compare",
    "describe",
    "figures",
    "plan",
    "plot_correlations",
    "plot_entropies",
]
