"""Known real log canonical thresholds (RLCTs): the exact side of the local learning coefficient.

In singular learning theory (Watanabe 2009) the Bayes free energy of ``n`` samples grows as
``F_n = n L_n(w0) + lambda log n - (m - 1) log log n + O_p(1)``. The real log canonical threshold
``lambda`` and its multiplicity ``m`` are read off the largest pole ``-lambda`` (of order ``m``) of
the zeta function ``zeta(z) = int K(w)^z phi(w) dw``, where ``K`` is the KL divergence from the
truth and ``phi`` the prior (positive at the true parameter). ``lambda`` replaces the regular
``d/2``: it measures the effective number of parameters, halved. The local learning coefficient
(LLC) is the same quantity restricted to a neighbourhood of one minimum; it equals the global RLCT
when that minimum is a generic point of the most singular part of the set of true parameters (for
deep linear networks: a minimal-rank factorization, every layer of rank ``r``).

This module gives ``(lambda, m)`` in closed form for four families:

* regular models with ``d`` parameters: ``(d/2, 1)`` (Watanabe 2009, Ch. 1);
* normal-crossing potentials ``K(w) = prod_i w_i^(2 k_i)`` with prior ``prod_i |w_i|^(h_i)``:
  ``lambda = min_i (h_i + 1) / (2 k_i)``, ``m`` = the number of indices attaining it
  (Watanabe 2009, Def. 6.4 and Thm 6.1 "standard form");
* two-layer reduced-rank regression ``y = B A x`` (Aoyagi & Watanabe 2005, Neural Networks 18,
  Main Theorem, its four cases);
* deep linear networks of any depth (Aoyagi 2024, Neural Networks 171, Theorem 1).

Everything is exact arithmetic on integers or float64; nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError

__all__ = [
    "deep_linear_rlct",
    "normal_crossing_expectation",
    "normal_crossing_rlct",
    "reduced_rank_rlct",
    "regular_rlct",
]


def _as_int(x: object, name: str, *, minimum: int) -> int:
    if isinstance(x, bool) or (not isinstance(x, (int,)) and not hasattr(x, "__index__")):
        raise PiamiTypeError(f"{name} must be an integer, got {x!r} ({type(x).__name__})")
    v = int(x)  # numpy integers have __index__
    if v < minimum:
        raise PiamiValueError(f"{name} must be an integer >= {minimum}, got {v}")
    return v


def regular_rlct(n_params: int) -> tuple[float, int]:
    """RLCT of a regular model: half the number of parameters, multiplicity 1.

    Args:
        n_params: number of parameters ``d`` (the Fisher information is non-degenerate).

    Returns:
        ``(d / 2, 1)``.

    Example:
        >>> regular_rlct(10)
        (5.0, 1)
    """
    d = _as_int(n_params, "n_params", minimum=0)
    return d / 2.0, 1


def normal_crossing_rlct(
    exponents: Sequence[int], prior_exponents: Sequence[int] | None = None
) -> tuple[float, int]:
    """RLCT of a normal-crossing potential ``K(w) = prod_i w_i^(2 k_i)`` near ``w = 0``.

    With prior density ``prod_i |w_i|^(h_i)`` (``h_i = 0``: positive at the origin) the zeta
    function factorises, ``int prod_i |w_i|^(2 k_i z + h_i) dw``, with poles at
    ``z = -(h_i + 1) / (2 k_i)``; the largest is ``-lambda`` and its order ``m`` counts the indices
    that attain it (Watanabe 2009, Thm 6.1). Coordinates with ``k_i = 0`` do not enter ``K``.

    Args:
        exponents: ``k_i >= 0`` (integers), at least one positive.
        prior_exponents: ``h_i >= 0`` (integers), default all zero.

    Returns:
        ``(lambda, multiplicity)``.

    Example:
        >>> normal_crossing_rlct([1, 2])   # K = w1^2 w2^4
        (0.25, 1)
        >>> normal_crossing_rlct([1, 1])   # K = w1^2 w2^2
        (0.5, 2)
    """
    if isinstance(exponents, (str, bytes)) or not isinstance(exponents, Sequence):
        raise PiamiTypeError(f"exponents must be a sequence of integers, got {exponents!r}")
    ks = [_as_int(k, f"exponents[{i}]", minimum=0) for i, k in enumerate(exponents)]
    if prior_exponents is None:
        hs = [0] * len(ks)
    else:
        if isinstance(prior_exponents, (str, bytes)) or not isinstance(prior_exponents, Sequence):
            raise PiamiTypeError(
                f"prior_exponents must be a sequence of integers, got {prior_exponents!r}"
            )
        hs = [_as_int(h, f"prior_exponents[{i}]", minimum=0) for i, h in enumerate(prior_exponents)]
        if len(hs) != len(ks):
            raise PiamiValueError(
                f"prior_exponents has {len(hs)} entries but exponents has {len(ks)}; "
                "give one per coordinate"
            )
    ratios = [Fraction(h + 1, 2 * k) for k, h in zip(ks, hs, strict=True) if k > 0]
    if not ratios:
        raise PiamiValueError(
            f"exponents {ks} are all zero: K is constant and has no zero at the origin; "
            "give at least one positive exponent"
        )
    lam = min(ratios)
    return float(lam), sum(r == lam for r in ratios)


def reduced_rank_rlct(n_in: int, n_hidden: int, n_out: int, rank: int) -> tuple[float, int]:
    """RLCT of two-layer reduced-rank regression ``y = B A x`` (Aoyagi & Watanabe 2005).

    ``A`` is ``n_hidden x n_in``, ``B`` is ``n_out x n_hidden``, the true map ``B0 A0`` has rank
    ``r``. With ``M = n_in``, ``H = n_hidden``, ``N = n_out`` (Aoyagi & Watanabe
    2005, Main Theorem):

    1. ``N + r <= M + H``, ``M + r <= N + H`` and ``H + r <= M + N``:
       ``lambda = [2(H + r)(M + N) - (M - N)^2 - (H + r)^2] / 8`` with ``m = 1`` when
       ``M + H + N + r`` is even; add ``1/8`` and ``m = 2`` when it is odd.
    2. ``M + H < N + r``: ``lambda = (HM - Hr + Nr) / 2``, ``m = 1``.
    3. ``N + H < M + r``: ``lambda = (HN - Hr + Mr) / 2``, ``m = 1``.
    4. ``M + N < H + r``: ``lambda = MN / 2``, ``m = 1``.

    Args:
        n_in: input width ``M >= 1``.
        n_hidden: hidden width ``H >= 1``.
        n_out: output width ``N >= 1``.
        rank: true rank ``0 <= r <= min(M, H, N)``.

    Returns:
        ``(lambda, multiplicity)``.

    Example:
        >>> reduced_rank_rlct(3, 3, 3, 0)
        (3.5, 2)
    """
    M = _as_int(n_in, "n_in", minimum=1)
    H = _as_int(n_hidden, "n_hidden", minimum=1)
    N = _as_int(n_out, "n_out", minimum=1)
    r = _as_int(rank, "rank", minimum=0)
    if r > min(M, H, N):
        raise PiamiValueError(
            f"rank {r} exceeds min(n_in, n_hidden, n_out) = {min(M, H, N)}; a product B A "
            "cannot have a larger rank than any of its widths"
        )
    if M + H < N + r:
        return (H * M - H * r + N * r) / 2.0, 1
    if N + H < M + r:
        return (H * N - H * r + M * r) / 2.0, 1
    if M + N < H + r:
        return M * N / 2.0, 1
    num = 2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2
    if (M + H + N + r) % 2 == 0:
        return num / 8.0, 1
    return (num + 1) / 8.0, 2


def _aoyagi_subset(m_sorted: list[int]) -> int:
    """Size ``l + 1`` of the index set S of Aoyagi (2024), Thm 1, found among sorted prefixes."""
    n = len(m_sorted)
    for size in range(2, n + 1):
        l = size - 1
        s_vals = m_sorted[:size]
        s = sum(s_vals)
        mx = s_vals[-1]
        mn_out = m_sorted[size] if size < n else math.inf
        if mx < mn_out and s >= l * mx and s < l * mn_out:
            return size
    # Aoyagi (2024) proves such a set exists; reaching here would be a bug, not bad input.
    raise PiamiValueError(  # pragma: no cover
        f"no index set S satisfies Aoyagi's conditions for M = {m_sorted}; please report this"
    )


def deep_linear_rlct(widths: Sequence[int], rank: int) -> tuple[float, int]:
    """RLCT of a deep linear network ``y = W_L ... W_1 x`` at a true map of rank ``r``.

    Aoyagi (2024), Neural Networks 171, Theorem 1. Widths ``H_1`` (input), ..., ``H_{L+1}``
    (output); ``M_j = H_j - r``. Let ``S`` be the set of ``l + 1`` indices with
    ``max_S M < min_{not S} M``, ``sum_S M >= l max_S M`` and ``sum_S M < l min_{not S} M`` (the
    shortest prefix of the ascending ``M`` that fits). With ``s = sum_S M`` and
    ``a = s - l (ceil(s / l) - 1)``::

        lambda = [-r^2 + r (H_1 + H_{L+1})] / 2 + a (l - a) / (4 l)
                 - l (l - 1) / 4 * (s / l)^2 + 1/2 sum_{i < j in S} M_i M_j
        m      = a (l - a) + 1

    For ``L = 2`` this is :func:`reduced_rank_rlct`; at full rank ``r = min_j H_j`` it is the
    regular count ``r (H_1 + H_{L+1} - r) / 2`` of the rank-``r`` matrices. The RLCT is the LLC of
    a minimal-rank factorization (every ``W_j`` of rank ``r``), not of every factorization.

    Args:
        widths: ``(H_1, ..., H_{L+1})``, input first, at least two entries (``L >= 1`` layers).
        rank: true rank ``0 <= r <= min(widths)``.

    Returns:
        ``(lambda, multiplicity)``; one layer (``L = 1``) is regular: ``(H_1 H_2 / 2, 1)``.

    Example:
        >>> deep_linear_rlct([3, 3, 3], 0)
        (3.5, 2)
        >>> deep_linear_rlct([4, 2, 4], 2)   # full rank: regular count 2 (4 + 4 - 2) / 2
        (6.0, 1)
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise PiamiTypeError(f"widths must be a sequence of integers (input first), got {widths!r}")
    H = [_as_int(h, f"widths[{i}]", minimum=1) for i, h in enumerate(widths)]
    if len(H) < 2:
        raise PiamiValueError(
            f"widths needs at least an input and an output width, got {list(widths)!r}"
        )
    r = _as_int(rank, "rank", minimum=0)
    if r > min(H):
        raise PiamiValueError(
            f"rank {r} exceeds the narrowest width {min(H)} of {H}: the product of the layers "
            "cannot have a larger rank"
        )
    if len(H) == 2:
        return H[0] * H[1] / 2.0, 1
    Ms = sorted(h - r for h in H)
    size = _aoyagi_subset(Ms)
    l = size - 1
    S = Ms[:size]
    s = sum(S)
    a = s - l * (-(-s // l) - 1)  # ceil(s / l) in integers
    pair_sum = (s * s - sum(x * x for x in S)) // 2  # sum_{i<j} M_i M_j
    lam = (
        Fraction(-(r * r) + r * (H[0] + H[-1]), 2)
        + Fraction(a * (l - a), 4 * l)
        - Fraction(l * (l - 1), 4) * Fraction(s, l) ** 2
        + Fraction(pair_sum, 2)
    )
    return float(lam), a * (l - a) + 1


def normal_crossing_expectation(ks: Sequence[int], n_beta: float, gamma: float) -> float | None:
    """``E[n beta K]`` under ``exp(-n beta K - gamma |w|^2 / 2)``, by quadrature.

    For ``K = prod_i w_i^(2 k_i)`` this is what the localized LLC estimator converges to at finite
    ``n beta`` (Lau et al. 2023, eq. 3, with ``L_n = K``); it tends to ``lambda`` as ``n beta``
    grows, slowly (like ``(n beta)^-(lambda_2 - lambda)``) when a flat direction reaches the
    localization scale. Computed for one coordinate, or two with one ``k_i = 1`` (that Gaussian
    coordinate integrated exactly); ``None`` for other shapes.

    Example:
        >>> round(normal_crossing_expectation([2], 1e6, 1.0), 3)
        0.25
    """
    ks = list(ks)
    from scipy import integrate

    t = float(n_beta)
    if len(ks) == 1:
        k = ks[0]
        core = (1.0 / t) ** (1.0 / (2 * k))

        def f1(w: float, power: bool) -> float:
            base = np.exp(-t * w ** (2 * k) - gamma * w * w / 2)
            return t * w ** (2 * k) * base if power else base

        lim = 50 * core + 10 / np.sqrt(max(gamma, 1e-12))
        num = integrate.quad(f1, 0, lim, args=(True,), points=[core], limit=500)[0]
        den = integrate.quad(f1, 0, lim, args=(False,), points=[core], limit=500)[0]
        return num / den
    if len(ks) == 2 and 1 in ks:
        b = ks[1] if ks[0] == 1 else ks[0]
        core = (gamma / t) ** (1.0 / (2 * b))

        def f2(y: float, power: bool) -> float:  # x (k = 1) integrated out: a Gaussian
            prec = t * y ** (2 * b) + gamma / 2
            base = np.exp(-gamma * y * y / 2) / np.sqrt(prec)
            return base * t * y ** (2 * b) / (2 * prec) if power else base

        lim = 12 / np.sqrt(max(gamma, 1e-12))
        num = integrate.quad(f2, 0, lim, args=(True,), points=[core], limit=800)[0]
        den = integrate.quad(f2, 0, lim, args=(False,), points=[core], limit=800)[0]
        return num / den
    return None
