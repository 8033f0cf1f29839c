"""Data-limited scaling laws from two statistics of the data.

Cagnetta, Raventos, Ganguli and Wyart (2026), "Deriving neural scaling laws from the statistics of
natural language" (building on Cagnetta and Wyart 2024). Two measurable facts about a token source:

* the pairwise correlation decays with distance, ``||C(n)|| = A_C n**(-beta)``;
* the next-token conditional entropy approaches the entropy rate, ``H_n - H_inf = A_H n**(-gamma)``.

A lag ``n`` can be resolved from ``P`` training tokens only when ``||C(n)||`` exceeds the sampling
noise ``sigma P**(-1/2)``; setting the two equal gives the usable context length

    n*(P) = (A_C / sigma)**(1/beta) P**(1/(2 beta)),

and a model that uses its whole resolvable context reaches the loss ``H_{n*(P)}``:

    L(P) - H_inf = A_H n*(P)**(-gamma) ~ P**(-alpha_D),   alpha_D = gamma / (2 beta).

Curves measured at several context windows ``n`` then collapse when plotted as
``(L_n(P) - H_inf) n**gamma`` against ``P / n**(2 beta)``: for ``P`` small the window is not the
limit (the curve follows ``P**(-alpha_D)``), for ``P`` large it saturates at ``A_H``.

Everything here is float64 numpy; nothing imports torch.
"""

from __future__ import annotations

import numpy as np

from piami.errors import PiamiValueError


def _positive(name: str, x: object) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise PiamiValueError(f"{name} must be finite and > 0, got {x!r}")
    return a


def alpha_d(gamma: float, beta: float) -> float:
    """Data-limited exponent ``alpha_D = gamma / (2 beta)`` (Cagnetta et al. 2026, eq. 6)."""
    return float(_positive("gamma", gamma) / (2.0 * _positive("beta", beta)))


def power_law(x: object, E: float, A: float, alpha: float) -> np.ndarray:
    """``E + A x**(-alpha)`` elementwise (``x > 0``)."""
    return E + A * _positive("x", x) ** (-float(alpha))


def resolvable_context(
    P: object, *, beta: float, amplitude: float = 1.0, noise: float = 1.0
) -> np.ndarray:
    """Usable context ``n*(P) = (amplitude / noise)**(1/beta) P**(1/(2 beta))``.

    The solution of ``amplitude n**(-beta) = noise P**(-1/2)`` (Cagnetta et al. 2026, eq. 4).

    Args:
        P: number of training tokens (array or scalar, > 0).
        beta: correlation decay exponent.
        amplitude: ``A_C`` in ``||C(n)|| = A_C n**(-beta)``.
        noise: ``sigma`` in the noise floor ``sigma P**(-1/2)``.
    """
    P = _positive("P", P)
    beta = float(_positive("beta", beta))
    ratio = float(_positive("amplitude", amplitude) / _positive("noise", noise))
    return ratio ** (1.0 / beta) * P ** (1.0 / (2.0 * beta))


def predicted_loss(
    P: object,
    *,
    h_inf: float,
    a_h: float,
    gamma: float,
    beta: float,
    amplitude: float = 1.0,
    noise: float = 1.0,
) -> np.ndarray:
    """``L(P) = H_inf + A_H n*(P)**(-gamma)``, which falls as ``P**(-gamma/(2 beta))``."""
    n_star = resolvable_context(P, beta=beta, amplitude=amplitude, noise=noise)
    return h_inf + float(_positive("a_h", a_h)) * n_star ** (-float(_positive("gamma", gamma)))


def collapse(
    loss: object, n: object, P: object, *, h_inf: float, gamma: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Collapse variables ``(P / n**(2 beta), (L_n - H_inf) n**gamma)``.

    Args:
        loss: losses ``L_n(P)`` (nats), any shape broadcastable with ``n`` and ``P``.
        n: context window of each loss.
        P: training tokens of each loss.
        h_inf: entropy rate (nats).
        gamma: decay exponent of the conditional entropies, ``H_n - H_inf ~ n**(-gamma)``.
        beta: decay exponent of the correlations, ``||C(n)|| ~ n**(-beta)``.

    Returns:
        ``(x, y)`` arrays of the broadcast shape.
    """
    n = _positive("n", n)
    P = _positive("P", P)
    loss = np.asarray(loss, dtype=np.float64)
    gamma = float(_positive("gamma", gamma))
    beta = float(_positive("beta", beta))
    return P / n ** (2.0 * beta), (loss - h_inf) * n**gamma


__all__ = ["alpha_d", "collapse", "power_law", "predicted_loss", "resolvable_context"]
