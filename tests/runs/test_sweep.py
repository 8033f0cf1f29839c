"""Local process pool: same numbers as in process, dead workers retried, a
SIGKILLed sweep resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from piami.runs import RunStore, load, sweep

EXP = "toy-runs"


def _comparable(path: Path) -> dict:
    """result.json without its wall time, the one field allowed to differ between executions."""
    data = json.loads((path / "result.json").read_text())
    for key in ("runtime_s", "timing", "code_git"):  # wall clock; git state may change mid-test
        data.pop(key, None)
    return data


@pytest.mark.slow
def test_pool_matches_inprocess_bit_for_bit_and_retries_a_dead_worker(tmp_path):
    # the first run to start kills its worker (os._exit) and breaks the pool: it and the run
    # beside it come back as failed attempts and are retried on a fresh pool
    base = {"work": 20, "die_once": str(tmp_path / "died")}
    grid = {"scale": [0.5, 2.0], "n": [3, 17]}
    pool = sweep(EXP, base, grid, seeds=1, out=tmp_path / "b", workers=2, retries=2, progress=False)
    assert (tmp_path / "died").exists()
    assert pool.backend == "localpool" and pool.workers == 2 and pool.n_finished == 4
    # which run dies, and whether its neighbour finished first, is a race: count, not position
    assert max(r.attempts for r in pool.runs) == 2 and all(r.attempts <= 2 for r in pool.runs)
    assert not list((tmp_path / "b").glob("*/error.json"))  # cleared by the successful retry
    # the same configs in this process (the marker exists now: nobody dies)
    ref = sweep(EXP, base, grid, seeds=1, out=tmp_path / "a", workers=1, progress=False)
    assert ref.run_ids == pool.run_ids
    for rid in ref.run_ids:
        a = _comparable(RunStore(tmp_path / "a").path(rid))
        b = _comparable(RunStore(tmp_path / "b").path(rid))
        assert a == b  # metrics, measured values, config: identical floats


def _cmd(out: Path, log: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "piami.cli",
        "sweep",
        EXP,
        "--seeds",
        "6",
        "--set",
        f"log={log}",
        "--set",
        "sleep_s=0.7",
        "--set",
        "use_torch=false",
        "--workers",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]


def _finished(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_sigkilled_sweep_resumes_without_redoing_or_half_files(tmp_path):
    out, log = tmp_path / "store", tmp_path / "log.txt"
    proc = subprocess.Popen(
        _cmd(out, log), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while len(_finished(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = _finished(out)
        n_log_at_kill = len(log.read_text().splitlines())
        # the pool's workers notice their parent is gone and exit: nothing keeps running
        assert _group_gone(proc.pid, timeout=15), "workers outlived the killed sweep"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert 1 <= len(before) < 6, f"kill was not mid-way: {len(before)} of 6 finished"
    store = RunStore(out)
    seed_of = {i.spec.run_id: i.spec.seed for i in store.list()}
    assert len(seed_of) == 6  # every run was planned (spec.json) before any ran

    resumed = subprocess.run(_cmd(out, log), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{6 - len(before)} ran, {len(before)} already done, 0 failed" in resumed.stdout

    after = _finished(out)
    assert set(after) == set(seed_of)  # every run present, each in its one folder
    assert all(after[rid] == mtime for rid, mtime in before.items())  # finished: not rewritten
    new_starts = [int(line.split()[0]) for line in log.read_text().splitlines()[n_log_at_kill:]]
    assert not {seed_of[rid] for rid in before} & set(new_starts)  # finished: not re-executed
    assert sorted(set(new_starts)) == sorted(seed_of[r] for r in set(seed_of) - set(before))
    assert not list(out.rglob(".tmp-*"))  # no temporary left behind
    for rid in after:
        data = json.loads((store.path(rid) / "result.json").read_text())  # parses: whole
        assert data["seed"] == seed_of[rid]
    df = load(out)
    assert len(df) == 6 and sorted(df.seed) == list(range(6)) and df.passed.all()


def test_a_late_break_of_a_replaced_pool_does_not_discard_the_fresh_one():
    """Both runs of a broken pool fail, but cf.wait may report them in two rounds; by the second
    the executor already runs a fresh pool, which must survive (its runs would die with it)."""
    import concurrent.futures as cf

    from piami.runs.executors import LocalPoolExecutor

    class FakePool:
        def __init__(self):
            self._processes, self.shut = {}, False

        def shutdown(self, wait=True, cancel_futures=False):
            self.shut = True

    ex = LocalPoolExecutor(2)
    old, fresh = FakePool(), FakePool()
    late = cf.Future()
    late.set_exception(cf.process.BrokenProcessPool("old pool broke"))
    ex._pool, ex._pool_of[late] = fresh, old
    ((fut, outcome),) = ex.wait([late], timeout=1.0)
    assert fut is late and not outcome["ok"]
    assert ex._pool is fresh and not fresh.shut  # kept
    now = cf.Future()
    now.set_exception(cf.process.BrokenProcessPool("fresh pool broke"))
    ex._pool_of[now] = fresh
    ex.wait([now], timeout=1.0)
    assert ex._pool is None and fresh.shut  # a break of the current pool does discard it
