"""Executing stored runs: reuse what is finished, run the rest on an executor, record failures.

:func:`execute` is what a sweep, a plan of sub-runs and a certificate share: under the store's
lock it writes every run's spec, reuses each run whose ``result.json`` is present and readable (a
damaged one is redone), and runs the others ``workers`` at a time on the local pool, in this
process, or on Ray, retrying a failed run ``retries`` times before its ``error.json`` is written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from piami.runs.store import RunSpec, RunStore, StoreLock

Backend = Literal["local", "ray"]


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What a sweep did with one run.

    Attributes:
        spec: the run.
        status: ``"finished"`` (ran now), ``"cached"`` (finished before), or ``"failed"``.
        attempts: attempts made in this sweep.
        error: the last error message when failed.
    """

    spec: RunSpec
    status: Literal["finished", "cached", "failed"]
    attempts: int = 0
    error: str = ""


def _make_executor(
    backend: str, workers: int | None, address: str | None, ray_host: str, cpus_per_run: int
) -> Any:
    from piami.runs.executors import InProcessExecutor, LocalPoolExecutor

    if backend == "local":
        from piami.runs.executors import n_cores

        n = workers or n_cores()
        return InProcessExecutor() if n == 1 else LocalPoolExecutor(n)
    from piami.runs.ray_executor import RayExecutor

    return RayExecutor(workers=workers, address=address, host=ray_host, cpus_per_run=cpus_per_run)


def execute(
    specs: Sequence[RunSpec],
    store: RunStore,
    *,
    backend: Backend = "local",
    workers: int | None = None,
    address: str | None = None,
    retries: int = 1,
    rerun_failed: bool = True,
    progress: bool = True,
    ray_host: str = "127.0.0.1",
    cpus_per_run: int = 1,
    label: str = "runs",
) -> tuple[dict[str, RunOutcome], str, int]:
    """Run the specs whose result is missing from ``store``; reuse the others.

    Holds the store's lock throughout. Returns ``(outcomes by run id, executor name, slots)``.
    """
    with StoreLock(store.root):
        store.remove_stale_temporaries()
        for spec in specs:
            store.write_spec(spec)
        todo: list[RunSpec] = []
        outcomes: dict[str, RunOutcome] = {}
        for s in specs:
            status = store.status(s.run_id)
            if status == "finished" and not store.is_finished(s.run_id):
                status = "pending"  # a damaged result.json is redone, not trusted
            if status == "finished":
                outcomes[s.run_id] = RunOutcome(spec=s, status="cached")
            elif status == "failed" and not rerun_failed:
                err = (store.error(s.run_id) or {}).get("message", "")
                outcomes[s.run_id] = RunOutcome(spec=s, status="failed", error=err)
            elif s.run_id not in {t.run_id for t in todo}:
                todo.append(s)
        name, n_slots = "none", 0
        if todo:
            executor = _make_executor(backend, workers, address, ray_host, cpus_per_run)
            name = type(executor).__name__.removesuffix("Executor").lower()
            n_slots = executor.slots
            _drive(executor, store, todo, outcomes, len(specs), retries, progress, label)
    return outcomes, name, n_slots


def _drive(
    executor: Any,
    store: RunStore,
    todo: list[RunSpec],
    outcomes: dict[str, RunOutcome],
    total: int,
    retries: int,
    progress: bool,
    label: str,
) -> None:
    from tqdm.auto import tqdm

    from piami.runs.executors import make_task

    threads = getattr(executor, "threads", None)
    pending = deque(todo)
    attempts: dict[str, list[dict]] = {s.run_id: [] for s in todo}
    inflight: dict[Any, RunSpec] = {}
    counts = {"finished": total - len(todo), "failed": 0}
    bar = tqdm(total=total, initial=counts["finished"], desc=label, disable=not progress)

    def show(advance: int = 0) -> None:
        bar.set_postfix_str(
            f"finished {counts['finished']}, running {len(inflight)}, failed {counts['failed']}",
            refresh=not advance,
        )
        if advance:
            bar.update(advance)

    aborted = True
    try:
        while pending or inflight:
            while pending and len(inflight) < executor.slots:
                spec = pending.popleft()
                inflight[executor.submit(make_task(spec, threads=threads))] = spec
                show()
            for handle, outcome in executor.wait(list(inflight), timeout=0.5):
                spec = inflight.pop(handle)
                tries = attempts[spec.run_id]
                if outcome.get("ok"):
                    store.write_result(spec.run_id, outcome["result"])
                    outcomes[spec.run_id] = RunOutcome(
                        spec=spec, status="finished", attempts=len(tries) + 1
                    )
                    counts["finished"] += 1
                    show(1)
                else:
                    tries.append({**outcome["error"], "attempt": len(tries) + 1})
                    store.write_error(spec.run_id, tries)
                    if len(tries) <= retries:
                        pending.append(spec)
                    else:
                        outcomes[spec.run_id] = RunOutcome(
                            spec=spec,
                            status="failed",
                            attempts=len(tries),
                            error=f"{tries[-1]['type']}: {tries[-1]['message']}",
                        )
                        counts["failed"] += 1
                        show(1)
                show()
        aborted = False
    finally:
        executor.close(abort=aborted)
        bar.close()
