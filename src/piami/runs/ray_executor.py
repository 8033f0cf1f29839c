"""The Ray executor: a sweep's runs as Ray tasks, on this machine or on an existing cluster.

With no address, :func:`start_local_ray` starts a one-machine cluster that listens on 127.0.0.1
only (Ray 2.x otherwise binds its servers to every interface of the machine on Linux) with the
dashboard off. With an address (``HOST:PORT`` of a head node, ``ray://HOST:PORT`` for Ray Client, or
``auto``), the port is probed first with a short timeout, so a wrong address is a one-line error
before any run starts rather than a long hang.

Each run is one task reserving ``cpus_per_run`` CPUs; Ray re-executes a task whose worker process
died (``max_retries``). Exceptions raised by an experiment come back as failed outcomes (see
:mod:`piami.runs.executors`) and are retried by the sweep, not by Ray. Workers need piami and the
experiment's module importable; ``$PIAMI_PLUGINS`` is forwarded to a remote cluster.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from typing import Any

from piami.errors import PiamiError, PiamiValueError
from piami.runs.executors import died_outcome, execute_task

#: Seconds to wait for a TCP connection to a given Ray address before giving up.
CONNECT_TIMEOUT_S = 3.0

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise PiamiError(
            "the ray backend needs Ray: pip install 'piami[ray]' (or use --backend local)"
        ) from exc
    return ray


def probe_address(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line :class:`PiamiValueError` unless ``address``'s port accepts a connection.

    ``auto`` (find a cluster started on this machine by ``ray start``) is left to Ray.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise PiamiValueError(
            f"Ray address {address!r} must look like HOST:PORT, ray://HOST:PORT or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise PiamiValueError(
            f"cannot reach a Ray cluster at {address} ({reason} within {timeout:g} s); start one "
            "with `ray start --head` or leave out --address to start one on this machine"
        ) from exc


@contextlib.contextmanager
def _loopback_mode(on: bool) -> Iterator[Any]:
    """Make this process's Ray use 127.0.0.1 as its node address while the block runs.

    Ray on Linux replaces a loopback node address by the machine's routable one unless its "no
    cluster" mode is on: read from the environment when ray is first imported, then kept as a
    constant. Both are set for the block and restored after it, so that later connections to
    remote clusters from this process still work.
    """
    var = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    old_env = os.environ.get(var)
    if on:
        os.environ[var] = "0"
    ray = _import_ray()
    from ray._private import ray_constants

    old_const = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if on and old_const is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield ray
    finally:
        if old_const is not None:
            ray_constants.ENABLE_RAY_CLUSTER = old_const
        if on:
            if old_env is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old_env


def start_local_ray(num_cpus: int | None = None, *, host: str = "127.0.0.1") -> Any:
    """Start Ray on this machine, listening on ``host`` (loopback by default), dashboard off.

    Returns:
        Ray's context (``.address_info["node_ip_address"]`` is the address it listens on).
    """
    loopback = host in _LOOPBACK
    kwargs: dict[str, Any] = {} if loopback else {"_node_ip_address": host}
    with _loopback_mode(loopback) as ray:
        ctx = ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, **kwargs)
    ip = ctx.address_info.get("node_ip_address", "")
    if loopback and ip not in _LOOPBACK:
        warnings.warn(
            f"Ray listens on {ip}, not on the loopback address: this Ray version ignored the "
            "request; firewall the machine or pass an address of a cluster you control",
            RuntimeWarning,
            stacklevel=2,
        )
    return ctx


def connect_ray(address: str) -> Any:
    """Connect this process to the Ray cluster at ``address`` (probed first; see the module doc).

    A cluster on this machine's loopback address is joined with a loopback node address too (Ray
    would otherwise announce the routable one and wait for a node that never answers).
    """
    probe_address(address)
    host = address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
    env = {k: os.environ[k] for k in ("PIAMI_PLUGINS",) if os.environ.get(k)}
    with _loopback_mode(host in _LOOPBACK) as ray:
        try:
            return ray.init(
                address=address,
                log_to_driver=False,
                runtime_env={"env_vars": env} if env else None,
            )
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            msg = lines[0] if lines else type(exc).__name__
            raise PiamiValueError(f"cannot connect to Ray at {address}: {msg}") from exc


class RayExecutor:
    """Runs tasks on Ray; see the module docstring.

    Args:
        workers: runs in flight; default: the cluster's CPUs // ``cpus_per_run``. For a cluster
            started here, also its number of CPUs.
        address: an existing cluster; None starts one on this machine.
        cpus_per_run: CPUs each task reserves (also its torch/BLAS threads).
        worker_retries: times Ray re-executes a run whose worker died.
        host: the address a cluster started here listens on.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        address: str | None = None,
        cpus_per_run: int = 1,
        worker_retries: int = 3,
        host: str = "127.0.0.1",
    ) -> None:
        if cpus_per_run < 1:
            raise PiamiValueError(f"cpus_per_run must be >= 1, got {cpus_per_run}")
        ray = _import_ray()
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address:
                connect_ray(address)
            else:
                start_local_ray(workers, host=host)
            self._started = True
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.slots = workers or max(1, int(cpus // cpus_per_run))
        self.threads = cpus_per_run
        self._remote = ray.remote(num_cpus=cpus_per_run, max_retries=worker_retries)(execute_task)
        self._inflight: set[Any] = set()

    def submit(self, task: dict[str, Any]) -> Any:
        ref = self._remote.remote(task)
        self._inflight.add(ref)
        return ref

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        ray = self._ray
        ready, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:  # take every one that is done, not only the first
            ready, _ = ray.wait(handles, num_returns=len(handles), timeout=0)
        out = []
        for ref in ready:
            self._inflight.discard(ref)
            try:
                out.append((ref, ray.get(ref)))
            except Exception as exc:  # worker died more than max_retries times, or lost object
                out.append((ref, died_outcome(exc, "the Ray task failed")))
        return out

    def close(self, *, abort: bool = False) -> None:
        if abort:
            for ref in list(self._inflight):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
        self._inflight.clear()
        if self._started:
            self._ray.shutdown()
            self._started = False
