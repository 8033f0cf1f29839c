"""Experiments: each pairs theory with measurement and returns a :class:`~piami.lab.Result`.

One module (or subpackage) per experiment, each defining a frozen config dataclass and
``EXPERIMENT = Experiment(...)``; modules are discovered automatically. The framework they are
written against lives in :mod:`piami.lab`; its names are re-exported here for convenience.
"""

from piami.lab import (
    Comparison,
    Experiment,
    Figure,
    PlanOutcome,
    Result,
    SubRun,
    apply_overrides,
    get_experiment,
    list_experiments,
    parse_overrides,
    parse_value,
    register,
    run_experiment,
)

__all__ = [
    "Comparison",
    "Experiment",
    "Figure",
    "PlanOutcome",
    "Result",
    "SubRun",
    "apply_overrides",
    "get_experiment",
    "list_experiments",
    "parse_overrides",
    "parse_value",
    "register",
    "run_experiment",
]
