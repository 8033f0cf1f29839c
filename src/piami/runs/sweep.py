"""Sweeps: every combination of a grid of config values (times seeds), run once into a store.

A sweep first *plans*: it builds and validates every config (unknown experiment, unknown key, a
value of the wrong type all fail here, in one line, before any run starts), hashes each into a run
id (:func:`piami.runs.store.run_id`) and writes each run's ``spec.json``. Then it runs the runs
whose ``result.json`` is missing, ``workers`` at a time, on the chosen executor, writing each result
as it arrives. Killing a sweep loses only the runs in flight; the same command resumes it.

Retries: a run whose experiment raised, or whose worker died, is tried again up to ``retries``
more times; then its ``error.json`` is written and the sweep goes on with the others.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from piami._io import ensure_writable_dir
from piami._limits import MAX_RUNS, check_count
from piami.errors import PiamiTypeError, PiamiValueError
from piami.lab.config import check_seed
from piami.runs.execution import Backend, RunOutcome, execute
from piami.runs.store import RunSpec, RunStore, run_id

#: Where runs are stored when no ``out`` is given.
DEFAULT_STORE = Path("out") / "runs"


def parse_grid(items: Sequence[str] | None) -> dict[str, list[str]]:
    """``["width=10,100", "lr=0.1;0.2"]`` -> ``{"width": ["10", "100"], "lr": ["0.1", "0.2"]}``.

    Values are separated by commas, or by semicolons when the value contains any (so that a tuple
    field can take ``dims=1,2;3,4``).
    """
    grid: dict[str, list[str]] = {}
    for item in items or ():
        if "=" not in item:
            raise PiamiValueError(f"grid {item!r} must look like key=v1,v2,...")
        key, text = (s.strip() for s in item.split("=", 1))
        sep = ";" if ";" in text else ","
        values = [v.strip() for v in text.split(sep) if v.strip()]
        if not key or not values:
            raise PiamiValueError(f"grid {item!r} needs a key and at least one value")
        if key in grid:
            raise PiamiValueError(
                f"grid key {key!r} given twice; list all its values in one --grid"
            )
        grid[key] = values
    return grid


def _seed_list(seeds: int | Sequence[int] | None) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)):
        raise PiamiTypeError(f"seeds must be a count or a list of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise PiamiValueError(f"seeds must be >= 1 (seeds=N runs seeds 0..N-1), got {seeds}")
        check_count(seeds, MAX_RUNS, "seeds", fix="run fewer seeds")
        return list(range(seeds))
    out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) for s in out):
        raise PiamiTypeError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for s in out:
        check_seed(s)
    return out


def plan(
    experiment: str,
    base_overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: int | Sequence[int] | None = None,
    *,
    quick: bool = False,
) -> list[RunSpec]:
    """The runs of a sweep, in grid order (last key fastest, seeds fastest of all), validated.

    Args:
        experiment: registered experiment name.
        base_overrides: overrides applied to every run (strings or values).
        grid: key -> values (strings or values); runs are the Cartesian product.
        seeds: N for seeds 0..N-1, or a list of seeds; None keeps the config's seed.
        quick: start from the experiment's ``--quick`` variant.

    Raises:
        PiamiKeyError: unknown experiment or key. PiamiTypeError / PiamiValueError: a bad value.
    """
    from piami.lab import get_experiment

    exp = get_experiment(experiment)
    grid = {k: list(v) for k, v in (grid or {}).items()}
    for k, v in grid.items():
        if not v:
            raise PiamiValueError(f"grid key {k!r} has no values")
    seed_list = _seed_list(seeds)
    if seed_list is not None and "seed" in grid:
        raise PiamiValueError("give seeds either as --seeds or as --grid seed=..., not both")
    base = dict(base_overrides or {})
    keys = list(grid)
    n_runs = math.prod(len(v) for v in grid.values()) * len(seed_list or [None])
    check_count(n_runs, MAX_RUNS, "runs in this sweep", fix="sweep a smaller grid or fewer seeds")
    configs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = {**base, **dict(zip(keys, values, strict=True))}
        for seed in seed_list if seed_list is not None else [None]:
            overrides = point if seed is None else {**point, "seed": seed}
            configs.append(exp.make_config(overrides, quick=quick))
    specs: list[RunSpec] = []
    seen: set[str] = set()
    for spec in specs_for(exp, configs):
        if spec.run_id not in seen:  # e.g. "1" and "1.0" for a float field
            seen.add(spec.run_id)
            specs.append(spec)
    return specs


def specs_for(exp: Any, configs: Sequence[Any]) -> list[RunSpec]:
    """The :class:`RunSpec` of each config of experiment ``exp``, ids hashing the code that runs."""
    from piami import __version__
    from piami.lab.config import config_to_dict
    from piami.lab.fingerprint import code_fingerprint, git_describe

    code, described = code_fingerprint([exp.module]), git_describe()
    out = []
    for cfg in configs:
        cfg_dict = config_to_dict(cfg)
        out.append(
            RunSpec(
                run_id=run_id(exp.name, cfg_dict, code, exp.input_fingerprint(cfg)),
                experiment=exp.name,
                config=cfg_dict,
                seed=int(cfg.seed),
                code=code,
                piami_version=__version__,
                code_git=described,
                module=exp.module,
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """The outcome of :func:`piami.runs.sweep`.

    Attributes:
        out: the store's folder.
        runs: one :class:`RunOutcome` per run, in plan order.
        wall_s: wall time of the sweep (planning and start-up included).
        backend: executor that ran it (``"inprocess"`` for ``workers=1``).
        workers: runs kept in flight.
    """

    out: Path
    runs: list[RunOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    backend: str = ""
    workers: int = 1

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def n_finished(self) -> int:
        return self._count("finished")

    @property
    def n_cached(self) -> int:
        return self._count("cached")

    @property
    def n_failed(self) -> int:
        return self._count("failed")

    @property
    def ok(self) -> bool:
        return self.n_failed == 0

    @property
    def run_ids(self) -> list[str]:
        return [r.spec.run_id for r in self.runs]

    def results(self) -> list[Any]:
        """The :class:`~piami.experiments.Result` of each run that finished, in plan order."""
        store = RunStore(self.out)
        return [store.result(r.spec.run_id) for r in self.runs if r.status != "failed"]

    def frame(self) -> Any:
        """The runs of this sweep as a pandas DataFrame (see :func:`piami.runs.load`)."""
        from piami.runs.table import load

        return load(self.out, run_ids=self.run_ids)

    def summary(self) -> str:
        return (
            f"{len(self.runs)} runs: {self.n_finished} ran, {self.n_cached} already done, "
            f"{self.n_failed} failed ({self.backend}, {self.workers} workers, "
            f"{self.wall_s:.1f} s); store: {self.out}"
        )


def sweep(
    experiment: str,
    base_overrides: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: int | Sequence[int] | None = None,
    *,
    out: str | Path | None = None,
    backend: Backend = "local",
    workers: int | None = None,
    address: str | None = None,
    retries: int = 1,
    rerun_failed: bool = True,
    quick: bool = False,
    progress: bool = True,
    ray_host: str = "127.0.0.1",
    cpus_per_run: int = 1,
) -> SweepResult:
    """Run every config of a grid (times seeds) once, into a content-addressed store.

    Args:
        experiment: registered experiment name.
        base_overrides: overrides for every run, e.g. ``{"steps": 500}``.
        grid: key -> values; runs are the Cartesian product, e.g. ``{"width": [16, 64]}``.
        seeds: N for seeds 0..N-1 (overriding the config's ``seed``), a list, or None.
        out: the store's folder (default ``out/runs``).
        backend: ``"local"`` (process pool; ``workers=1`` runs in this process) or ``"ray"``.
        workers: runs in flight; default: cores (local) or the cluster's CPUs (ray).
        address: Ray cluster to connect to; None starts one on this machine.
        retries: further attempts for a run that fails, before its error.json is written.
        rerun_failed: retry runs that failed in an earlier sweep (default) or leave them failed.
        quick: start from each experiment's ``--quick`` variant.
        progress: show a bar with finished, running and failed counts.
        ray_host: the address a Ray cluster started here listens on (loopback by default).
        cpus_per_run: CPUs each Ray task reserves (and its torch/BLAS threads).

    Returns:
        A :class:`SweepResult` (``.frame()`` gives the DataFrame of the runs).
    """
    t0 = time.perf_counter()
    if backend not in ("local", "ray"):
        raise PiamiValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise PiamiTypeError(f"workers must be an int, got {workers!r}")
    if workers is not None and workers < 1:
        raise PiamiValueError(f"workers must be >= 1, got {workers}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PiamiValueError(f"retries must be an int >= 0, got {retries!r}")
    if isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, int) or cpus_per_run < 1:
        raise PiamiValueError(f"cpus_per_run must be an int >= 1, got {cpus_per_run!r}")
    if backend == "local" and address:
        raise PiamiValueError("--address is for --backend ray; the local backend takes none")
    specs = plan(experiment, base_overrides, grid, seeds, quick=quick)
    if backend == "ray":
        from piami.runs.ray_executor import _import_ray, probe_address

        _import_ray()  # not installed: say so now
        if address:
            probe_address(address)  # a wrong address fails now, in one line, not after planning
    store = RunStore(ensure_writable_dir(out if out is not None else DEFAULT_STORE, what="--out"))
    outcomes, name, n_slots = execute(
        specs,
        store,
        backend=backend,
        workers=workers,
        address=address,
        retries=retries,
        rerun_failed=rerun_failed,
        progress=progress,
        ray_host=ray_host,
        cpus_per_run=cpus_per_run,
        label=f"sweep {experiment}",
    )
    return SweepResult(
        out=store.root,
        runs=[outcomes[s.run_id] for s in specs],
        wall_s=time.perf_counter() - t0,
        backend=name,
        workers=n_slots,
    )
