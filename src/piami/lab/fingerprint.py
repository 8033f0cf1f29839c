"""The fingerprint of the code that runs: what makes a stored result valid to reuse.

A stored run may be reused only by the same code. The version string does not change when a file
does, so a run's id hashes :func:`code_fingerprint`: the SHA-256 of every source file of the
installed ``piami`` package (relative path and bytes, in sorted order), of any further modules that
define the experiment (a user's plugin), and of the versions of Python and of the numerical
libraries the numbers depend on. Editing any source file, or upgrading numpy or torch, makes new
runs; touching a file without changing it does not.

:func:`git_describe` (``git describe --always --dirty`` of the source tree) is recorded beside it
for a reader, but not hashed: an edit to a test or the README marks the tree dirty without
changing what ran.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

#: Hex digits of the fingerprint kept in results and run ids.
FINGERPRINT_LENGTH = 16
#: Libraries whose version can change the numbers a run computes.
NUMERIC_LIBRARIES: tuple[str, ...] = ("numpy", "scipy", "torch", "scikit-learn", "numba")


def _package_root() -> Path:
    import piami

    return Path(piami.__file__).resolve().parent


def _source_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _file_digest(path: Path) -> tuple[str, str]:
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    return str(path), hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for name in NUMERIC_LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "absent"))
    return tuple(out)


def module_files(modules: Iterable[str]) -> list[Path]:
    """Source files of the named modules that lie outside the piami package (plugins)."""
    root = _package_root()
    out = []
    for name in modules:
        if not name or name == "piami" or name.startswith("piami."):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if origin and origin.endswith(".py"):
            path = Path(origin).resolve()
            if root not in path.parents:
                out.append(path)
    return out


def code_fingerprint(modules: Iterable[str] = ()) -> str:
    """SHA-256 (first :data:`FINGERPRINT_LENGTH` hex digits) of the code a run executes.

    Args:
        modules: further modules that define the experiment (plugins outside piami); modules of
            piami itself are already covered.

    Returns:
        Lowercase hex digits; the same for the same sources and library versions.

    Example:
        >>> len(code_fingerprint()) == FINGERPRINT_LENGTH
        True
    """
    root = _package_root()
    h = hashlib.sha256()
    for name, version in _library_versions():
        h.update(f"lib {name} {version}\n".encode())
    for path in _source_files(root):
        _, digest = _file_digest(path)
        h.update(f"src {path.relative_to(root).as_posix()} {digest}\n".encode())
    for path in module_files(modules):
        _, digest = _file_digest(path)
        h.update(f"plugin {path.name} {digest}\n".encode())
    return h.hexdigest()[:FINGERPRINT_LENGTH]


def input_fingerprint(paths: Iterable[str | Path]) -> str:
    """SHA-256 (first :data:`FINGERPRINT_LENGTH` hex digits) of the contents of a run's input files.

    A run that reads a file (data, a machine) is a different run when the file's bytes change,
    even at the same path; its id hashes this beside the config (which names only the path).

    Args:
        paths: the files, in the order the run names them.

    Returns:
        Lowercase hex digits ("" for no files).

    Raises:
        PiamiFileError: a file that cannot be read.
    """
    from piami.errors import PiamiFileError

    paths = list(paths)
    if not paths:
        return ""
    h = hashlib.sha256()
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise PiamiFileError(f"cannot read the run's input file {path}: {err}") from err
        h.update(f"input {hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()[:FINGERPRINT_LENGTH]


@functools.lru_cache(maxsize=1)
def git_describe() -> str:
    """``git describe --always --dirty`` of the tree holding the package; "" when not a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=_package_root(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
