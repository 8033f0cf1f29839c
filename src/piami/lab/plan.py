"""Experiments made of many runs: a plan of sub-runs, executed elsewhere, and a combine step.

An experiment that needs many independent runs (one per seed, one per training-set size) does
not run them itself. It *declares* them: ``plan(cfg) -> list[SubRun]``, each sub-run an experiment
name and its config overrides; and says how to turn their results into its own:
``combine(cfg, outcome) -> Measurements``. Whoever executes the plan decides where the sub-runs
run: :func:`piami.lab.registry.run_plan_inprocess` (one after another in this process, the
default of the Python API), or
the runs layer (:func:`piami.runs.plan_runner`: a content-addressed store, a local process pool or
Ray), which the command line uses. Since each sub-run is an ordinary run with its own seed, the
numbers are the same whichever executes them.

A sub-run that fails is not dropped: :class:`PlanOutcome` carries it, the combined result records
the counts (``result.runs``) and the framework adds a sanity row that fails unless every planned
sub-run finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from piami.errors import PiamiValueError
from piami.lab.result import Result


@dataclass(frozen=True, kw_only=True)
class SubRun:
    """One run an experiment needs.

    Attributes:
        key: the sub-run's name within the plan (unique), e.g. ``"seed=3"`` or ``"P=10000"``.
        experiment: registered name of the experiment to run.
        overrides: config values of that experiment (applied to its full defaults).
    """

    key: str
    experiment: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class PlanOutcome:
    """What executing a plan gave.

    Attributes:
        results: sub-run key -> its :class:`Result`, for every sub-run that finished.
        failures: sub-run key -> why it failed (error type, message, last traceback line).
        n_planned: sub-runs in the plan.
        n_cached: finished before and reused (same code, same config).
        n_computed: run now.
        run_ids: sub-run key -> run id in the store (empty when run in process, unstored).
    """

    results: dict[str, Result] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    n_planned: int = 0
    n_cached: int = 0
    n_computed: int = 0
    run_ids: dict[str, str] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def counts(self) -> dict[str, Any]:
        """The accounting a combined result records as ``result.runs``."""
        return {
            "planned": self.n_planned,
            "cached": self.n_cached,
            "computed": self.n_computed,
            "failed": self.n_failed,
            "failures": dict(self.failures),
            "run_ids": dict(self.run_ids),
        }


#: ``runner(subruns, *, progress) -> PlanOutcome``: executes a plan.
PlanRunner = Callable[..., PlanOutcome]


def check_plan(subruns: list[SubRun]) -> list[SubRun]:
    """Validate a plan: sub-runs with unique keys; returns it."""
    if not isinstance(subruns, list) or not all(isinstance(s, SubRun) for s in subruns):
        raise PiamiValueError("plan(cfg) must return a list of SubRun")
    keys = [s.key for s in subruns]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise PiamiValueError(f"plan has duplicate sub-run keys: {', '.join(dup)}")
    return subruns
