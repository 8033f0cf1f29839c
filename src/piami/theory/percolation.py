r"""Exact laws of critical mean-field percolation clusters (the theory side of
:mod:`piami.processes.percolation`).

Brill, "Neural scaling laws rooted in the data distribution" (arXiv 2412.07942, 2024) and Brill,
"Representation learning on a random lattice" (arXiv 2504.20197, 2025, App. A): at criticality the
number of clusters of size ``s`` per site is ``n_s = e^{-s} s^{s-2} / s!`` (Fisher exponent
``tau = 5/2``), a cluster conditioned on its size is a uniform labelled (Cayley) tree, and the
distances in such a tree grow as ``sqrt(s)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from piami.errors import PiamiTypeError, PiamiValueError


def _check_positive(name: str, value: object, lo: float, integer: bool) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise PiamiTypeError(f"{name} must be {kind}, got {value!r}")
    if not (np.isfinite(value) and value >= lo):
        raise PiamiValueError(f"{name} must be >= {lo}, got {value!r}")


def cluster_size_pmf(s: np.ndarray | int) -> np.ndarray:
    """Exact law ``q(s) = 2 e^{-s} s^{s-2} / s!`` of a uniformly chosen critical cluster.

    Args:
        s: cluster sizes (``>= 1``).

    Returns:
        float64 array of ``q(s)`` (untruncated; sums to 1 over ``s >= 1``).

    Example:
        >>> float(cluster_size_pmf(1)), float(cluster_size_pmf(2))
        (0.7357588823428847, 0.1353352832366127)
    """
    s = np.asarray(s, dtype=np.float64)
    if np.any(s < 1):
        raise PiamiValueError(f"cluster sizes must be >= 1; got min {s.min()}")
    return np.exp(np.log(2.0) - s + (s - 2.0) * np.log(s) - gammaln(s + 1.0))


CAYLEY_SHAPES_6 = {
    "path": 360,  # degrees 2,2,2,2,1,1
    "star": 6,  # 5,1,1,1,1,1
    "spider_2111": 120,  # a degree-4 centre with one leg of length 2 (4,2,1,1,1,1)
    "double_star": 90,  # two adjacent degree-3 centres (3,3,1,1,1,1)
    "spider_311": 360,  # degree-3 centre with a leg of length 3: its degree-2 sites adjacent
    "spider_221": 360,  # degree-3 centre with two legs of length 2: degree-2 sites apart
}
"""Labelled trees on 6 vertices of each unlabelled shape (Cayley: 6^4 = 1296 in all)."""


def mean_tree_distance(s: int) -> float:
    """Mean distance between two distinct vertices of a uniform labelled tree on ``s`` vertices.

    ``P(d = k) = (k + 1) (s-2)! / ((s-k-1)! s^k)``: choose the ``k - 1`` inner path vertices in
    order, then a forest on ``s`` vertices rooted at the ``k + 1`` path vertices,
    ``(k + 1) s^{s-k-2}`` of them (Cayley's forest formula), out of ``s^{s-2}`` trees. Grows as
    ``sqrt(pi s / 2)``.

    Example:
        >>> mean_tree_distance(2), round(mean_tree_distance(3), 6)
        (1.0, 1.333333)
    """
    _check_positive("s", s, 2, True)
    k = np.arange(1, s, dtype=np.float64)
    logp = np.log(k + 1) + gammaln(s - 1.0) - gammaln(s - k) - k * np.log(s)
    return float(np.sum(k * np.exp(logp)))


__all__ = ["CAYLEY_SHAPES_6", "cluster_size_pmf", "mean_tree_distance"]
