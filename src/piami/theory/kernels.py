"""Infinite-width kernels of deep fully connected networks: NNGP and NTK.

A network in the NTK parameterization, with ``L`` hidden layers of width ``n`` and weights and
biases drawn i.i.d. ``N(0, 1)``::

    h^1(x) = sigma_w / sqrt(d) W^1 x + sigma_b b^1
    h^(l+1)(x) = sigma_w / sqrt(n) W^(l+1) phi(h^l(x)) + sigma_b b^(l+1)  (l = 1..L; h^(L+1) scalar)

becomes, as ``n -> infinity``, a Gaussian process with covariance ``K^(L+1)`` (the NNGP; Neal 1996,
Lee et al. 2018), and its gradient-descent dynamics become linear with the neural tangent kernel
``Theta^(L+1)`` (Jacot, Gabriel & Hongler 2018). Both follow a layer recursion:

    K^1 = sigma_w^2 x.x'/d + sigma_b^2,                 Theta^1 = K^1
    K^(l+1) = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2,   Kdot^(l+1) = sigma_w^2 E[phi'(u) phi'(v)]
    Theta^(l+1) = K^(l+1) + Kdot^(l+1) Theta^l,

with ``(u, v) ~ N(0, [[K(x,x), K(x,x')], [K(x,x'), K(x',x')]])`` from layer ``l``. Two activations
have closed forms (Cho & Saul 2009 arc-cosine kernels; Williams 1997):

- ReLU, with ``cos t = K12 / sqrt(K11 K22)``:
  ``E[phi phi] = sqrt(K11 K22)/(2 pi) (sin t + (pi - t) cos t)``,
  ``E[phi' phi'] = (pi - t) / (2 pi)``.
- erf: ``E[phi phi] = (2/pi) arcsin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22)))``,
  ``E[phi' phi'] = (4/pi) / sqrt((1 + 2 K11)(1 + 2 K22) - 4 K12^2)``.

Empirical kernels of random finite networks (:mod:`piami.models.mlp`) fluctuate around these with
standard deviation ``~ n^(-1/2)``.
"""

from __future__ import annotations

import math

import numpy as np

from piami.errors import PiamiShapeError, PiamiValueError
from piami.typing import Float

__all__ = ["ACTIVATIONS", "dual_activation", "nngp_ntk"]

ACTIVATIONS = ("relu", "erf")


def _cov_parts(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diag = np.diag(k)
    return np.outer(diag, np.ones_like(diag)), np.outer(np.ones_like(diag), diag)


def dual_activation(
    k: Float[np.ndarray, "batch batch"], activation: str
) -> tuple[Float[np.ndarray, "batch batch"], Float[np.ndarray, "batch batch"]]:
    """``E[phi(u) phi(v)]`` and ``E[phi'(u) phi'(v)]`` for ``(u, v)`` Gaussian
    with covariance ``k``.

    Args:
        k: a covariance (Gram) matrix over the inputs, symmetric positive semi-definite with a
            positive diagonal.
        activation: ``"relu"`` or ``"erf"``.

    Returns:
        ``(E[phi phi], E[phi' phi'])``, each the shape of ``k``.
    """
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise PiamiShapeError(f"k must be a square matrix (batch, batch), got shape {k.shape}")
    if activation not in ACTIVATIONS:
        raise PiamiValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    k11, k22 = _cov_parts(k)
    if np.any(np.diag(k) <= 0):
        raise PiamiValueError("k must have a positive diagonal (each input's variance)")
    if activation == "relu":
        norm = np.sqrt(k11 * k22)
        cos_t = np.clip(k / norm, -1.0, 1.0)
        t = np.arccos(cos_t)
        e_phi = norm / (2 * math.pi) * (np.sin(t) + (math.pi - t) * cos_t)
        e_dphi = (math.pi - t) / (2 * math.pi)
        return e_phi, e_dphi
    a = (1 + 2 * k11) * (1 + 2 * k22)
    e_phi = 2 / math.pi * np.arcsin(np.clip(2 * k / np.sqrt(a), -1.0, 1.0))
    e_dphi = 4 / math.pi / np.sqrt(np.maximum(a - 4 * k * k, 1e-300))
    return e_phi, e_dphi


def nngp_ntk(
    x: Float[np.ndarray, "batch d_in"],
    *,
    depth: int,
    activation: str = "relu",
    sigma_w2: float = 2.0,
    sigma_b2: float = 0.0,
) -> tuple[Float[np.ndarray, "batch batch"], Float[np.ndarray, "batch batch"]]:
    """NNGP and NTK of the scalar output of a deep fully connected network at infinite width.

    Args:
        x: inputs, shape ``(batch, d_in)``.
        depth: number of hidden layers ``L >= 1`` (weight layers ``L + 1``).
        activation: ``"relu"`` or ``"erf"``.
        sigma_w2: weight variance ``sigma_w^2`` (2 keeps ReLU variances constant: He init).
        sigma_b2: bias variance ``sigma_b^2``.

    Returns:
        ``(K, Theta)``: NNGP ``K^(L+1)`` and NTK ``Theta^(L+1)``, each ``(batch, batch)``.

    Example:
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> K, T = nngp_ntk(x, depth=1, activation="relu", sigma_w2=2.0)
        >>> round(float(K[0, 1]), 6)  # 2 * (1/2)(1/(2 pi)) (sin(pi/2) + (pi/2) * 0) = 1/(2 pi)
        0.159155
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise PiamiShapeError(f"x must have shape (batch, d_in), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise PiamiValueError("x has non-finite entries")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise PiamiValueError(f"depth (hidden layers) must be an integer >= 1, got {depth!r}")
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise PiamiValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if sigma_w2 <= 0:
        raise PiamiValueError("sigma_w2 must be > 0")
    k = sigma_w2 * (x @ x.T) / x.shape[1] + sigma_b2
    if np.any(np.diag(k) <= 0):
        raise PiamiValueError("an input has zero norm and sigma_b2 = 0: its kernel is degenerate")
    theta = k.copy()
    for _ in range(int(depth)):
        e_phi, e_dphi = dual_activation(k, activation)
        k_new = sigma_w2 * e_phi + sigma_b2
        theta = k_new + sigma_w2 * e_dphi * theta
        k = k_new
    return k, theta
