"""Windows of a raw symbol sequence: training batches and held-out sets cut from data.

A process gives fresh sequences at will; data is one long sequence (or a few rows of sequences)
fixed once. A network of context ``n_ctx`` trained on data reads *windows* of ``n_ctx + 1``
symbols (``n_ctx`` inputs and the ``n_ctx`` next symbols as targets), cut at random offsets, and a
window never crosses from one row into the next (rows are separate sequences).

- :func:`window_sampler` draws training batches: ``sample(n, rng)`` returns ``n`` windows at random
  rows and offsets, with replacement, the ``data(batch_size, rng)`` form of
  :func:`piami.train.train`.
- :func:`disjoint_windows` cuts held-out sets: every row is cut into consecutive, non-overlapping
  slots of ``length`` symbols (so no two windows share a symbol) from which sets are drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError

__all__ = ["as_rows", "disjoint_windows", "window_sampler"]


def as_rows(tokens: np.ndarray) -> np.ndarray:
    """``tokens`` as int64 rows ``(n_rows, row_len)``: a 1-D sequence is one row.

    Raises:
        PiamiShapeError: not 1-D or 2-D, or empty.
    """
    arr = np.asarray(tokens)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise PiamiShapeError(
            f"symbols must be a non-empty 1-D sequence or 2-D rows (n_rows, row_len); got shape "
            f"{arr.shape}"
        )
    return arr.reshape(1, -1).astype(np.int64) if arr.ndim == 1 else arr.astype(np.int64)


def window_sampler(
    rows: np.ndarray, length: int
) -> Callable[[int, np.random.Generator], np.ndarray]:
    """``sample(n, rng)``: ``n`` windows of ``length`` symbols at random rows and offsets.

    Each call draws the rows, then the offsets (uniform over ``0 .. row_len - length``), from
    ``rng``; windows may overlap and repeat (sampling with replacement).

    Args:
        rows: ``(n_rows, row_len)`` symbols (see :func:`as_rows`); rows are never crossed.
        length: symbols per window (``n_ctx + 1`` for next-token training).

    Returns:
        ``sample(n, rng) -> (n, length)`` int array.

    Raises:
        PiamiValueError: the rows are shorter than one window.

    Example:
        >>> sample = window_sampler(np.arange(10)[None, :], 4)
        >>> w = sample(3, np.random.default_rng(0))
        >>> w.shape, bool((np.diff(w, axis=1) == 1).all())
        ((3, 4), True)
    """
    if rows.ndim != 2 or rows.shape[1] < length or length < 1:
        raise PiamiValueError(
            f"cannot cut windows of {length} symbols from rows of shape {rows.shape}; give rows "
            f"(n_rows, row_len) with row_len >= {length}"
        )

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = rng.integers(0, rows.shape[0], n)
        o = rng.integers(0, rows.shape[1] - length + 1, n)
        return rows[r[:, None], o[:, None] + np.arange(length)]

    return sample


def disjoint_windows(rows: np.ndarray, length: int) -> np.ndarray:
    """Every row cut into consecutive non-overlapping windows of ``length`` symbols.

    The tail of a row shorter than a window is dropped. Draw held-out sets from the result (e.g.
    ``windows[rng.choice(len(windows), n, replace=False)]``): its windows share no symbol.

    Args:
        rows: ``(n_rows, row_len)`` symbols (see :func:`as_rows`).
        length: symbols per window.

    Returns:
        ``(n_rows * (row_len // length), length)`` windows, row by row in order.

    Example:
        >>> disjoint_windows(np.arange(7)[None, :], 3).tolist()
        [[0, 1, 2], [3, 4, 5]]
    """
    if rows.ndim != 2 or length < 1:
        raise PiamiShapeError(
            f"disjoint_windows takes rows (n_rows, row_len) and a length >= 1; got shape "
            f"{rows.shape} and length {length}"
        )
    per_row = rows.shape[1] // length
    return rows[:, : per_row * length].reshape(rows.shape[0] * per_row, length)
