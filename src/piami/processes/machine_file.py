"""A machine file as a process: the ``machine.json`` that ``piami reconstruct --out DIR`` writes.

A reconstructed machine (CSSR, Bayesian structural inference, spectral learning) is an
edge-emitting presentation ``T[x, i, j] = Pr(emit x, go to j | in i)`` over an alphabet of
symbols. ``piami reconstruct`` stores it as a JSON record whose ``transitions`` list every edge
with a non-zero weight (``|T[x, i, j]| > 1e-12``)::

    {"n_states": 2, "alphabet": ["0", "1"],
     "transitions": [{"from": 0, "to": 0, "symbol": "0", "probability": 0.5}, ...], ...}

Symbol ``alphabet[x]`` is token id ``x``. :func:`load_machine` is the exact inverse: every listed
weight is put back at ``T[x, from, to]``, every other entry is 0, and the numbers are kept as
written (JSON floats round-trip exactly), so reconstruct -> write -> load gives the same
transition tensor. The other fields of the record (measures, method, details) are not needed to
rebuild the process and are ignored. A record with only non-negative weights is a
:class:`~piami.processes.hmm.HiddenMarkovModel`, whose exact beliefs are the Bayesian filter
``eta' = eta T[x] / (eta T[x] 1)`` (Shai et al. 2024, eq. 1); one with a negative weight (a
spectral model) is a :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` (Upper 1997).

The spec ``machine("path/to/machine.json")`` names the same process wherever a process is expected
(:func:`piami.processes.from_spec`). This module holds the record's format on the processes
layer; the writer is :func:`piami.instruments.reconstruction.summary.machine_record`, and
:func:`machine_transitions` writes the same ``transitions`` list for any process (e.g. to give a
known process as a machine file).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError
from piami.processes.ghmm import GeneralizedHiddenMarkovModel
from piami.processes.hmm import HiddenMarkovModel

__all__ = ["load_machine", "machine_spec", "machine_transitions", "save_machine"]

#: Weights at or below this magnitude are left out of a record (as ``piami reconstruct`` does).
EDGE_EPS = 1e-12
#: Largest machine file read (a record of 10^5 edges is about 10 MB).
MAX_MACHINE_FILE_BYTES = 64 * 2**20
#: How to make a machine file, repeated in every error message.
_FIX = "write one with `piami reconstruct DATA --out DIR` (it writes DIR/machine.json)"


def machine_spec(path: str | os.PathLike) -> str:
    """The spec string of the machine file at ``path``: ``machine("path")``.

    Example:
        >>> machine_spec("out/machine.json")
        'machine("out/machine.json")'
    """
    return f"machine({json.dumps(os.fspath(path), ensure_ascii=False)})"


def machine_transitions(proc: Any, alphabet: tuple[str, ...] | None = None) -> list[dict]:
    """The ``transitions`` list of a machine record: every edge of ``proc.T`` above
    :data:`EDGE_EPS`, sorted by source state, symbol, target state.

    Args:
        proc: a process with a transition tensor ``T`` ``(n_symbols, n_states, n_states)``.
        alphabet: the symbol of each token id (default ``"0"``, ``"1"``, ...).

    Example:
        >>> from piami.processes import golden_mean
        >>> [(e["from"], e["symbol"], e["to"]) for e in machine_transitions(golden_mean())]
        [(0, '0', 1), (0, '1', 0), (1, '1', 0)]
    """
    T = np.asarray(proc.T, dtype=np.float64)
    alphabet = tuple(str(i) for i in range(T.shape[0])) if alphabet is None else tuple(alphabet)
    edges = [
        {"from": int(i), "to": int(j), "symbol": alphabet[x], "probability": float(T[x, i, j])}
        for x, i, j in zip(*np.nonzero(np.abs(T) > EDGE_EPS), strict=True)
    ]
    return sorted(edges, key=lambda e: (e["from"], e["symbol"], e["to"]))


def save_machine(
    path: str | os.PathLike, proc: Any, alphabet: tuple[str, ...] | None = None
) -> Path:
    """Write ``proc`` as a machine file that :func:`load_machine` reads back exactly.

    Only the fields the loader needs are written (``n_states``, ``alphabet``, ``transitions``,
    plus ``method: "given"`` and ``source``); ``piami reconstruct`` writes the same fields and more.

    Args:
        path: the file to write (its folder must exist).
        proc: a process with a transition tensor ``T`` (e.g. a catalog process: its true machine).
        alphabet: the symbol of each token id (default ``"0"``, ``"1"``, ...).

    Returns:
        The path written.
    """
    from piami._io import atomic_write_json

    T = np.asarray(proc.T)
    alphabet = tuple(str(i) for i in range(T.shape[0])) if alphabet is None else tuple(alphabet)
    if len(alphabet) != T.shape[0]:
        raise PiamiValueError(
            f"alphabet has {len(alphabet)} symbols but the process has {T.shape[0]}; give one "
            "symbol per token id"
        )
    record = {
        "source": getattr(proc, "spec", type(proc).__name__),
        "method": "given",
        "n_states": int(T.shape[1]),
        "alphabet": list(alphabet),
        "transitions": machine_transitions(proc, alphabet),
    }
    return atomic_write_json(path, record)


def _read_record(p: Path) -> dict[str, Any]:
    try:
        is_dir, size = p.is_dir(), p.stat().st_size
    except FileNotFoundError:
        raise PiamiFileError(f"no machine file {p}; {_FIX}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise PiamiFileError(f"cannot read machine file {p!s:.200} ({exc})") from None
    if is_dir:
        raise PiamiFileError(f"{p} is a folder; give the machine.json in it ({_FIX})")
    if size > MAX_MACHINE_FILE_BYTES:
        raise PiamiFileError(
            f"machine file {p} is {size:,} bytes, over the {MAX_MACHINE_FILE_BYTES:,} read; is it "
            "a machine.json?"
        )
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PiamiFileError(f"cannot read machine file {p} ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PiamiFileError(f"machine file {p} is not JSON ({str(exc)[:120]}); {_FIX}") from None
    if not isinstance(record, dict):
        raise PiamiFileError(f"machine file {p} holds a JSON {type(record).__name__}, not a record")
    missing = [k for k in ("n_states", "alphabet", "transitions") if k not in record]
    if missing:
        raise PiamiFileError(
            f"machine file {p} has no {', '.join(missing)}; a machine record holds n_states, "
            f"alphabet and transitions ({_FIX})"
        )
    return record


def _tensor(record: dict[str, Any], p: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """The transition tensor and the alphabet of a record (every field checked)."""
    n, alphabet, edges = record["n_states"], record["alphabet"], record["transitions"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PiamiValueError(f"machine file {p}: n_states must be an integer >= 1, got {n!r}")
    if (
        not isinstance(alphabet, list)
        or not alphabet
        or not all(isinstance(s, str) for s in alphabet)
        or len(set(alphabet)) != len(alphabet)
    ):
        raise PiamiValueError(
            f"machine file {p}: alphabet must be a non-empty list of distinct strings, got "
            f"{str(alphabet)[:80]}"
        )
    if not isinstance(edges, list):
        raise PiamiValueError(f"machine file {p}: transitions must be a list of edges")
    ids = {s: x for x, s in enumerate(alphabet)}
    T = np.zeros((len(alphabet), n, n))
    seen = np.zeros(T.shape, dtype=bool)
    for k, e in enumerate(edges):
        where = f"machine file {p}: transition {k} ({str(e)[:80]})"
        if not isinstance(e, dict) or {"from", "to", "symbol", "probability"} - set(e):
            raise PiamiValueError(f"{where} needs from, to, symbol and probability")
        i, j, s, w = e["from"], e["to"], e["symbol"], e["probability"]
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n for v in (i, j)):
            raise PiamiValueError(f"{where}: from and to must be states 0..{n - 1}")
        if s not in ids:
            raise PiamiValueError(f"{where}: symbol {s!r} is not in the alphabet {alphabet}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise PiamiValueError(f"{where}: probability must be a finite number")
        if seen[ids[s], i, j]:
            raise PiamiValueError(f"{where}: the edge ({i}, {s!r}, {j}) is listed twice")
        seen[ids[s], i, j] = True
        T[ids[s], i, j] = float(w)
    return T, tuple(alphabet)


def load_machine(path: str | os.PathLike) -> GeneralizedHiddenMarkovModel:
    """Read a machine file (``machine.json`` of ``piami reconstruct``) back into a process.

    Args:
        path: the machine file.

    Returns:
        A :class:`~piami.processes.hmm.HiddenMarkovModel` (every weight >= 0; CSSR and BSI
        machines) or a :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` (a negative
        weight: a spectral model), whose ``T`` holds the file's weights exactly, whose ``spec``
        is ``machine("path")`` and whose ``alphabet`` attribute is the record's alphabet.

    Raises:
        PiamiFileError: missing, a folder, unreadable, not JSON, or not a machine record.
        PiamiValueError: a malformed field, or weights that are no process (a state whose
            outgoing weights do not sum to 1); the message names the file.

    Example:
        >>> import tempfile, os
        >>> from piami.processes import golden_mean
        >>> path = os.path.join(tempfile.mkdtemp(), "machine.json")
        >>> _ = save_machine(path, golden_mean())
        >>> bool((load_machine(path).T == golden_mean().T).all())
        True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise PiamiTypeError(
            f'a machine file is a path, e.g. machine("out/machine.json"); got {type(path).__name__}'
        )
    p = Path(path)
    T, alphabet = _tensor(_read_record(p), p)
    try:
        proc = HiddenMarkovModel(T) if (T >= 0).all() else GeneralizedHiddenMarkovModel(T)
    except PiamiError as exc:
        raise PiamiValueError(f"machine file {p} is not a process: {exc}") from None
    # The constructors renormalize (rows, or the leading eigenvalue); on a record that was a
    # normalized machine this moves entries by at most an ulp. Keep the numbers as written, so
    # that load is the exact inverse of the record.
    if np.array_equal(proc.T != 0, T != 0) and np.max(np.abs(proc.T - T)) <= 1e-14:
        proc.T = T
    proc.name = "machine"
    proc._spec = machine_spec(path)
    proc.alphabet = alphabet
    return proc
