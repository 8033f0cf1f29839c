"""The run store: one folder per run, named by a hash of everything that determines the run.

A *run* is one experiment executed with one config by one version of the code. Its identity is the
SHA-256 of the canonical JSON of ``{experiment, config, seed, code}`` (keys sorted, tuples as
lists), ``code`` being the fingerprint of the sources that run it
(:func:`piami.lab.fingerprint.code_fingerprint`): editing an experiment, or any part of piami it
may call, makes new runs instead of reusing results of older code. The first 16 hex digits name
its folder under the store's root::

    ROOT/
      .sweep.lock          held (flock) by the one sweep writing to this store
      3fa2.../             one run
        spec.json          what the run is: experiment, config, seed, code fingerprint, id
        *.png              figures, written first by :func:`piami.report.save_result`
        result.json        then the result: its presence = finished
        report.html        then the report (an older one is removed before the figures)
        error.json         only while the run's last attempt failed: type, message, traceback

Every file is written to a temporary name and renamed (:mod:`piami._io`), so a process killed at
any moment leaves either the old file, the new file, or a stray ``.tmp-*`` that the next sweep
removes; never a half-written ``result.json``. Since the same config always maps to the same
folder, a finished run is found again and never redone, whichever sweep asks for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from piami._io import atomic_write_json, read_json, to_jsonable
from piami.errors import PiamiFileError, PiamiKeyError, PiamiValueError
from piami.lab.result import Result

Status = Literal["finished", "failed", "pending"]

#: Hex digits of the SHA-256 kept in a run's id (64 bits: collisions need ~4e9 runs).
ID_LENGTH = 16


def run_id(experiment: str, config: dict[str, Any], code: str, inputs: str = "") -> str:
    """The id of a run: a hash of its experiment name, full config (seed included) and code.

    Args:
        experiment: registered experiment name.
        config: the full config as a plain dict (``dataclasses.asdict``); must hold ``seed``.
        code: the fingerprint of the code that runs it (:func:`piami.lab.code_fingerprint`);
            other code makes other runs.
        inputs: the fingerprint of the files the run reads
            (:func:`piami.lab.fingerprint.input_fingerprint`; "" when it reads none): other file
            contents at the same paths make other runs.

    Returns:
        ``ID_LENGTH`` lowercase hex digits.

    Example:
        >>> run_id("toy", {"seed": 0, "n": 3}, "ab12") == run_id("toy", {"n": 3, "seed": 0}, "ab12")
        True
        >>> run_id("toy", {"seed": 0}, "ab12") == run_id("toy", {"seed": 0}, "ab13")
        False
    """
    if "seed" not in config:
        raise PiamiValueError(f"run_id: the config of {experiment!r} has no 'seed' field")
    payload = {
        "experiment": experiment,
        "config": to_jsonable(config),
        "seed": to_jsonable(config["seed"]),
        "code": code,
    }
    if inputs:  # absent for runs that read no files, so their ids are unchanged
        payload["inputs"] = inputs
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What a run is: enough to execute it anywhere and to find it again.

    Attributes:
        run_id: :func:`run_id` of the fields below.
        experiment: registered experiment name.
        config: the full config as a plain dict (JSON types).
        seed: the config's seed.
        code: fingerprint of the code that planned the run (part of the id).
        piami_version: version that planned the run (for a reader; not part of the id).
        code_git: ``git describe --dirty`` of the planning tree (for a reader; not hashed).
        module: module defining the experiment, imported by workers that do not know the name.
    """

    run_id: str
    experiment: str
    config: dict[str, Any]
    seed: int
    code: str
    piami_version: str = ""
    code_git: str = ""
    module: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "config": self.config,
            "seed": self.seed,
            "code": self.code,
            "piami_version": self.piami_version,
            "code_git": self.code_git,
            "module": self.module,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        if not isinstance(d, dict) or not isinstance(d.get("config"), dict):
            raise TypeError(f"a run spec is a JSON object with a config object, got {d!r:.80}")
        return cls(
            run_id=str(d["run_id"]),
            experiment=str(d["experiment"]),
            config=dict(d["config"]),
            seed=int(d["seed"]),
            code=str(d.get("code", "")),
            piami_version=str(d.get("piami_version", "")),
            code_git=str(d.get("code_git", "")),
            module=str(d.get("module", "")),
        )


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """A run found in a store, as ``piami runs ls`` lists it.

    Attributes:
        spec: what the run is.
        status: ``"finished"`` (result.json present), ``"failed"`` (error.json, no result) or
            ``"pending"`` (planned, never finished: not started, running, or killed).
        path: the run's folder.
    """

    spec: RunSpec
    status: Status
    path: Path


def error_record(exc: BaseException, *, attempt: int, host: str = "", pid: int = 0) -> dict:
    """A JSON-able description of a failed attempt (type, message, traceback, where it ran)."""
    return {
        "attempt": attempt,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "host": host,
        "pid": pid,
    }


class RunStore:
    """A folder of runs, each in ``ROOT/<run_id>/`` (see the module docstring).

    Args:
        root: the store's folder; created on the first write.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, rid: str) -> Path:
        """The folder of run ``rid`` (which may not exist yet)."""
        return self.root / rid

    # -- state --------------------------------------------------------------------------------
    def is_finished(self, rid: str) -> bool:
        """Whether run ``rid`` has a readable result.json (its presence marks a complete run)."""
        if not (self.path(rid) / "result.json").is_file():
            return False
        try:
            self.result(rid)
        except PiamiFileError:
            return False
        return True

    def status(self, rid: str) -> Status:
        d = self.path(rid)
        if (d / "result.json").is_file():
            return "finished"
        if (d / "error.json").is_file():
            return "failed"
        return "pending"

    # -- writes (each atomic) -------------------------------------------------------------------
    def write_spec(self, spec: RunSpec) -> None:
        """Record what run ``spec.run_id`` is (kept when it exists: the id fixes the content)."""
        p = self.path(spec.run_id) / "spec.json"
        if p.is_dir():
            raise PiamiFileError(f"{p} is a folder where the run's spec.json belongs; remove it")
        try:
            if self.spec(spec.run_id).run_id == spec.run_id:
                return
        except PiamiFileError:  # missing or damaged: (re)write it
            pass
        atomic_write_json(p, spec.to_dict())

    def write_result(self, rid: str, result: Result) -> None:
        """Save the run's result (figures, report, then result.json) and drop any error.json."""
        from piami.report import save_result

        save_result(result, self.path(rid))
        try:
            (self.path(rid) / "error.json").unlink()
        except FileNotFoundError:
            pass

    def write_error(self, rid: str, attempts: list[dict]) -> None:
        """Record the failed attempts of run ``rid``; the last one is the run's error."""
        last = attempts[-1] if attempts else {}
        atomic_write_json(
            self.path(rid) / "error.json",
            {"run_id": rid, "n_attempts": len(attempts), **last, "attempts": attempts},
        )

    def remove_stale_temporaries(self, rid: str | None = None) -> int:
        """Delete ``.tmp-*`` files left by writers killed mid-write; returns how many.

        Only call this while holding the store's lock (no other writer is active).
        """
        dirs = [self.path(rid)] if rid else [p for p in self._run_dirs()]
        n = 0
        for d in dirs:
            for tmp in d.glob(".tmp-*"):
                try:
                    tmp.unlink()
                    n += 1
                except FileNotFoundError:
                    pass
        return n

    # -- reads --------------------------------------------------------------------------------
    def _run_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def spec(self, rid: str) -> RunSpec:
        p = self.path(rid) / "spec.json"
        if not p.exists():
            raise PiamiFileError(f"no run {rid!r} in {self.root} (no {p})")
        data = read_json(p, what="run spec")
        try:
            return RunSpec.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise PiamiFileError(f"{p} is not a piami run spec ({exc!r:.200})") from exc

    def error(self, rid: str) -> dict | None:
        """The run's error record, or None when it has none (a damaged one raises)."""
        p = self.path(rid) / "error.json"
        if not p.exists():
            return None
        data = read_json(p, what="run error record")
        return {k: v if isinstance(v, (int, str, list)) else str(v) for k, v in data.items()}

    def result(self, rid: str) -> Result:
        return Result.load(self.path(rid))

    def list(self, experiment: str | None = None) -> list[RunInfo]:
        """Every readable run of the store (of ``experiment`` only, when given), sorted by id.

        A run whose ``spec.json`` is damaged is left out here and named by :meth:`damaged`.
        """
        out = []
        for d in self._run_dirs():
            if not (d / "spec.json").exists():
                continue
            try:
                spec = self.spec(d.name)
            except PiamiFileError:
                continue
            if experiment is not None and spec.experiment != experiment:
                continue
            out.append(RunInfo(spec=spec, status=self.status(d.name), path=d))
        return out

    def damaged(self) -> dict[str, str]:
        """Run folders whose ``spec.json`` cannot be read: folder name -> what is wrong."""
        out = {}
        for d in self._run_dirs():
            if not (d / "spec.json").exists():
                continue
            try:
                self.spec(d.name)
            except PiamiFileError as exc:
                out[d.name] = str(exc)
        return out

    def resolve(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix`` (like git's short hashes)."""
        if not prefix or not all(c in "0123456789abcdef" for c in prefix.lower()):
            raise PiamiValueError(f"a run id is hex digits, got {prefix!r}")
        ids = [d.name for d in self._run_dirs() if d.name.startswith(prefix.lower())]
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise PiamiKeyError(
                f"no run id starts with {prefix!r} in {self.root}; `piami runs ls` lists them"
            )
        raise PiamiKeyError(
            f"{len(ids)} runs start with {prefix!r} in {self.root} ({', '.join(ids[:5])}...); "
            "give more digits"
        )


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``ROOT/.sweep.lock``, released when the holder dies.

    One sweep at a time writes to a store; a second one gets a one-line error instead of racing.
    On systems without ``fcntl`` (Windows) the lock is a no-op.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / ".sweep.lock"
        self._fh: Any = None

    def __enter__(self) -> StoreLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise PiamiFileError(
                f"another sweep (pid {holder}) is writing to {self.path.parent}; "
                "wait for it to end or choose another --out"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None
