"""Sweep executors: 8 independent CPU-bound runs, sequential vs local process
pool vs Ray, 2 workers.

Each run is the toy experiment of ``tests/runs`` burning ~3 s of single-threaded CPU (products
of 96x96 float64 matrices) plus a small torch computation, so that each worker pays what a real
piami run pays at start-up (importing torch; the toy imports it inside its first run, so that cost
shows in the run times, not in the overhead). Figures, each against the sequential sweep measured
in the same process:

- speed-up = sequential wall time / backend wall time (target >= 1.7x with 2 workers);
- overhead per run = (workers x wall - sum of the runs' own run times) / runs: worker-seconds spent
  outside experiment code (start-up, pickling, store writes, idle), per run;
- the ceiling: the same CPU work in 2 bare processes (no piami), i.e. what the machine gives now.

Ray is timed on a cluster started here (its start-up printed apart) and then reused. On a machine
shared with other jobs every figure is depressed; the load average is printed beside them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

N_RUNS = 8
WORKERS = 2
TARGET_S = 3.0  # seconds of CPU per run
TOY_DIR = Path(__file__).resolve().parent.parent / "tests" / "runs"


def _setup_toy() -> None:
    """Make the toy experiment importable here and in every worker (spawned or Ray)."""
    sys.path.insert(0, str(TOY_DIR))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(TOY_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
    plugins = [p for p in os.environ.get("PIAMI_PLUGINS", "").split(",") if p]
    os.environ["PIAMI_PLUGINS"] = ",".join([*plugins, "toy_experiment"])
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import toy_experiment

    from piami.experiments import list_experiments, register

    register(toy_experiment.EXPERIMENT)
    list_experiments()  # discovery (imports torch) here, not inside the sequential timing


def _calibrate() -> int:
    """Iterations of the toy's burn loop that take ~TARGET_S seconds on one core here."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    from toy_experiment import burn

    with threadpool_limits(1):
        n, dt = 50, 0.0
        while dt < 0.5:
            n *= 2
            t0 = time.perf_counter()
            burn(n, np.random.default_rng(0))
            dt = time.perf_counter() - t0
    return max(1, int(n * TARGET_S / dt))


def _runtimes(out: Path) -> float:
    return sum(json.loads(p.read_text())["runtime_s"] for p in out.glob("*/result.json"))


def _timed(label: str, work: int, **kw) -> tuple[float, float, float]:
    from piami.runs import sweep

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = sweep("toy-runs", {"work": work}, seeds=N_RUNS, out=tmp, progress=False, **kw)
        wall = time.perf_counter() - t0
        if res.n_finished != N_RUNS:
            raise RuntimeError(f"{label}: {res.summary()}")
        busy = _runtimes(Path(tmp))
    return wall, busy, float(res.workers)


def _bare_parallel(work: int) -> float:
    """Wall time of the same CPU work in WORKERS bare processes (no piami): the
    machine's ceiling."""
    import subprocess

    per = N_RUNS // WORKERS
    code = (
        "import numpy as np, sys; from toy_experiment import burn\n"
        f"for s in range({per}): burn({work}, np.random.default_rng(s))"
    )
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(WORKERS)]
    if any(p.wait() for p in procs):
        raise RuntimeError("bare burner failed")
    return time.perf_counter() - t0


def main() -> None:
    _setup_toy()
    from threadpoolctl import threadpool_limits

    work = _calibrate()
    load0 = os.getloadavg()[0]
    print(
        f"{N_RUNS} runs of ~{TARGET_S:g} s (toy-runs, work={work}), {WORKERS} workers, "
        f"{os.cpu_count()} cores; load average {load0:.1f} at start"
    )
    rows = []
    with threadpool_limits(1):  # the sequential baseline on one core too, as each pool worker
        wall, busy, _ = _timed("sequential", work, workers=1)
    rows.append(("sequential (in process)", wall, busy, 1.0))
    bare = _bare_parallel(work)
    wall, busy, w = _timed("local pool", work, workers=WORKERS)
    rows.append(("local pool (spawn)", wall, busy, w))
    try:
        import ray

        from piami.runs.ray_executor import start_local_ray

        t0 = time.perf_counter()
        start_local_ray(num_cpus=WORKERS)
        ray_start = time.perf_counter() - t0
        try:
            wall, busy, w = _timed("ray", work, backend="ray", workers=WORKERS)
        finally:
            ray.shutdown()
        rows.append(("ray (cluster up)", wall, busy, w))
        rows.append(("ray (incl. cluster start)", wall + ray_start, busy, w))
    except ImportError:
        print("ray is not installed: pip install 'piami[ray]' to time the ray backend")
    seq = rows[0][1]
    ceiling = seq / bare
    print(
        f"{'backend':<26} {'wall s':>7} {'speed-up':>9} {'of ceiling':>10} {'overhead/run s':>15} "
        f"{'run s (sum)':>12}"
    )
    for label, wall, busy, w in rows:
        over = (w * wall - busy) / N_RUNS
        print(
            f"{label:<26} {wall:7.2f} {seq / wall:8.2f}x {seq / wall / ceiling:10.0%} "
            f"{over:15.3f} {busy:12.2f}"
        )
    print(
        f"ceiling: {WORKERS} bare processes doing the same work (no piami, no torch) take "
        f"{bare:.2f} s, a speed-up of {ceiling:.2f}x: the most this machine gives now"
    )
    print(
        f"target: >= 1.7x over sequential with {WORKERS} workers; "
        f"load average {os.getloadavg()[0]:.1f} at end (>{os.cpu_count()} means a shared machine: "
        "speed-ups depressed)"
    )


if __name__ == "__main__":
    main()
