"""Fourier analysis on the cyclic group Z_p: the instrument for modular arithmetic.

A function ``f`` on ``Z_p = {0, ..., p-1}`` expands in the real Fourier basis

    e_0(x) = 1 / sqrt(p),
    c_k(x) = sqrt(2/p) cos(w_k x),   s_k(x) = sqrt(2/p) sin(w_k x),   w_k = 2 pi k / p,

for the frequencies ``k = 1 .. (p-1)//2`` (and, when ``p`` is even, the Nyquist term
``(-1)^x / sqrt(p)`` at ``k = p/2``). The basis is orthonormal, so the energy ``||f||^2`` splits
into one share per frequency (Parseval).

Nanda et al. 2023 ("Progress measures for grokking via mechanistic interpretability", ICLR 2023,
section 4) found that a one-layer transformer trained on ``(a + b) mod p`` embeds each number
through ``cos(w_k a), sin(w_k a)`` for a handful of *key frequencies* ``k``, multiplies the two
inputs' waves into ``cos(w_k (a+b)), sin(w_k (a+b))`` in the MLP, and reads out logits

    logit(c | a, b) ~ sum_k alpha_k cos(w_k (a + b - c))                       (Nanda et al., eq. 1)

so that the correct answer ``c = a + b`` gets every wave's maximum. The
instruments here measure that:

- :func:`frequency_spectrum`, :func:`embedding_spectrum`: energy of a table (e.g. ``W_E``) per
  frequency; :func:`key_frequencies` picks the few that stand out.
- :func:`project_sum_frequencies`: projection of a table over the grid ``(a, b)`` (logits,
  activations) onto the waves ``cos(w_k (a+b)), sin(w_k (a+b))`` of chosen frequencies.
- Progress measures (Nanda et al., section 5.1): :func:`restricted_loss` keeps only the
  key-frequency part of the logits, :func:`excluded_loss` removes it;
  :func:`logit_variance_explained` is the share of the logits' variance the key frequencies carry.

Logit tables are indexed ``logits[a, b, c]`` with shape ``(p, p, p)``: the logit of answer ``c``
after the prompt ``a, b, =``. Losses are in nats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.typing import Float, Int


def _check_p(p: Any) -> int:
    if not isinstance(p, (int, np.integer)) or isinstance(p, bool) or p < 2:
        raise PiamiValueError(f"the modulus p must be an integer >= 2, got {p!r}")
    return int(p)


def _as_float_array(x: Any, name: str) -> np.ndarray:
    """numpy float64 copy of an array or a torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; no torch import needed
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(
            f"{name} must be a numeric array or tensor, got {type(x).__name__}"
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise PiamiValueError(f"{name} has non-finite entries (NaN or inf)")
    return arr


def n_frequencies(p: int) -> int:
    """Number of distinct frequencies on Z_p, the constant ``k = 0`` included: ``p // 2 + 1``."""
    return _check_p(p) // 2 + 1


def fourier_basis(p: int) -> tuple[Float[np.ndarray, "p p"], Int[np.ndarray, " p"]]:
    """The real orthonormal Fourier basis of Z_p.

    Args:
        p: the modulus.

    Returns:
        ``(basis, freqs)``: ``basis[i]`` is the i-th basis function sampled at ``x = 0 .. p-1``
        (rows ordered constant, cos 1, sin 1, cos 2, sin 2, ..., and the Nyquist cosine last when
        ``p`` is even); ``freqs[i]`` is its frequency ``k``. ``basis @ basis.T`` is the identity.

    Example:
        >>> basis, freqs = fourier_basis(5)
        >>> freqs.tolist()
        [0, 1, 1, 2, 2]
        >>> bool(np.allclose(basis @ basis.T, np.eye(5)))
        True
    """
    p = _check_p(p)
    x = np.arange(p)
    rows = [np.full(p, 1.0 / np.sqrt(p))]
    freqs = [0]
    for k in range(1, (p - 1) // 2 + 1):
        w = 2 * np.pi * k / p
        rows += [np.sqrt(2.0 / p) * np.cos(w * x), np.sqrt(2.0 / p) * np.sin(w * x)]
        freqs += [k, k]
    if p % 2 == 0:
        rows.append(np.cos(np.pi * x) / np.sqrt(p))
        freqs.append(p // 2)
    return np.stack(rows), np.asarray(freqs, dtype=np.int64)


def frequency_spectrum(values: Any, *, axis: int = 0) -> Float[np.ndarray, " n_freq"]:
    """Energy of a table per frequency of Z_p along one axis (Parseval: the energies sum
    to ``||values||^2``).

    Args:
        values: array whose ``axis`` has length ``p`` (a function on Z_p per entry of the other
            axes), e.g. the number rows of an embedding, shape ``(p, d_model)``.
        axis: the axis indexed by ``x in Z_p``.

    Returns:
        ``energy[k]``, ``k = 0 .. p // 2``: sum over the other axes of the squared coefficients of
        ``cos(w_k x)`` and ``sin(w_k x)``.
    """
    arr = _as_float_array(values, "values")
    if arr.ndim == 0:
        raise PiamiShapeError("values must have at least one axis of length p >= 2, got a scalar")
    try:
        arr = np.moveaxis(arr, axis, 0)
    except np.exceptions.AxisError as exc:
        raise PiamiShapeError(f"axis {axis} is out of range for shape {arr.shape}") from exc
    p = _check_p(arr.shape[0])
    basis, freqs = fourier_basis(p)
    coef = np.tensordot(basis, arr, axes=(1, 0)).reshape(p, -1)  # (p, rest)
    return np.bincount(freqs, weights=(coef**2).sum(axis=1), minlength=p // 2 + 1)


def embedding_spectrum(W_E: Any, p: int) -> Float[np.ndarray, " n_freq"]:
    """Energy per frequency of the number rows of an embedding matrix.

    Args:
        W_E: embedding, shape ``(d_vocab, d_model)`` with ``d_vocab >= p``; rows ``0 .. p-1`` embed
            the numbers (any further rows, such as ``'='``, are ignored).
        p: the modulus.

    Returns:
        ``energy[k]`` for ``k = 0 .. p // 2`` (see :func:`frequency_spectrum`); Nanda et al. 2023,
        fig. 3 plots its square root per cos/sin component.
    """
    p = _check_p(p)
    W = _as_float_array(W_E, "W_E")
    if W.ndim != 2 or W.shape[0] < p:
        raise PiamiShapeError(
            f"W_E must have shape (d_vocab, d_model) with d_vocab >= p = {p}, got {W.shape}"
        )
    return frequency_spectrum(W[:p], axis=0)


def key_frequencies(
    spectrum: Any, *, max_keys: int | None = None, min_gap: float = 4.0
) -> Int[np.ndarray, " n_keys"]:
    """The few frequencies that carry a spectrum: those above its largest gap.

    The non-constant frequencies (``k >= 1``) are sorted by energy, ``e_1 >= e_2 >= ...``; the key
    set is the top ``m`` with ``m <= max_keys`` maximizing the ratio ``e_m / e_{m+1}``. A trained
    modular-addition network concentrates its embedding on a handful of frequencies (Nanda et al.
    2023, fig. 3), so the ratio there is large; when no ratio reaches ``min_gap`` the spectrum has
    no key frequencies and the result is empty.

    Args:
        spectrum: energies per frequency ``k = 0 .. K`` (from :func:`frequency_spectrum`); the
            constant ``k = 0`` is never a key frequency.
        max_keys: the largest key set considered; default half the non-constant frequencies.
        min_gap: the smallest energy ratio ``e_m / e_{m+1}`` that counts as a gap (4: a factor 2 in
            amplitude).

    Returns:
        the key frequencies, sorted ascending (empty when there is no gap).

    Example:
        >>> key_frequencies(np.array([0.0, 0.01, 5.0, 0.02, 4.0, 0.01])).tolist()
        [2, 4]
    """
    e = _as_float_array(spectrum, "spectrum")
    if e.ndim != 1 or e.size < 2:
        raise PiamiShapeError(f"spectrum must be 1-D with at least 2 entries, got shape {e.shape}")
    if np.any(e < 0):
        raise PiamiValueError("spectrum holds energies, which cannot be negative")
    if not (isinstance(min_gap, (int, float)) and min_gap > 1):
        raise PiamiValueError(f"min_gap must be a number > 1, got {min_gap!r}")
    n = e.size - 1  # non-constant frequencies
    if max_keys is None:
        max_keys = max(1, n // 2)
    if not isinstance(max_keys, (int, np.integer)) or isinstance(max_keys, bool) or max_keys < 1:
        raise PiamiValueError(f"max_keys must be an integer >= 1, got {max_keys!r}")
    order = np.argsort(-e[1:], kind="stable") + 1
    sorted_e = e[order]
    best_m, best_ratio = 0, 0.0
    for m in range(1, min(int(max_keys), n) + 1):
        hi = sorted_e[m - 1]
        lo = sorted_e[m] if m < n else 0.0
        if hi <= 0:
            break
        ratio = np.inf if lo <= 0 else hi / lo
        if ratio > best_ratio:
            best_m, best_ratio = m, ratio
    if best_ratio < min_gap:
        return np.zeros(0, dtype=np.int64)
    return np.sort(order[:best_m]).astype(np.int64)


def _check_freqs(freqs: Any, p: int) -> np.ndarray:
    f = np.asarray(freqs)
    if f.ndim != 1 or (f.size and not np.issubdtype(f.dtype, np.integer)):
        raise PiamiValueError(f"frequencies must be a 1-D list of integers, got {freqs!r}")
    f = f.astype(np.int64)
    if np.any((f < 1) | (f > p // 2)):
        raise PiamiValueError(
            f"frequencies must lie in 1 .. p // 2 = {p // 2} for p = {p}, got {f.tolist()}"
        )
    if np.unique(f).size != f.size:
        raise PiamiValueError(f"frequencies must be distinct, got {f.tolist()}")
    return f


def sum_frequency_basis(p: int, freqs: Any) -> Float[np.ndarray, "n_dirs p p"]:
    """Orthonormal waves ``cos(w_k (a+b))``, ``sin(w_k (a+b))`` on the grid ``(a, b)`` of Z_p x Z_p.

    These are the directions along which Nanda et al. 2023 (section 5.1) restrict and exclude the
    logits. Each wave has squared norm ``p^2 / 2`` on the grid (``p^2`` for the Nyquist cosine,
    whose sine vanishes), and waves of different frequencies are orthogonal, so the rows returned
    are orthonormal.

    Args:
        p: the modulus.
        freqs: distinct frequencies in ``1 .. p // 2``.

    Returns:
        shape ``(n_dirs, p, p)``: a cosine and a sine per frequency (only the cosine at Nyquist).
    """
    p = _check_p(p)
    f = _check_freqs(freqs, p)
    s = np.add.outer(np.arange(p), np.arange(p))  # a + b
    rows = []
    for k in f:
        w = 2 * np.pi * k / p
        if 2 * k == p:
            rows.append(np.cos(w * s) / p)
        else:
            rows += [np.sqrt(2.0) / p * np.cos(w * s), np.sqrt(2.0) / p * np.sin(w * s)]
    if not rows:
        return np.zeros((0, p, p))
    return np.stack(rows)


def _grid(table: Any, name: str) -> np.ndarray:
    arr = _as_float_array(table, name)
    if arr.ndim < 2 or arr.shape[0] != arr.shape[1]:
        raise PiamiShapeError(
            f"{name} must have shape (p, p, ...) indexed by the pair (a, b), got {arr.shape}"
        )
    _check_p(arr.shape[0])
    return arr


def project_sum_frequencies(
    table: Any, freqs: Any, *, keep_constant: bool = True
) -> Float[np.ndarray, "p p ..."]:
    """Project a table over the grid ``(a, b)`` onto the waves of ``a + b`` at chosen frequencies.

    For every trailing index (an answer ``c``, a neuron), the function
    ``(a, b) -> table[a, b, ...]`` is projected onto
    ``span{cos(w_k (a+b)), sin(w_k (a+b)) : k in freqs}`` (plus the constant when
    ``keep_constant``).

    Args:
        table: shape ``(p, p, ...)``, e.g. logits ``(p, p, p)`` or MLP activations
            ``(p, p, d_mlp)``.
        freqs: distinct frequencies in ``1 .. p // 2`` (may be empty).
        keep_constant: also keep the mean over the grid (frequency 0).

    Returns:
        the projection, same shape as ``table``.
    """
    x = _grid(table, "table")
    p = x.shape[0]
    dirs = sum_frequency_basis(p, freqs).reshape(-1, p * p)
    flat = x.reshape(p * p, -1)
    out = dirs.T @ (dirs @ flat)
    if keep_constant:
        out = out + flat.mean(axis=0, keepdims=True)
    return out.reshape(x.shape)


def remove_sum_frequencies(table: Any, freqs: Any) -> Float[np.ndarray, "p p ..."]:
    """``table`` minus its projection onto the waves of ``a + b`` at ``freqs``
    (the constant stays)."""
    x = _grid(table, "table")
    return x - project_sum_frequencies(x, freqs, keep_constant=False)


def _check_logits(logits: Any) -> np.ndarray:
    x = _grid(logits, "logits")
    p = x.shape[0]
    if x.ndim != 3 or x.shape[2] != p:
        raise PiamiShapeError(
            f"logits must have shape (p, p, p) = logits[a, b, c], got {x.shape}; keep only the "
            "answers 0 .. p-1 (drop the '=' token's column)"
        )
    return x


def _check_mask(mask: Any, p: int) -> np.ndarray:
    if mask is None:
        return np.ones((p, p), dtype=bool)
    m = np.asarray(mask)
    if m.shape != (p, p) or m.dtype != bool:
        raise PiamiShapeError(
            f"mask must be a boolean array of shape ({p}, {p}) selecting pairs (a, b), "
            f"got dtype {m.dtype} and shape {m.shape}"
        )
    if not m.any():
        raise PiamiValueError("mask selects no pair (a, b)")
    return m


def grid_cross_entropy(logits: Any, mask: Any = None) -> float:
    """Mean cross entropy (nats) of ``logits[a, b, :]`` against the answer ``(a + b) mod p``.

    Args:
        logits: shape ``(p, p, p)``.
        mask: boolean ``(p, p)`` selecting the pairs averaged over (default all).
    """
    x = _check_logits(logits)
    p = x.shape[0]
    m = _check_mask(mask, p)
    target = np.add.outer(np.arange(p), np.arange(p)) % p
    logp = np.take_along_axis(x, target[..., None], axis=2)[..., 0] - logsumexp(x, axis=2)
    return float(-logp[m].mean())


def grid_accuracy(logits: Any, mask: Any = None) -> float:
    """Fraction of the pairs in ``mask`` whose largest logit is the answer ``(a + b) mod p``."""
    x = _check_logits(logits)
    p = x.shape[0]
    m = _check_mask(mask, p)
    target = np.add.outer(np.arange(p), np.arange(p)) % p
    return float((x.argmax(axis=2) == target)[m].mean())


def restricted_loss(logits: Any, freqs: Any, mask: Any = None) -> float:
    """Loss (nats) of the logits kept to the constant and the key-frequency waves of ``a + b``.

    Nanda et al. 2023, section 5.1: falls below the full test loss once the Fourier circuit forms,
    before the test loss itself drops. ``mask`` selects the pairs averaged over (default all).
    """
    return grid_cross_entropy(project_sum_frequencies(_check_logits(logits), freqs), mask)


def excluded_loss(logits: Any, freqs: Any, mask: Any = None) -> float:
    """Loss (nats) of the logits with the key-frequency waves of ``a + b`` removed.

    Nanda et al. 2023, section 5.1, evaluate it on the training pairs (pass their mask): it rises
    while the train loss stays low, showing the network comes to rely on the key frequencies.
    """
    return grid_cross_entropy(remove_sum_frequencies(_check_logits(logits), freqs), mask)


def logit_variance_explained(logits: Any, freqs: Any, mask: Any = None) -> float:
    """Fraction of the logits' variance carried by the key-frequency waves of ``a + b``.

    The logits are first centred over the answers ``c`` (a constant added to every answer's logit
    changes no prediction) and then over the grid (a per-answer bias is frequency 0). With ``L`` the
    centred logits and ``P L`` their projection on the waves of ``freqs`` (over the whole grid),

        FVE = 1 - sum_{(a,b) in mask, c} (L - P L)^2 / sum_{(a,b) in mask, c} L^2.

    Args:
        logits: shape ``(p, p, p)``.
        freqs: the frequencies whose waves count as explained.
        mask: boolean ``(p, p)``: the pairs the variance is measured on, e.g. the held-out ones.

    Returns:
        the fraction, 1 for logits made only of these waves; it can be negative only when the mask
        is a small, unrepresentative subset.
    """
    x = _check_logits(logits)
    p = x.shape[0]
    m = _check_mask(mask, p)
    x = x - x.mean(axis=2, keepdims=True)
    x = x - x.mean(axis=(0, 1), keepdims=True)
    resid = remove_sum_frequencies(x, freqs)
    total = float((x[m] ** 2).sum())
    if total == 0.0:
        raise PiamiValueError("the logits are constant on the masked pairs: no variance to explain")
    return 1.0 - float((resid[m] ** 2).sum()) / total


__all__ = [
    "embedding_spectrum",
    "excluded_loss",
    "fourier_basis",
    "frequency_spectrum",
    "grid_accuracy",
    "grid_cross_entropy",
    "key_frequencies",
    "logit_variance_explained",
    "n_frequencies",
    "project_sum_frequencies",
    "remove_sum_frequencies",
    "restricted_loss",
    "sum_frequency_basis",
]
