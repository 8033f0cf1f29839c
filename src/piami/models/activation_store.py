"""Activations on disk: safetensors shards written batch by batch, read back lazily.

A large collection (every layer of a pretrained LM over many sequences) need not fit in memory:
:func:`~piami.models.collect_activations` with ``out=FOLDER`` writes each batch as one shard and
returns an :class:`ActivationStore`, a read-only mapping ``name -> tensor`` that opens the shards
(memory-mapped by ``safetensors.safe_open``) only when a name or a range of rows is asked for.

A store folder holds::

    shard-00000.safetensors   rows 0 .. r0-1 of every name (one batch of sequences)
    shard-00001.safetensors   the next rows ...
    index.json                names, shapes, dtypes and the shards, written last

Every file is written under a temporary name and renamed (:mod:`piami._io`), and ``index.json``
comes last, so a folder without it is not a store; a collection that fails removes what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from piami._io import atomic_write_bytes, atomic_write_text
from piami.errors import PiamiFileError, PiamiKeyError, PiamiShapeError

INDEX = "index.json"
FORMAT = "piami-activations"
VERSION = 1


class ActivationWriter:
    """Writes batches of activations into a new (or empty) folder; :meth:`finish` seals it.

    Args:
        folder: where the shards go; created if missing; must not hold files already.

    Raises:
        PiamiFileError: ``folder`` is a file, or a folder that is not empty.
    """

    def __init__(self, folder: str | Path) -> None:
        path = Path(folder)
        if path.exists() and not path.is_dir():
            raise PiamiFileError(f"out={str(path)!r} is a file; give a folder for the activations")
        if path.is_dir() and any(path.iterdir()):
            raise PiamiFileError(
                f"out={str(path)!r} is not empty; activations go to a new or empty folder "
                "(delete it or pick another)"
            )
        self._created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._shards: list[dict[str, Any]] = []
        self._tails: dict[str, tuple[list[int], str]] = {}
        self._lead: dict[str, int] = {}

    def add(self, acts: Mapping[str, torch.Tensor], rows: int) -> None:
        """Write one batch (``rows`` sequences) as the next shard."""
        for n, t in acts.items():
            tail = (list(t.shape[1:]), str(t.dtype).removeprefix("torch."))
            if self._tails.setdefault(n, tail) != tail:
                raise PiamiShapeError(
                    f"activation {n!r}: batch {len(self._shards)} has shape {tuple(t.shape)} and "
                    f"dtype {tail[1]}, earlier batches {self._tails[n]}; shards must agree"
                )
            self._lead[n] = self._lead.get(n, 0) + (t.shape[0] if t.ndim else 1)
        file = f"shard-{len(self._shards):05d}.safetensors"
        data = save_safetensors({n: t.contiguous() for n, t in acts.items()})
        atomic_write_bytes(self.path / file, data)
        self._shards.append({"file": file, "rows": int(rows)})

    def finish(self) -> ActivationStore:
        """Write ``index.json`` and return the store."""
        index = {
            "format": FORMAT,
            "version": VERSION,
            "names": list(self._tails),
            "shapes": {n: [self._lead[n], *tail] for n, (tail, _) in self._tails.items()},
            "dtypes": {n: dtype for n, (_, dtype) in self._tails.items()},
            "shards": self._shards,
        }
        atomic_write_text(self.path / INDEX, json.dumps(index, indent=1))
        return ActivationStore(self.path)

    def abort(self) -> None:
        """Remove every file this writer made (and the folder, when it made that too)."""
        for shard in self._shards:
            (self.path / shard["file"]).unlink(missing_ok=True)
        self._shards = []
        if self._created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()


class ActivationStore(Mapping[str, torch.Tensor]):
    """Read-only mapping ``name -> tensor`` over a folder written by ``collect_activations``.

    ``store[name]`` reads that name from every shard and concatenates along the first axis
    (sequences); :meth:`rows` reads a range of sequences touching only the shards it needs;
    :meth:`batches` yields one shard at a time. Nothing is held in memory between calls.

    Args:
        folder: a folder holding ``index.json`` and its shards.

    Raises:
        PiamiFileError: no ``index.json`` (not a store, or a collection that never finished).

    Example:
        >>> import tempfile
        >>> from piami.models.activation_store import ActivationWriter
        >>> folder = tempfile.mkdtemp()
        >>> writer = ActivationWriter(folder)
        >>> writer.add({"x": torch.zeros(2, 3)}, rows=2)
        >>> writer.add({"x": torch.ones(1, 3)}, rows=1)
        >>> store = writer.finish()
        >>> x = store["x"]
        >>> store.shape("x"), x[:, 0].tolist(), store.rows("x", 1, 3)[:, 0].tolist()
        ((3, 3), [0.0, 0.0, 1.0], [0.0, 1.0])
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        try:
            index = json.loads((self.path / INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PiamiFileError(
                f"{str(self.path)!r} holds no readable {INDEX}: not an activation store, or a "
                "collection that did not finish; collect again into an empty folder"
            ) from exc
        if index.get("format") != FORMAT:
            raise PiamiFileError(f"{self.path / INDEX} is not a piami activation index")
        self._names: list[str] = index["names"]
        self._shapes = {n: tuple(s) for n, s in index["shapes"].items()}
        self._shards: list[dict[str, Any]] = index["shards"]

    def __getitem__(self, name: str) -> torch.Tensor:
        self._check(name)
        parts = [self._read(s["file"], name) for s in self._shards]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {self._shapes[n]}" for n in self._names)
        return f"ActivationStore({str(self.path)!r}, {len(self._shards)} shard(s); {shapes})"

    @property
    def n_rows(self) -> int:
        """Number of sequences stored."""
        return sum(s["rows"] for s in self._shards)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of ``store[name]`` without reading it."""
        self._check(name)
        return self._shapes[name]

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Sequences ``start .. stop-1`` of ``name``, reading only the shards that hold them."""
        self._check(name)
        parts, offset = [], 0
        for s in self._shards:
            lo, hi = max(start - offset, 0), min(stop - offset, s["rows"])
            if lo < hi:
                parts.append(self._read(s["file"], name, lo, hi))
            offset += s["rows"]
        if not parts:
            return torch.empty((0, *self._shapes[name][1:]))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def batches(self, name: str) -> Iterator[torch.Tensor]:
        """``name`` one shard (one collected batch) at a time."""
        self._check(name)
        for s in self._shards:
            yield self._read(s["file"], name)

    def _check(self, name: str) -> None:
        if name not in self._shapes:
            raise PiamiKeyError(f"no activation {name!r} in this store; it holds {self._names}")

    def _read(self, file: str, name: str, lo: int | None = None, hi: int | None = None) -> Any:
        try:
            with safe_open(self.path / file, framework="pt") as f:
                return f.get_tensor(name) if lo is None else f.get_slice(name)[lo:hi]
        except (OSError, SafetensorError) as exc:
            raise PiamiFileError(f"shard {self.path / file} is missing or unreadable") from exc


__all__ = ["ActivationStore", "ActivationWriter"]
