"""Experiments: each pairs theory with measurement and returns a :class:`Result`.

One module per experiment, each defining a frozen config dataclass, ``run(cfg, *, progress)`` and
``EXPERIMENT = Experiment(...)``; modules are discovered automatically.
"""

from piami.experiments.config import apply_overrides, parse_overrides, parse_value
from piami.experiments.registry import (
    Experiment,
    get_experiment,
    list_experiments,
    register,
    run_experiment,
)
from piami.experiments.result import Comparison, Figure, Result

__all__ = [
    "Comparison",
    "Experiment",
    "Figure",
    "Result",
    "apply_overrides",
    "get_experiment",
    "list_experiments",
    "parse_overrides",
    "parse_value",
    "register",
    "run_experiment",
]
