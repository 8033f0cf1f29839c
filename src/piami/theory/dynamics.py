"""Exact learning dynamics of simple networks: deep linear nets (Saxe) and two-layer DMFT.

**Deep linear networks** (Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks"). A network ``y_hat = W_D ... W_1 x`` trained
by gradient flow on ``L = 1/2 E ||y - y_hat||^2`` with whitened inputs (``E x x^T = I``) sees the
data only through the input-output correlation ``Sigma_yx = U S V^T``. From a balanced
initialization aligned with the singular vectors, each mode strength
``u_a = U[:, a]^T W_D...W_1 V[:, a]`` evolves alone. With per-layer strength ``c`` (so ``u = c^D``),
``tau dc/dt = c^(D-1) (s - c^D)``, i.e.

    tau du/dt = D u^(2 - 2/D) (s - u).                                   (Saxe et al. eq. 6-7)

For two layers this is the logistic equation, solved in closed form:
``u(t) = s e^(2st/tau) / (e^(2st/tau) - 1 + s/u0)``, half-way time
``t_half = (tau / 2s) ln(s/u0 - 1)``. For depth ``D > 2`` the time to reach ``u`` is the quadrature
``t(u) = (tau/D) int_{u0}^{u} dv / (v^(2-2/D) (s - v))``; the plateau before escape grows as
``u0^(-(D-2)/D)``. Strong modes are learned first, with plateaus between them (incremental
learning). Gradient descent with step ``lambda`` follows gradient flow with ``t = steps * lambda``
and ``tau = 1``.

**Two-layer linear network in the mean-field parameterization** (Bordelon & Pehlevan 2022,
"Self-consistent dynamical field theory of kernel evolution in wide neural networks", sec. 5).
``f(x) = (1/(gamma0 N)) sum_i a_i (w_i . x)`` with learning rate ``gamma0^2 N`` per unit time on
whitened data with target ``y = beta* . x``. The output along the target direction obeys
``df/dt = K(t) (y - f)`` with kernel ``K = (1/N) sum_i (a_i^2 + (w_i . e)^2)``, and the conservation
law ``K^2 - 4 gamma0^2 f^2 = K0^2 = 4`` gives

    df/dt = 2 sqrt(1 + gamma0^2 f^2) (y - f).

``gamma0 -> 0`` is the lazy (kernel) limit, exponential approach; large ``gamma0`` is the rich
regime, where the kernel grows with the function and the curve turns sigmoidal. The time to reach
``f`` from 0 is the closed-form integral implemented in :func:`dmft_linear_time_to`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

from piami.errors import PiamiValueError

__all__ = [
    "deep_linear_gd_modes",
    "deep_linear_loss",
    "deep_linear_mode_trajectory",
    "deep_linear_time_to",
    "dmft_kernel_scale",
    "dmft_linear_rhs",
    "dmft_linear_time_to",
    "dmft_linear_trajectory",
    "saxe_half_time",
    "saxe_mode_trajectory",
]


def _positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PiamiValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise PiamiValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _check_mode(s: float, u0: float) -> tuple[float, float]:
    s = _positive("s (singular value)", s)
    u0 = _positive("u0 (initial mode strength)", u0)
    if u0 >= s:
        raise PiamiValueError(
            f"the initial mode strength u0={u0} must lie below the singular value s={s} "
            "(small initialization); lower u0"
        )
    return s, u0


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise PiamiValueError(
            f"depth must be an integer >= 2 (number of weight layers), got {depth!r}"
        )
    return int(depth)


def saxe_mode_trajectory(
    t: np.ndarray | float, s: float, u0: float, *, tau: float = 1.0
) -> np.ndarray:
    """Mode strength of a two-layer linear net, ``u(t) = s e^(2st/tau) / (e^(2st/tau) - 1 + s/u0)``.

    Saxe, McClelland & Ganguli 2014, eq. 7 (balanced aligned initialization, whitened inputs).

    Args:
        t: times (units of ``tau``; gradient descent step ``lambda`` gives ``t = steps * lambda``).
        s: singular value of the input-output correlation for this mode (> 0).
        u0: initial mode strength, ``0 < u0 < s``.
        tau: time constant (``1 / learning rate``).

    Returns:
        ``u(t)``, same shape as ``t``.

    Example:
        >>> round(float(saxe_mode_trajectory(saxe_half_time(2.0, 1e-3), 2.0, 1e-3)), 12)
        1.0
    """
    s, u0 = _check_mode(s, u0)
    tau = _positive("tau", tau)
    t = np.asarray(t, dtype=np.float64)
    # e^(2st/tau) overflows for long times: write u = s / (1 + (s/u0 - 1) e^(-2st/tau)).
    return s / (1.0 + (s / u0 - 1.0) * np.exp(-2.0 * s * t / tau))


def saxe_half_time(s: float, u0: float, *, tau: float = 1.0) -> float:
    """Time for a two-layer mode to reach ``s/2``:
    ``t_half = (tau / 2s) ln(s/u0 - 1)`` (Saxe eq. 8)."""
    s, u0 = _check_mode(s, u0)
    tau = _positive("tau", tau)
    return tau / (2.0 * s) * math.log(s / u0 - 1.0)


def deep_linear_time_to(u: float, s: float, u0: float, depth: int, *, tau: float = 1.0) -> float:
    """Time for a mode of a depth-``D`` linear net to grow from ``u0`` to ``u``.

    ``t(u) = (tau/D) int_{u0}^{u} dv / (v^(2-2/D) (s - v))``, the quadrature of
    ``tau du/dt = D u^(2-2/D) (s - u)`` (Saxe et al. 2014, sec. 3, balanced layers). For ``D = 2``
    it equals ``(tau/2s) ln[u (s - u0) / (u0 (s - u))]``.

    Args:
        u: target strength, ``u0 <= u < s``.
        s: singular value (> 0).
        u0: initial strength (``0 < u0 < s``).
        depth: number of weight layers ``D >= 2``.
        tau: time constant.
    """
    s, u0 = _check_mode(s, u0)
    depth = _check_depth(depth)
    tau = _positive("tau", tau)
    u = float(u)
    if not (u0 <= u < s):
        raise PiamiValueError(f"target strength u must satisfy u0={u0} <= u < s={s}, got {u}")
    if depth == 2:
        return tau / (2 * s) * math.log(u * (s - u0) / (u0 * (s - u)))
    return _time_to_logit(math.log(u / (s - u)), s, u0, depth, tau)


def _time_to_logit(x: float, s: float, u0: float, depth: int, tau: float) -> float:
    """``t`` as a function of ``x = ln(u / (s - u))``: ``dt = tau/(D s) u^(2/D - 1) dx``.

    The substitution turns the quadrature's logarithmic end-point singularity at ``u -> s`` into a
    smooth, bounded integrand.
    """
    x0 = math.log(u0 / (s - u0))
    q = 2.0 / depth - 1.0

    def integrand(z: float) -> float:
        # u^q with u = s sigmoid(z); log u = log s - log(1 + e^-z), safe for large |z|
        return math.exp(q * (math.log(s) - float(np.logaddexp(0.0, -z))))

    val, _ = integrate.quad(integrand, x0, x, epsabs=0, epsrel=1e-12, limit=400)
    return tau / (depth * s) * val


def deep_linear_mode_trajectory(
    t: np.ndarray | float,
    s: float,
    u0: float,
    depth: int,
    *,
    tau: float = 1.0,
) -> np.ndarray:
    """Mode strength ``u(t)`` of a depth-``D`` linear net from balanced small initialization.

    Integrates the mode equation in the logit variable ``x = ln(u / (s - u))``, where it reads
    ``dx/dt = (D s / tau) u^(1 - 2/D)`` (smooth and bounded), with an 8th-order Runge-Kutta method
    at relative tolerance 1e-12. ``D = 2`` gives the closed form :func:`saxe_mode_trajectory`.

    Args:
        t: times >= 0, any shape.
        s, u0, depth, tau: as in :func:`deep_linear_time_to`.

    Returns:
        ``u(t)``, same shape as ``t``.
    """
    s, u0 = _check_mode(s, u0)
    depth = _check_depth(depth)
    tau = _positive("tau", tau)
    t_arr = np.asarray(t, dtype=np.float64)
    if np.any(t_arr < 0) or not np.all(np.isfinite(t_arr)):
        raise PiamiValueError("times t must be finite and >= 0")
    if depth == 2:
        return saxe_mode_trajectory(t_arr, s, u0, tau=tau)
    p = 1.0 - 2.0 / depth
    log_s = math.log(s)

    def rhs(_t: float, x: np.ndarray) -> np.ndarray:
        log_u = log_s - np.logaddexp(0.0, -x)
        return depth * s / tau * np.exp(p * log_u)

    flat = t_arr.ravel()
    order = np.argsort(flat)
    t_end = float(flat[order[-1]]) if flat.size else 0.0
    x0 = math.log(u0 / (s - u0))
    if t_end == 0.0:
        return np.full(t_arr.shape, u0)
    sol = integrate.solve_ivp(
        rhs, (0.0, t_end), [x0], method="DOP853", t_eval=flat[order], rtol=1e-12, atol=1e-12
    )
    if not sol.success:  # pragma: no cover - the equation is smooth and bounded
        raise PiamiValueError(f"mode equation integration failed: {sol.message}")
    x = np.empty(flat.size)
    x[order] = sol.y[0]
    return (s / (1.0 + np.exp(-x))).reshape(t_arr.shape)


def deep_linear_loss(
    t: np.ndarray,
    singular_values: np.ndarray,
    u0: float,
    depth: int = 2,
    *,
    tau: float = 1.0,
) -> np.ndarray:
    """Loss ``1/2 sum_a (s_a - u_a(t))^2`` of a noiseless teacher on whitened
    inputs (Saxe et al.)."""
    s_arr = np.asarray(singular_values, dtype=np.float64)
    t_arr = np.asarray(t, dtype=np.float64)
    loss = np.zeros(t_arr.shape)
    for s in s_arr:
        loss += 0.5 * (s - deep_linear_mode_trajectory(t_arr, float(s), u0, depth, tau=tau)) ** 2
    return loss


def deep_linear_gd_modes(
    n_steps: int, singular_values: np.ndarray, u0: float, depth: int, lr: float
) -> np.ndarray:
    """Mode strengths under gradient *descent* with step ``lr``: the exact discrete recursion.

    From the balanced aligned initialization every layer carries mode ``a`` with the same strength
    ``c`` (``u = c^D``), and a gradient step keeps the layers balanced, so each mode follows
    ``c <- c + lr c^(D-1) (s - c^D)`` exactly (whitened inputs; Saxe et al. 2014, eq. 2 per mode).
    Its distance from the flow :func:`deep_linear_mode_trajectory` at ``t = steps * lr`` is the
    discretization error of gradient descent, ``O(lr s^(2-2/D))`` relative in time.

    Args:
        n_steps: number of steps (>= 0); singular_values: ``(m,)`` positive ``s_a``.
        u0: initial strength of every mode, ``0 < u0 < min s``; depth: ``D >= 2``; lr: step (> 0).

    Returns:
        ``(n_steps + 1, m)`` mode strengths ``u_a`` after each step, the initial ones first.

    Example:
        >>> u = deep_linear_gd_modes(2000, np.array([2.0]), 1e-3, 2, 0.005)
        >>> round(float(u[-1, 0]), 4)  # t = 10, far past the half-way time 1.9
        2.0
    """
    s = np.asarray(singular_values, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise PiamiValueError(f"singular_values must be a non-empty 1-d list, got {s!r}")
    for v in s:
        _check_mode(float(v), u0)
    depth = _check_depth(depth)
    lr = _positive("lr", lr)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise PiamiValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    c = np.full(s.size, float(u0) ** (1.0 / depth))
    out = np.empty((int(n_steps) + 1, s.size))
    out[0] = c**depth
    for k in range(1, int(n_steps) + 1):
        c = c + lr * c ** (depth - 1) * (s - c**depth)
        out[k] = c**depth
    return out


# --------------------------------------------------------------------------------------------
# Two-layer linear network, mean-field parameterization (Bordelon & Pehlevan 2022)


def _check_dmft(y: float, gamma0: float) -> tuple[float, float]:
    y = _positive("y (target along its direction)", y)
    try:
        g = float(gamma0)
    except (TypeError, ValueError):
        raise PiamiValueError(f"gamma0 must be a number >= 0, got {gamma0!r}") from None
    if not math.isfinite(g) or g < 0:
        raise PiamiValueError(f"gamma0 must be a finite number >= 0, got {gamma0!r}")
    return y, g


def dmft_linear_rhs(f: float | np.ndarray, y: float, gamma0: float) -> np.ndarray:
    """``df/dt = 2 sqrt(1 + gamma0^2 f^2) (y - f)`` (Bordelon & Pehlevan 2022, two-layer linear)."""
    return 2.0 * np.sqrt(1.0 + gamma0**2 * np.asarray(f) ** 2) * (y - np.asarray(f))


def dmft_kernel_scale(f: float | np.ndarray, gamma0: float) -> np.ndarray:
    """Kernel along the target over its initial value, ``K(t)/K(0) = sqrt(1 + gamma0^2 f^2)``."""
    return np.sqrt(1.0 + gamma0**2 * np.asarray(f, dtype=np.float64) ** 2)


def dmft_linear_time_to(fraction: float, y: float, gamma0: float) -> float:
    """Time for ``f`` to grow from 0 to ``fraction * y`` under the two-layer linear DMFT equation.

    With ``g = gamma0`` and ``c = sqrt(1 + g^2 y^2)``,
    ``int_0^F df / (2 sqrt(1 + g^2 f^2)(y - f))
    = (1/2c) ln[ y (1 + g^2 y F + c sqrt(1 + g^2 F^2)) / ((y - F)(1 + c)) ]``
    (elementary antiderivative; ``g = 0`` gives the lazy ``(1/2) ln(y / (y - F))``).

    Args:
        fraction: ``F / y`` in ``[0, 1)``.
        y: target value along its direction (> 0; the equation is odd in ``(f, y)``).
        gamma0: richness (>= 0).

    Example:
        >>> round(dmft_linear_time_to(0.9, 1.0, 0.0), 6)  # ln(10) / 2
        1.151293
    """
    y, g = _check_dmft(y, gamma0)
    q = float(fraction)
    if not (0.0 <= q < 1.0):
        raise PiamiValueError(f"fraction must lie in [0, 1), got {fraction!r}")
    big_f = q * y
    c = math.sqrt(1.0 + g * g * y * y)
    num = y * (1.0 + g * g * y * big_f + c * math.sqrt(1.0 + g * g * big_f * big_f))
    return math.log(num / ((y - big_f) * (1.0 + c))) / (2.0 * c)


def dmft_linear_trajectory(t: np.ndarray | float, y: float, gamma0: float) -> np.ndarray:
    """``f(t)`` from ``f(0) = 0``, by inverting the closed-form :func:`dmft_linear_time_to`."""
    y, g = _check_dmft(y, gamma0)
    t_arr = np.asarray(t, dtype=np.float64)
    if np.any(t_arr < 0) or not np.all(np.isfinite(t_arr)):
        raise PiamiValueError("times t must be finite and >= 0")
    out = np.empty(t_arr.size)
    for k, tk in enumerate(t_arr.ravel()):
        if tk == 0:
            out[k] = 0.0
            continue
        if dmft_linear_time_to(1 - 1e-15, y, g) <= tk:
            out[k] = y
            continue
        q = optimize.brentq(
            lambda q, tk=tk: dmft_linear_time_to(q, y, g) - tk, 0.0, 1 - 1e-15, xtol=1e-15
        )
        out[k] = q * y
    return out.reshape(t_arr.shape)
