"""The Ray backend on a local cluster (started once for the module): loopback only, same numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")

from piami.runs import RunStore, sweep  # noqa: E402
from piami.runs.ray_executor import start_local_ray  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]
EXP = "toy-runs"


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    ctx = start_local_ray(num_cpus=2)
    yield ctx
    ray.shutdown()


def _comparable(store: RunStore, rid: str) -> dict:
    data = json.loads((store.path(rid) / "result.json").read_text())
    for key in ("runtime_s", "timing", "code_git"):  # wall clock; git state may change mid-test
        data.pop(key, None)
    return data


def test_local_cluster_listens_on_loopback_only(cluster):
    assert cluster.address_info["node_ip_address"] == "127.0.0.1"
    assert cluster.address_info["gcs_address"].startswith("127.0.0.1:")


def test_ray_sweep_matches_inprocess_and_retries_a_dead_worker(cluster, tmp_path):
    marker = tmp_path / "died"
    base = {"work": 10}
    grid = {"scale": [0.5, 2.0], "n": [3, 17]}
    res = sweep(EXP, base, grid, seeds=1, out=tmp_path / "ray", backend="ray", progress=False)
    assert res.backend == "ray" and res.workers == 2 and res.n_finished == 4
    assert ray.is_initialized()  # a cluster the caller started is left running
    ref = sweep(EXP, base, grid, seeds=1, out=tmp_path / "local", workers=1, progress=False)
    assert ref.run_ids == res.run_ids
    a, b = RunStore(tmp_path / "local"), RunStore(tmp_path / "ray")
    for rid in ref.run_ids:
        assert _comparable(a, rid) == _comparable(b, rid)  # bit-identical metrics
    # a worker process that dies is re-executed by Ray (max_retries), within one attempt of ours
    dead = sweep(
        EXP, {"die_once": str(marker)}, out=tmp_path / "dead", backend="ray", progress=False
    )
    assert marker.exists() and dead.n_finished == 1 and dead.runs[0].attempts == 1
    # resuming on Ray redoes nothing
    again = sweep(EXP, base, grid, seeds=1, out=tmp_path / "ray", backend="ray", progress=False)
    assert (again.n_cached, again.n_finished) == (4, 0)


def test_cli_sweep_joins_an_existing_cluster_by_address(cluster, tmp_path):
    # another process (the CLI) joins the cluster started above, at its loopback address
    address = cluster.address_info["gcs_address"]
    cmd = [
        sys.executable,
        "-m",
        "piami.cli",
        "sweep",
        EXP,
        "--seeds",
        "2",
        "--backend",
        "ray",
        "--address",
        address,
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 runs: 2 ran, 0 already done, 0 failed (ray, 2 workers" in done.stdout
    assert len(list((tmp_path / "s").glob("*/result.json"))) == 2
