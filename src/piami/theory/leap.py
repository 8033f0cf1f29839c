"""Leap complexity and the saddle-to-saddle staircase (Abbe, Boix-Adsera & Misiakiewicz 2023).

A target on the hypercube ``x in {-1, +1}^d`` is a sum of monomials (parities)
``y(x) = sum_S c_S chi_S(x)``, ``chi_S(x) = prod_{i in S} x_i``; the ``chi_S`` are orthonormal under
the uniform measure, so ``E y^2 = sum_S c_S^2``. Order the supports ``S_1, S_2, ...``; the leap of
the order is the largest number of *new* coordinates a support brings,
``max_k |S_k \\ (S_1 u ... u S_{k-1})|``, and the **leap complexity** is the smallest leap over all
orders ("SGD learning on neural networks: leap complexity and saddle-to-saddle dynamics", def. 1).

- ``x1 + x1x2 + x1x2x3``: leap 1 (a staircase); ``x1 + x1x2x3``: leap 2; ``x1x2x3``: leap 3.
- Online SGD on a two-layer network learns the monomials one leap at a time: the loss sits on
  plateaus equal to ``sum c_S^2`` over the monomials not yet learned, and escaping a plateau
  takes ``Theta~(d^max(leap - 1, 1))`` steps (Abbe et al. 2023, conjecture 1 / theorem 2).

Greedy ordering is optimal: adding a support only enlarges the covered set and so never raises
the number of new coordinates of another, so always taking a support with the fewest new
coordinates achieves the minimum leap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError

__all__ = ["escape_exponent", "leap_complexity", "learning_order", "plateau_losses"]


def _check_supports(supports: Sequence[Sequence[int]]) -> list[frozenset[int]]:
    if isinstance(supports, (str, bytes)) or not isinstance(supports, Sequence):
        raise PiamiTypeError(
            f"supports must be a sequence of index tuples such as [(0,), (0, 1)], got {supports!r}"
        )
    if len(supports) == 0:
        raise PiamiValueError("supports is empty: give at least one monomial, e.g. [(0,)]")
    out = []
    for s in supports:
        if isinstance(s, (str, bytes)) or not isinstance(s, Sequence) or len(s) == 0:
            raise PiamiValueError(f"each support must be a non-empty tuple of indices, got {s!r}")
        for i in s:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
                raise PiamiValueError(f"support indices must be integers >= 0, got {s!r}")
        fs = frozenset(int(i) for i in s)
        if len(fs) != len(s):
            raise PiamiValueError(f"support {s!r} repeats an index (x_i^2 = 1 on the hypercube)")
        out.append(fs)
    if len(set(out)) != len(out):
        raise PiamiValueError(f"supports repeat a monomial: {supports!r}; merge their coefficients")
    return out


def learning_order(supports: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """Greedy order in which the monomials are learned, and the leap each one takes.

    Args:
        supports: the monomials, each a tuple of coordinate indices.

    Returns:
        ``(order, leaps)``: indices into ``supports`` in learning order, and the number of new
        coordinates each brings. Ties are broken by the smaller support, then by input order.

    Example:
        >>> learning_order([(0, 1, 2), (0,), (0, 1)])
        ([1, 2, 0], [1, 1, 1])
    """
    sets = _check_supports(supports)
    covered: set[int] = set()
    remaining = list(range(len(sets)))
    order, leaps = [], []
    while remaining:
        best = min(remaining, key=lambda k: (len(sets[k] - covered), len(sets[k]), k))
        order.append(best)
        leaps.append(len(sets[best] - covered))
        covered |= sets[best]
        remaining.remove(best)
    return order, leaps


def leap_complexity(supports: Sequence[Sequence[int]]) -> int:
    """Leap complexity: the smallest, over orders, of the largest number of new coordinates.

    Example:
        >>> leap_complexity([(0,), (0, 1, 2)])
        2
    """
    return max(learning_order(supports)[1])


def plateau_losses(supports: Sequence[Sequence[int]], coefficients: Sequence[float]) -> np.ndarray:
    """Mean squared error on each plateau: ``sum c_S^2`` over the monomials not yet learned.

    Learning proceeds in the greedy order of :func:`learning_order`; monomials reached with no new
    coordinate are learned together with the one before them (no saddle separates them).

    Returns:
        Plateau losses, first the initial one (``sum_S c_S^2``, network output ~ 0), last 0.

    Example:
        >>> plateau_losses([(0,), (0, 1), (0, 1, 2)], [1.0, 1.0, 1.0]).tolist()
        [3.0, 2.0, 1.0, 0.0]
    """
    coeffs = np.asarray(coefficients, dtype=np.float64)
    order, leaps = learning_order(supports)
    if coeffs.shape != (len(order),) or not np.all(np.isfinite(coeffs)):
        raise PiamiValueError(
            f"need one finite coefficient per support ({len(order)}), got {coefficients!r}"
        )
    levels = [float(np.sum(coeffs**2))]
    remaining = levels[0]
    for k, leap in zip(order, leaps, strict=True):
        remaining -= float(coeffs[k] ** 2)
        if leap == 0 and len(levels) > 1:
            levels[-1] = remaining
        else:
            levels.append(remaining)
    levels[-1] = 0.0
    return np.asarray(levels)


def escape_exponent(leap: int) -> int:
    """Exponent of ``d`` in the online-SGD steps to escape a plateau: ``max(leap - 1, 1)``.

    Abbe, Boix-Adsera & Misiakiewicz 2023 (sample complexity ``Theta~(d^max(Leap-1, 1))``).
    """
    if isinstance(leap, bool) or not isinstance(leap, (int, np.integer)) or leap < 1:
        raise PiamiValueError(f"leap must be an integer >= 1, got {leap!r}")
    return max(int(leap) - 1, 1)
