"""Input checks shared by the process classes: each raises a PiamiError saying what to fix."""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError


def as_tensor(T: Any) -> np.ndarray:
    try:
        A = np.array(T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(
            "T must be a real array of shape (n_symbols, n_states, n_states); got "
            f"{type(T).__name__} that numpy cannot convert to float64 ({exc})"
        ) from None
    if A.ndim != 3:
        raise PiamiShapeError(
            "T must have rank 3, (n_symbols, n_states, n_states) with "
            f"T[x, i, j] = Pr(emit x, go to j | in i); got shape {A.shape}"
        )
    if 0 in A.shape:
        raise PiamiShapeError(
            f"T has an empty axis: shape {A.shape}; need at least 1 symbol and state"
        )
    if A.shape[1] != A.shape[2]:
        raise PiamiShapeError(
            f"T[x] must be square (n_states, n_states); got shape {A.shape}; "
            "is the symbol axis first?"
        )
    bad = ~np.isfinite(A)
    if bad.any():
        x, i, j = (int(v) for v in np.argwhere(bad)[0])
        raise PiamiValueError(
            f"T has a non-finite entry T[{x}, {i}, {j}] = {A[x, i, j]} (state {i})"
        )
    return A


def check_tokens(tokens: Any, n_symbols: int) -> tuple[np.ndarray, bool]:
    """Tokens as int64 ``(n, L)`` and whether a single ``(L,)`` sequence was given."""
    try:
        arr = np.asarray(tokens)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(
            f"tokens must be an integer array; numpy cannot read them ({exc})"
        ) from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)
    ):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and arr.size
            and np.isfinite(arr).all()
            and np.all(arr == np.round(arr))
            and np.abs(arr).max() < 2**53
        ):
            arr = arr.astype(np.int64)
        elif arr.size == 0 and arr.dtype != object:
            arr = arr.astype(np.int64)
        else:
            raise PiamiTypeError(f"tokens must be integers; got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise PiamiShapeError(
            f"tokens must have shape (seq_len,) or (n_seqs, seq_len); got {arr.shape}"
        )
    single = arr.ndim == 1
    arr = np.atleast_2d(arr).astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n_symbols):
        raise PiamiValueError(
            f"tokens must lie in [0, {n_symbols}); got values from {arr.min()} to {arr.max()}"
        )
    return arr, single


def check_count(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise PiamiTypeError(f"{name} must be an int; got {v!r}")
    if v < minimum:
        raise PiamiValueError(f"{name} must be >= {minimum}; got {v}")
    return int(v)


__all__ = ["as_tensor", "check_count", "check_tokens"]
