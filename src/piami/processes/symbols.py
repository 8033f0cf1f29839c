"""A symbol sequence from a file: text (each non-whitespace character a symbol) or a ``.npy`` array.

Reconstruction (:mod:`piami.instruments.reconstruction`) reads data without a known machine. Two
formats cover what a researcher has at hand:

- a text file: every character that is not whitespace is one symbol, in file order (so
  ``"0 1 1 0"``, ``"0110"`` and ``"01\\n10"`` are the same four symbols); the alphabet is the
  sorted set of the characters seen;
- a ``.npy`` file of non-negative integers, 1-D (one sequence) or 2-D (one sequence per row, never
  read across rows); the alphabet is ``0..max``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from piami.errors import PiamiFileError, PiamiValueError

__all__ = ["SymbolSequence", "read_symbols", "symbols_from_text"]

#: Largest file read whole into memory (a text file of symbols is one byte each).
MAX_SYMBOL_FILE_BYTES = 2 * 2**30


@dataclass(frozen=True, kw_only=True)
class SymbolSequence:
    """Symbols as integer ids, with the alphabet they stand for.

    Attributes:
        tokens: ``(n,)`` or ``(n_seqs, seq_len)`` int64 ids in ``0..len(alphabet)-1``.
        alphabet: the symbol each id stands for (characters for text, ``"0"``, ``"1"``, ... for
            integer arrays).
        source: where they came from, for messages and output files.
    """

    tokens: np.ndarray
    alphabet: tuple[str, ...]
    source: str

    @property
    def n_symbols(self) -> int:
        """Alphabet size."""
        return len(self.alphabet)


def symbols_from_text(text: str, *, source: str = "text") -> SymbolSequence:
    """Every non-whitespace character of ``text`` as a symbol; the alphabet is sorted.

    Example:
        >>> seq = symbols_from_text("ab ba\\nab")
        >>> seq.alphabet, seq.tokens.tolist()
        (('a', 'b'), [0, 1, 1, 0, 0, 1])
    """
    chars = np.array([ord(c) for c in text if not c.isspace()], dtype=np.int64)
    if chars.size == 0:
        raise PiamiValueError(f"{source} holds no symbols (only whitespace); give a non-empty file")
    codes, tokens = np.unique(chars, return_inverse=True)
    return SymbolSequence(
        tokens=tokens.astype(np.int64), alphabet=tuple(chr(c) for c in codes), source=source
    )


def read_symbols(path: str | os.PathLike) -> SymbolSequence:
    """Read a symbol sequence from a text file or a ``.npy`` integer array.

    Args:
        path: a UTF-8 text file (each non-whitespace character one symbol) or a ``.npy`` file of
            non-negative integers, 1-D or 2-D (rows are separate sequences).

    Raises:
        PiamiFileError: missing, a folder, unreadable, too large, binary (not UTF-8), or a
            ``.npy`` that is not a plain integer array (pickled objects are never loaded).
        PiamiValueError: no symbols, negative ids, or more than two dimensions.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise PiamiFileError(f"{p} is a folder; give a text file or a .npy array of symbols")
        size = p.stat().st_size
    except FileNotFoundError as exc:
        raise PiamiFileError(f"no file {p}") from exc
    except OSError as exc:
        raise PiamiFileError(f"cannot read {p} ({exc.strerror or exc})") from exc
    if size > MAX_SYMBOL_FILE_BYTES:
        raise PiamiFileError(
            f"{p} is {size:,} bytes, over the {MAX_SYMBOL_FILE_BYTES:,} read at once; cut it"
        )
    if p.suffix.lower() == ".npy":
        return _read_npy(p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PiamiFileError(f"cannot read {p} ({exc.strerror or exc})") from exc
    if b"\x00" in data[:65536]:
        raise PiamiFileError(
            f"{p} looks binary (it holds NUL bytes); give text symbols, or save integer ids with "
            "numpy.save as a .npy file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PiamiFileError(
            f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {p.name}`, or save integer ids as .npy"
        ) from exc
    return symbols_from_text(text, source=str(p))


def _read_npy(p: Path) -> SymbolSequence:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PiamiFileError(
            f"{p} is not a readable .npy array of integers ({str(exc)[:160]}); write it with "
            "numpy.save(path, ids.astype(int))"
        ) from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        kind = getattr(arr, "dtype", type(arr))
        raise PiamiFileError(f"{p} holds {kind}, not integer symbol ids; save ids.astype(int)")
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise PiamiValueError(
            f"{p} has shape {arr.shape}; give a non-empty 1-D sequence or 2-D (n_seqs, seq_len)"
        )
    if arr.min() < 0:
        raise PiamiValueError(f"{p} holds negative ids (min {arr.min()}); ids must be >= 0")
    top = int(arr.max()) + 1
    return SymbolSequence(
        tokens=arr.astype(np.int64), alphabet=tuple(str(i) for i in range(top)), source=str(p)
    )
