"""Runs and sweeps: many experiment runs, each done once, stored by what it is, resumable.

A **run** is one registered experiment executed with one full config. Its folder in a **store** is
named by a hash of the experiment name, the config (seed included) and the fingerprint of the code
that runs it (:func:`piami.lab.code_fingerprint`), so the same run always lands in the same place,
and a run of edited code never reuses an older result: a run whose ``result.json`` exists is never
redone, a sweep killed at any moment is resumed by running it again, and two sweeps that share runs
share their results. Files are written to a temporary name and renamed; ``result.json`` marks a
finished run.

A **sweep** is the Cartesian product of a grid of config values, times seeds, run on an executor:

- ``backend="local"`` (default): a process pool of ``workers`` processes (default: the cores);
  ``workers=1`` runs in this process, one run after the other (no start-up cost; usable from inside
  another experiment).
- ``backend="ray"``: Ray tasks, on a cluster started on this machine (listening on 127.0.0.1,
  dashboard off) or on the cluster at ``address``. Needs the ``ray`` extra.

Both give bit-identical metrics for the same configs and seeds when the runs use the same number
of threads (a pool worker limits torch and BLAS to ``cores // workers``, a Ray task to its reserved
CPUs; ``workers=1`` leaves this process's settings alone). A run that raises is retried ``retries``
times, then its ``error.json`` is written; the others go on. Only the sweep's own process writes to
the store, so Ray nodes need no shared file system.

Pool workers are *spawned* (torch is not fork-safe): a script that calls ``sweep`` with
``workers > 1`` must do so under ``if __name__ == "__main__":``, as for any multiprocessing code.
Workers import the experiment's own module (or ``$PIAMI_PLUGINS``), not this script.

Python::

    from piami.runs import load, sweep

    res = sweep("deep-linear", {"steps": 2000}, grid={"width": [16, 64, 256]}, seeds=3,
                out="out/runs", workers=4, progress=False)
    print(res.summary())          # 9 runs: 9 ran, 0 already done, 0 failed (...)
    df = load("out/runs")         # pandas: config columns, metrics.*, measured.*, passed
    df = res.frame()              # the same, for this sweep's runs only

Command line::

    piami sweep deep-linear --set steps=2000 --grid width=16,64,256 --seeds 3 --out out/runs
    piami sweep deep-linear ... --backend ray [--address HOST:PORT]
    piami runs ls [--out out/runs] [--experiment NAME]
    piami runs show RUN_ID_PREFIX

Bad input (unknown experiment or key, a grid value of the wrong type, an unreachable Ray address)
raises a one-line :class:`~piami.errors.PiamiError` before any run starts.

An experiment made of many sub-runs (a plan, :mod:`piami.lab.plan`) executes them through
:func:`plan_runner`: the same store, pool and Ray backends.
"""

from piami.runs.plans import plan_runner, run_plan
from piami.runs.store import RunInfo, RunSpec, RunStore, run_id
from piami.runs.sweep import (
    DEFAULT_STORE,
    RunOutcome,
    SweepResult,
    execute,
    parse_grid,
    plan,
    specs_for,
    sweep,
)
from piami.runs.table import load

__all__ = [
    "DEFAULT_STORE",
    "RunInfo",
    "RunOutcome",
    "RunSpec",
    "RunStore",
    "SweepResult",
    "execute",
    "load",
    "parse_grid",
    "plan",
    "plan_runner",
    "run_id",
    "run_plan",
    "specs_for",
    "sweep",
]
