"""The experiment framework: comparisons, results, the registry, config overrides and plans.

An experiment is theory beside measurement. This package is the part every experiment shares,
apart from the experiments themselves (:mod:`piami.experiments`), so that a user can write their
own against it (and make them visible to ``piami`` through ``$PIAMI_PLUGINS``):

- :class:`Comparison`: one row (a prediction, control, sanity check or refuted claim), its
  tolerance and where that comes from; ``passed`` is computed, ``None`` when not identified;
- :class:`Result`: the rows, metrics and figures of one run, and its verdict;
- :class:`Measurements`, :class:`FigureSpec`: what ``measure`` returns and ``figures`` draws;
- :class:`Experiment` and the registry; :func:`apply_overrides` for ``--set key=value``;
- :class:`SubRun`, :class:`PlanOutcome`: experiments made of many runs declare them;
- :func:`code_fingerprint`: what a stored result must match to be reused;
- :func:`binomial_interval`: the exact interval of a rate over seeds.
"""

from piami.lab.comparison import COUNTED_KINDS, KINDS, TOLERANCE_SOURCES, Comparison
from piami.lab.config import apply_overrides, config_to_dict, parse_overrides, parse_value
from piami.lab.fingerprint import code_fingerprint, git_describe
from piami.lab.measurements import FigureSpec, Measurements
from piami.lab.plan import PlanOutcome, SubRun
from piami.lab.rates import binomial_interval
from piami.lab.registry import (
    Experiment,
    get_experiment,
    list_experiments,
    register,
    run_experiment,
    run_plan_inprocess,
)
from piami.lab.result import Figure, Result

__all__ = [
    "COUNTED_KINDS",
    "KINDS",
    "TOLERANCE_SOURCES",
    "Comparison",
    "Experiment",
    "Figure",
    "FigureSpec",
    "Measurements",
    "PlanOutcome",
    "Result",
    "SubRun",
    "apply_overrides",
    "binomial_interval",
    "code_fingerprint",
    "config_to_dict",
    "get_experiment",
    "git_describe",
    "list_experiments",
    "parse_overrides",
    "parse_value",
    "register",
    "run_experiment",
    "run_plan_inprocess",
]
