"""Atomic file writes: nothing half-written is ever left under its final name.

Each function writes to a temporary file in the destination folder, flushes and fsyncs it, then
renames it over the final name (``os.replace`` is atomic on POSIX and Windows). A process killed
mid-write leaves at most a ``.tmp-*`` file, never a truncated result.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, paths and non-finite floats into plain JSON values.

    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so that the file stays
    valid JSON (the standard has no NaN).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Serialize ``obj`` (through :func:`to_jsonable`) and write it atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, sort_keys=False) + "\n"
    return atomic_write_text(path, text)


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - non-POSIX
        return 255


def ensure_writable_dir(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Create folder ``path`` (and its parents) and check that files can be written in it.

    Run before any work, so that a bad ``--out`` fails in one line instead of after the compute.

    Raises:
        PiamiFileError: the path is an existing file, lies under a file, has a component longer
            than the file system allows, or cannot be created or written.
    """
    from piami.errors import PiamiFileError

    raw = os.fspath(path)
    if not raw or "\x00" in raw:
        raise PiamiFileError(f"{what} {raw!r} is not a usable path")
    p = Path(raw)

    def exists(q: Path) -> bool:
        try:
            return q.exists()
        except OSError:  # e.g. a name too long to even look up
            return False

    anchor = next((q for q in p.parents if exists(q)), Path("."))
    limit = _name_max(anchor if anchor.is_dir() else anchor.parent)
    long = [part for part in p.parts if len(os.fsencode(part)) > limit]
    if long:
        raise PiamiFileError(
            f"{what} {raw[:80]!r}...: the name {long[0][:40]!r}... is longer than the {limit} "
            "bytes the file system allows; choose a shorter path"
        )
    if exists(p) and not p.is_dir():
        raise PiamiFileError(
            f"{what} {raw!r} is an existing file, not a folder; choose another path"
        )
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PiamiFileError(
            f"{what} {raw!r} cannot be created or written ({reason}); choose another path"
        ) from exc
    return p


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the ``.tmp-*`` files an interrupted writer left directly in ``folder``; how many."""
    n = 0
    for tmp in Path(folder).glob(".tmp-*"):
        try:
            if tmp.is_file():
                tmp.unlink()
                n += 1
        except OSError:
            pass
    return n


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (JSON has none; piami writes 'nan' as a string)")


#: Largest JSON file piami reads back (its own results are far smaller).
MAX_JSON_BYTES = 256 * 2**20


def read_json(path: str | os.PathLike, *, what: str = "file", expect: type = dict) -> Any:
    """Read a JSON file piami wrote, treating it as untrusted input.

    Args:
        path: the file.
        what: what the file should be, for messages (e.g. ``"run spec"``).
        expect: the type the top-level value must have (``dict`` or ``list``).

    Raises:
        PiamiFileError: missing, a folder, too large, not UTF-8, not JSON, holding ``NaN`` or
            ``Infinity`` literals, or of the wrong top-level type; the message names the file.
    """
    from piami.errors import PiamiFileError

    p = Path(path)
    try:
        if p.is_dir():
            raise PiamiFileError(f"{p} should be a {what} file but is a folder")
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise PiamiFileError(f"{p} is {size:,} bytes, too large for a {what}")
        text = p.read_bytes().decode("utf-8")
    except PiamiFileError:
        raise
    except FileNotFoundError as exc:
        raise PiamiFileError(f"no {what} at {p}") from exc
    except UnicodeDecodeError as exc:
        raise PiamiFileError(
            f"{p} is not UTF-8 text, so not a piami {what} ({exc.reason})"
        ) from exc
    except OSError as exc:
        raise PiamiFileError(f"cannot read {what} {p} ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise PiamiFileError(f"{p} is not a valid piami {what} ({str(exc)[:200]})") from exc
    if not isinstance(data, expect):
        raise PiamiFileError(
            f"{p} is not a piami {what}: expected a JSON {expect.__name__}, got "
            f"{type(data).__name__}"
        )
    return data
