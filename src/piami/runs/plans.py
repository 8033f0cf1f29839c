"""Executing an experiment's plan of sub-runs through the run store (local pool or Ray).

An experiment made of many runs declares them (:mod:`piami.lab.plan`); :func:`plan_runner` gives
the function that executes such a plan here: each sub-run becomes an ordinary stored run (its id
hashes experiment, config and code), finished ones are reused, the rest run ``workers`` at a time
on the chosen backend, and failures come back in the :class:`~piami.lab.PlanOutcome` with the
counts, never dropped. The experiment itself never imports this module: the command line (or a
user) hands the runner to :meth:`piami.lab.Experiment.__call__`.

Example:
    >>> from piami.lab import get_experiment                            # doctest: +SKIP
    >>> exp = get_experiment("scaling-from-statistics")                  # doctest: +SKIP
    >>> runner = plan_runner("out/runs", workers=2)                      # doctest: +SKIP
    >>> result = exp(exp.make_config(quick=True), runner=runner)         # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from piami.lab.plan import PlanOutcome, PlanRunner, SubRun, check_plan
from piami.runs.execution import Backend, execute
from piami.runs.store import RunStore
from piami.runs.sweep import specs_for


def plan_runner(
    store: str | os.PathLike,
    *,
    backend: Backend = "local",
    workers: int | None = 1,
    address: str | None = None,
    retries: int = 0,
    ray_host: str = "127.0.0.1",
    cpus_per_run: int = 1,
) -> PlanRunner:
    """A runner that executes a plan's sub-runs as stored runs in ``store``.

    Args:
        store: the run store's folder (finished sub-runs of the same code are reused).
        backend: ``"local"`` (process pool; ``workers=1`` runs in this process) or ``"ray"``.
        workers: sub-runs in flight (default 1; None: the cores or the cluster's CPUs).
        address: Ray cluster to connect to; None starts one on this machine.
        retries: further attempts for a sub-run that fails.
        ray_host: where a Ray cluster started here listens (loopback).
        cpus_per_run: CPUs each Ray task reserves.

    Returns:
        ``runner(subruns, *, progress) -> PlanOutcome``.
    """
    from piami.errors import PiamiValueError

    if backend not in ("local", "ray"):
        raise PiamiValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise PiamiValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    run_store = RunStore(store)

    def runner(subruns: list[SubRun], *, progress: bool = True) -> PlanOutcome:
        return run_plan(
            subruns,
            run_store,
            backend=backend,
            workers=workers,
            address=address,
            retries=retries,
            ray_host=ray_host,
            cpus_per_run=cpus_per_run,
            progress=progress,
        )

    return runner


def run_plan(
    subruns: list[SubRun], store: RunStore, *, progress: bool = True, **execution: Any
) -> PlanOutcome:
    """Execute ``subruns`` as stored runs of ``store``; see :func:`plan_runner`."""
    from piami.lab import get_experiment

    specs = []
    for sub in check_plan(subruns):  # every config is built before any run starts
        exp = get_experiment(sub.experiment)
        specs.extend(specs_for(exp, [exp.make_config(dict(sub.overrides))]))
    outcomes, _, _ = execute(
        specs, store, rerun_failed=True, progress=progress, label="sub-runs", **execution
    )
    out = PlanOutcome(n_planned=len(subruns))
    for sub, spec in zip(subruns, specs, strict=True):
        o = outcomes[spec.run_id]
        out.run_ids[sub.key] = spec.run_id
        if o.status == "failed":
            out.failures[sub.key] = o.error or "failed"
            continue
        out.results[sub.key] = store.result(spec.run_id)
        if o.status == "cached":
            out.n_cached += 1
        else:
            out.n_computed += 1
    return out
