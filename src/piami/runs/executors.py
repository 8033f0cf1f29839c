"""Executors: where a sweep's runs execute. In this process, in a local process pool, or on Ray.

Every executor runs the same function, :func:`execute_task`, on a plain-dict task and gets back a
plain-dict outcome: ``{"ok": True, "result": Result, ...}`` or ``{"ok": False, "error": {...}}``.
An exception inside an experiment never escapes a worker: it comes back as an outcome, and the
sweep decides whether to retry. Only the sweep's own process writes to the store, so workers need
no shared file system (a Ray cluster's nodes may not have one) and a killed worker writes nothing.

The interface the sweep uses::

    ex.slots                      # how many runs to keep in flight
    h = ex.submit(task)           # start one run
    ex.wait(handles, timeout)     # -> [(handle, outcome), ...] of those done (maybe none)
    ex.close(abort=False)         # stop workers (abort: kill them and what still runs)

Local pool: a :class:`concurrent.futures.ProcessPoolExecutor` on a ``spawn`` context (torch's thread
pools do not survive ``fork``). Each worker sets its torch/BLAS threads to ``cores // workers`` and
exits by itself when the sweep process dies (it watches its parent), so a killed sweep leaves no
orphans running. A worker that dies mid-run breaks the pool: the runs in flight come back as failed
attempts ("worker died") and a fresh pool takes the retries.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import socket
import sys
import threading
import time
from typing import Any

from piami.errors import PiamiValueError

#: Environment variables that size the BLAS / OpenMP thread pools of a worker.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def n_cores() -> int:
    """CPUs this process may use (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def make_task(spec: Any, *, threads: int | None) -> dict[str, Any]:
    """The plain-dict task a worker executes for one :class:`~piami.runs.store.RunSpec`."""
    return {
        "run_id": spec.run_id,
        "experiment": spec.experiment,
        "module": spec.module,
        "config": spec.config,
        "code": spec.code,
        "threads": threads,
    }


def _set_threads(threads: int | None) -> None:
    """Size the thread pools already loaded: BLAS/OpenMP (threadpoolctl) and torch's.

    Libraries loaded later read ``OMP_NUM_THREADS`` and friends, set by the pool's initializer
    (and by Ray for its tasks). Without this, a BLAS loaded before that (numpy comes with piami)
    keeps one thread per core in every worker: on a busy machine, small products then run many
    times slower than on one thread.
    """
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        pass
    else:
        threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _find_experiment(name: str, module: str) -> Any:
    """The experiment ``name``, importing only its own module when that defines it.

    Importing just the experiment's module (rather than discovering every experiment of piami)
    keeps a worker's start-up to what the run needs; discovery is the fallback.
    """
    from piami.lab.registry import Experiment, get_experiment

    if module and module != "__main__":
        try:
            mod = importlib.import_module(module)
        except ImportError:
            mod = None
        exp = getattr(mod, "EXPERIMENT", None)
        if isinstance(exp, Experiment) and exp.name == name:
            return exp
    return get_experiment(name)


def execute_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task (from :func:`make_task`) and return its outcome; never raises.

    The config is rebuilt from its dict and re-hashed with the worker's own code fingerprint: a
    worker whose code (piami, the experiment's module, or the numerical libraries) differs from the
    sweep's gives a different id, and the run fails loudly instead of storing a result under the
    wrong name.
    """
    from piami.lab.config import config_from_dict, config_to_dict
    from piami.lab.fingerprint import code_fingerprint
    from piami.runs.store import error_record, run_id

    where = {"host": socket.gethostname(), "pid": os.getpid()}
    t0 = time.perf_counter()
    try:
        exp = _find_experiment(task["experiment"], task.get("module", ""))
        _set_threads(task.get("threads"))
        cfg = config_from_dict(exp.config_cls, task["config"])
        code = code_fingerprint([exp.module])
        rid = run_id(exp.name, config_to_dict(cfg), code, exp.input_fingerprint(cfg))
        if rid != task["run_id"]:
            raise PiamiValueError(
                f"worker {where['host']}:{where['pid']} computes run id {rid} for run "
                f"{task['run_id']} (its code fingerprint is {code}, the sweep's "
                f"{task.get('code')}); install the same piami, experiments and numerical "
                "libraries on every worker"
            )
        result = exp(cfg, progress=False)
    except Exception as exc:
        return {
            "ok": False,
            "error": error_record(exc, attempt=0, **where),
            "wall_s": time.perf_counter() - t0,
        }
    return {"ok": True, "result": result, "wall_s": time.perf_counter() - t0, **where}


def died_outcome(exc: BaseException, what: str) -> dict[str, Any]:
    """The outcome of a run whose worker died (no result and no error came back)."""
    from piami.runs.store import error_record

    rec = error_record(exc, attempt=0)
    rec["message"] = f"{what}: {rec['message']}".rstrip(": ")
    return {"ok": False, "error": rec, "worker_died": True}


class InProcessExecutor:
    """Runs each task in this process when submitted (``workers=1``): no start-up, no pickling."""

    slots = 1

    def __init__(self) -> None:
        self._done: dict[int, dict[str, Any]] = {}
        self._next = 0

    def submit(self, task: dict[str, Any]) -> int:
        self._next += 1
        self._done[self._next] = execute_task(task)
        return self._next

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        return [(h, self._done.pop(h)) for h in handles if h in self._done]

    def close(self, *, abort: bool = False) -> None:
        self._done.clear()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            os._exit(1)  # the sweep died: stop now, do not finish a run nobody will record


def _init_worker(threads: int, parent: int) -> None:
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _set_threads(threads)


def _pool_task(task: dict[str, Any]) -> dict[str, Any]:
    return execute_task(task)


class LocalPoolExecutor:
    """A pool of ``workers`` spawned processes on this machine.

    Args:
        workers: processes (and runs in flight).
        threads: torch/BLAS threads per worker; default ``max(1, cores // workers)``.
    """

    def __init__(self, workers: int, *, threads: int | None = None) -> None:
        import multiprocessing as mp

        if workers < 1:
            raise PiamiValueError(f"workers must be >= 1, got {workers}")
        self.slots = workers
        self.threads = threads or max(1, n_cores() // workers)
        self._ctx = mp.get_context("spawn")
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pool_of: dict[cf.Future, cf.ProcessPoolExecutor] = {}  # the pool each run went to

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.slots,
                mp_context=self._ctx,
                initializer=_init_worker,
                initargs=(self.threads, os.getpid()),
            )
        return self._pool

    def submit(self, task: dict[str, Any]) -> cf.Future:
        try:
            pool = self._ensure_pool()
            fut = pool.submit(_pool_task, task)
        except cf.process.BrokenProcessPool:
            self._discard_pool()
            pool = self._ensure_pool()
            fut = pool.submit(_pool_task, task)
        self._pool_of[fut] = pool
        return fut

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        broken = False
        for fut in done:
            pool = self._pool_of.pop(fut, None)
            try:
                out.append((fut, fut.result()))
            except cf.process.BrokenProcessPool as exc:
                # a future of an already replaced pool can report late: only a break of the
                # current pool may discard it (else the fresh pool's runs would be killed too)
                broken = broken or (pool is not None and pool is self._pool)
                out.append(
                    (
                        fut,
                        died_outcome(
                            exc,
                            "a pool worker died while running this run (killed, out of memory, or "
                            "a script that calls sweep() lacks `if __name__ == '__main__':`)",
                        ),
                    )
                )
            except Exception as exc:  # e.g. a result that cannot be pickled back
                out.append((fut, died_outcome(exc, "the run's outcome did not come back")))
        if broken:
            self._discard_pool()
        return out

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._kill_workers()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _kill_workers(self) -> None:
        procs = getattr(self._pool, "_processes", None) or {}
        for p in list(procs.values()):
            if p.is_alive():
                p.kill()

    def close(self, *, abort: bool = False) -> None:
        if self._pool is None:
            return
        # Idle workers exit on their own once told to; waiting for them (torch's teardown takes
        # seconds on a busy machine) would only delay the caller.
        self._pool.shutdown(wait=False, cancel_futures=abort)
        if abort:
            self._kill_workers()
        self._pool = None
        self._pool_of.clear()
