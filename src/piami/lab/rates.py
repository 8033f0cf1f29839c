"""Rates over seeds: how often an outcome happens, with an exact interval.

Where an outcome varies with the seed (a network groks or not, an estimate lands within 10% or
not), one seed proves nothing; the comparison is a rate over several seeds against a bar stated
before looking, reported with its Clopper-Pearson interval (Clopper & Pearson 1934), exact for a
binomial count: it never under-covers, unlike the normal approximation at small n.
"""

from __future__ import annotations

import math

from piami.errors import PiamiValueError


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval of a success probability after ``k`` successes in ``n``.

    Args:
        k: successes, ``0 <= k <= n``.
        n: trials, ``n >= 1``.
        level: coverage, in (0, 1).

    Returns:
        ``(low, high)``, with ``low = 0`` when ``k = 0`` and ``high = 1`` when ``k = n``.

    Example:
        >>> lo, hi = binomial_interval(5, 5)
        >>> round(lo, 4), hi
        (0.4782, 1.0)
    """
    from scipy.stats import beta

    for name, v in (("k", k), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise PiamiValueError(f"binomial_interval: {name} must be an int, got {v!r}")
    if n < 1 or not 0 <= k <= n:
        raise PiamiValueError(f"binomial_interval needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < level < 1 or math.isnan(level):
        raise PiamiValueError(f"level must lie in (0, 1), got {level}")
    alpha = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi
