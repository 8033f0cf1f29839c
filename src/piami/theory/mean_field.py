"""High-dimensional mean-field limit of online SGD on sparse hypercube targets.

A two-layer ReLU network ``f(x) = (1/N) sum_j a_j relu(w_j . x + b_j)`` in the mean-field
parameterization is trained by online SGD (per-sample step ``eta``, times ``t = eta * samples``) on
a target ``y(x) = sum_S c_S prod_{i in S} x_i`` that depends on the first ``k`` of ``d`` hypercube
coordinates. As ``N -> infinity`` and ``d -> infinity`` each neuron is a particle with state
``(a, b, w_1..w_k, rho)``: its weights on the ``k`` support coordinates and the norm ``rho`` of its
weights on the other ``d - k``. By the central limit theorem the tail ``g = sum_{i > k} w_i x_i`` is
Gaussian ``N(0, rho^2)``, so the network is ``F(x) = E_particles[a E_g relu(u(x) + g)]`` with
``u = b + sum_{i <= k} w_i x_i``, and ``E_g relu(u + g) = u Phi(u/rho) + rho phi(u/rho)``. This is
the dimension-free dynamics of Abbe, Boix-Adsera & Misiakiewicz 2022 ("The merged-staircase
property", sec. 3), written for the Boolean hypercube with the tail kept as one number per neuron:

    da/dt   = -E_x[r h],                     h = u Phi(u/rho) + rho phi(u/rho)
    db/dt   = -a E_x[r Phi(u/rho)]
    dw_i/dt = -a E_x[r x_i Phi(u/rho)],     i <= k
    d(rho^2)/dt = -2 a rho E_x[r phi(u/rho)] + delta a^2 E_x[r^2 Phi(u/rho)]

with ``r = F(x) - y(x)`` and ``E_x`` the average over the ``2^k`` support points. The last term is
the noise of online SGD: each tail coordinate receives variance ``eta^2 (r a relu')^2`` per sample,
summed over ``d - k`` coordinates, ``delta = eta (d - k)`` per unit time. With the noise-limited
step ``eta = lr0 / d`` it stays ``~ lr0`` as ``d -> infinity``: the limit of online SGD is this
*corrected* flow, not gradient flow (Ben Arous, Gheissari & Jagannath 2022, "High-dimensional limit
theorems for SGD: effective dynamics and critical scaling", the population corrector). Without it
the tails of a third of the neurons collapse to ``rho ~ 1e-9``; with it they stay above ``~ delta``.

From zero overlap (``w_i = 0``, the ``d -> infinity`` initialization) a monomial whose coordinates
all enter at once, two or more at a time (a leap >= 2), receives no gradient: the limit stays on
that saddle for ever, at the loss ``sum c_S^2`` over the monomials not yet learned. A finite network
leaves it only through its ``d^(-1/2)`` initial overlaps. A leap-1 step (one new coordinate) is not
a saddle: the gradient on the new coordinate is non-zero as soon as the previous ones are learned,
so the limit learns a leap-1 staircase without stopping at those levels.

Example:
    >>> import numpy as np
    >>> traj = staircase_mean_field([(0,), (0, 1, 2)], [1.0, 1.0], t_max=20.0, n_particles=500,
    ...                             rng=np.random.default_rng(0))
    >>> round(float(traj.loss[-1]), 3)  # x1 learned; x1x2x3 (leap 2) never starts: plateau at 1
    1.0
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from piami.errors import PiamiTypeError, PiamiValueError
from piami.theory.leap import _check_supports

__all__ = [
    "MeanFieldTrajectory",
    "hypercube_points",
    "mean_field_velocity",
    "smoothed_relu",
    "staircase_mean_field",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
MAX_SUPPORT_DIM = 14  # 2^k support points are enumerated exactly
LOG_TAIL_FLOOR = math.log(1e-8)  # tails held here: without noise they collapse super-exponentially


@dataclass(frozen=True, kw_only=True)
class MeanFieldTrajectory:
    """The limit's loss curve and the network's Fourier coefficients on the target's monomials.

    ``noise_gain`` is ``g = E_x E_particles[a^2 Phi(u/rho)]``, the network's squared gradient along
    one tail coordinate (times ``N``, the mean-field step). Online SGD with per-sample step ``eta``
    keeps a stationary excess test loss of about ``(eta (d - k) / 2) L g`` above the noiseless limit
    (the ``d - k`` tail directions each fluctuate with variance ``eta L g / 2``; the same sum gives
    the noise term ``delta`` of the tail norm).
    """

    times: np.ndarray  # (T,) gradient-flow time t = eta * samples
    loss: np.ndarray  # (T,) E_x (F - y)^2, the test mean squared error
    coefficients: np.ndarray  # (T, n_monomials) E_x[F chi_S] for each target monomial S
    points: np.ndarray  # (M, k) the support points, M = 2^k
    outputs: np.ndarray  # (T, M) the limit network F at those points
    target: np.ndarray  # (M,) the target y at those points
    supports: tuple[tuple[int, ...], ...]  # the target's monomials, as given
    min_tail: float  # smallest tail norm rho reached by any particle (health of the integration)
    noise_gain: np.ndarray | None = None  # (T,) E_x E_particles[a^2 Phi(u/rho)] (class docstring)

    def loss_on(self, weights: np.ndarray) -> np.ndarray:
        """``(T,)`` mean squared error under support-point frequencies ``weights`` ``(M,)``.

        With the frequencies of a finite test set this is the limit's loss on that very test set,
        free of the set's sampling error when compared with a network's test loss.
        """
        wts = np.asarray(weights, dtype=np.float64)
        if wts.shape != (self.points.shape[0],) or np.any(wts < 0) or wts.sum() <= 0:
            raise PiamiValueError(
                f"weights must be {self.points.shape[0]} non-negative numbers, not all zero"
            )
        return ((self.outputs - self.target) ** 2) @ (wts / wts.sum())


def hypercube_points(k: int) -> np.ndarray:
    """All ``2^k`` points of ``{-1, +1}^k`` as a float64 array of shape ``(2^k, k)``.

    Example:
        >>> hypercube_points(2).tolist()
        [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_SUPPORT_DIM:
        raise PiamiValueError(f"k must be an integer in [1, {MAX_SUPPORT_DIM}], got {k!r}")
    return np.array(list(itertools.product((-1.0, 1.0), repeat=int(k))), dtype=np.float64)


def smoothed_relu(u: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E_g relu(u + g)``, ``E_g relu'(u + g)`` and ``d/d rho E_g relu(u + g)``,
    ``g ~ N(0, rho^2)``.

    Returns ``(u Phi(s) + rho phi(s), Phi(s), phi(s))`` with ``s = u / rho`` (broadcast shapes).

    Example:
        >>> [round(float(v), 6) for v in smoothed_relu(np.array(0.0), np.array(1.0))]
        [0.398942, 0.5, 0.398942]
    """
    s = u / rho
    big_phi = ndtr(s)
    small_phi = np.exp(-0.5 * s * s) * _INV_SQRT_2PI
    return u * big_phi + rho * small_phi, big_phi, small_phi


def mean_field_velocity(
    a: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    rho: np.ndarray,
    points: np.ndarray,
    y: np.ndarray,
    *,
    noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Right-hand side of the limit (module docstring) for ``P`` particles.

    Args:
        a, b, rho: ``(P,)`` second-layer weights, biases and tail norms (``rho > 0``).
        w: ``(P, k)`` weights on the support coordinates.
        points: ``(M, k)`` the support points; ``y``: ``(M,)`` the target there.
        noise: ``delta = eta (d - k)``, the online-SGD noise injected into the tail per unit time.

    Returns:
        ``(da, db, dw, drho, residual)``: time derivatives and ``F - y`` at the points ``(M,)``.
    """
    u = b[None, :] + points @ w.T  # (M, P)
    h, big_phi, small_phi = smoothed_relu(u, rho[None, :])
    residual = (h * a[None, :]).mean(axis=1) - y  # (M,)
    r = residual[:, None]
    da = -(r * h).mean(axis=0)
    grad_u = r * big_phi * a[None, :]  # (M, P): d loss / d u per point
    db = -grad_u.mean(axis=0)
    dw = -(grad_u.T @ points) / points.shape[0]
    drho = -a * (r * small_phi).mean(axis=0)
    if noise:
        drho = drho + noise * a * a * (r * r * big_phi).mean(axis=0) / (2.0 * rho)
    return da, db, dw, drho, residual


def _check_target(
    supports: Sequence[Sequence[int]], coefficients: Sequence[float]
) -> tuple[tuple[tuple[int, ...], ...], np.ndarray, int]:
    _check_supports(supports)  # the leap module's validation: non-empty, integer, no repeats
    sups = [tuple(int(i) for i in s) for s in supports]
    coefs = np.asarray(coefficients, dtype=np.float64)
    if coefs.shape != (len(sups),) or not np.all(np.isfinite(coefs)):
        raise PiamiValueError(
            f"need one finite coefficient per support ({len(sups)}), got {coefficients!r}"
        )
    k = max(max(s) for s in sups) + 1
    if k > MAX_SUPPORT_DIM:
        raise PiamiValueError(
            f"the target uses coordinates up to {k - 1}; the limit enumerates 2^k points and "
            f"allows k <= {MAX_SUPPORT_DIM}: relabel the coordinates so the support comes first"
        )
    return tuple(sups), coefs, k


def staircase_mean_field(
    supports: Sequence[Sequence[int]],
    coefficients: Sequence[float],
    *,
    t_max: float,
    rng: np.random.Generator,
    n_particles: int = 4000,
    a_scale: float = 1.0,
    b_scale: float = 1.0,
    rho0: float = 1.0,
    noise: float = 0.0,
    dt: float = 0.02,
    record_dt: float = 0.1,
) -> MeanFieldTrajectory:
    """Integrate the limit from zero overlap with Heun's method (tail norm in log scale).

    Args:
        supports, coefficients: the target ``sum_S c_S chi_S`` (coordinates ``< 14``).
        t_max: gradient-flow time to integrate to (``eta * samples`` of the network).
        rng: draws the particles: ``a ~ N(0, a_scale^2)``, ``b ~ N(0, b_scale^2)``; ``w = 0`` on
            the support (its ``d^(-1/2)`` overlaps vanish in the limit) and tail norm ``rho0``.
        n_particles: Monte Carlo particles standing for the ``N -> infinity`` neurons.
        noise: online-SGD noise ``delta = eta (d - k)`` (0: gradient flow).
        dt: integration step; ``record_dt``: spacing of the recorded curve (a multiple of dt).
            Tails are held at ``rho >= 1e-8``: without noise (``noise = 0``) some collapse
            super-exponentially (a ReLU kink on a support point); that close the neuron is an
            exact ReLU on the support, so the floor does not change ``F``.

    Returns:
        :class:`MeanFieldTrajectory`.
    """
    if not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    sups, coefs, k = _check_target(supports, coefficients)
    for name, v in (
        ("t_max", t_max),
        ("a_scale", a_scale),
        ("b_scale", b_scale),
        ("rho0", rho0),
        ("dt", dt),
        ("record_dt", record_dt),
    ):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise PiamiValueError(f"{name} must be a finite number > 0, got {v!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise PiamiValueError(f"noise must be >= 0, got {noise!r}")
    if isinstance(n_particles, bool) or not isinstance(n_particles, int) or n_particles < 2:
        raise PiamiValueError(f"n_particles must be an integer >= 2, got {n_particles!r}")
    every = round(record_dt / dt)
    if every < 1 or abs(every * dt - record_dt) > 1e-9 * record_dt:
        raise PiamiValueError(f"record_dt ({record_dt}) must be a whole multiple of dt ({dt})")
    points = hypercube_points(k)
    chis = np.stack([points[:, list(s)].prod(axis=1) for s in sups], axis=1)  # (M, n_monomials)
    y = chis @ coefs
    a = rng.standard_normal(n_particles) * a_scale
    b = rng.standard_normal(n_particles) * b_scale
    w = np.zeros((n_particles, k))
    log_rho = np.full(n_particles, math.log(rho0))
    n_steps = math.ceil(t_max / dt)
    times, losses, coef_rows, outputs, gains = [], [], [], [], []
    min_log_rho = float(log_rho.min())
    for step in range(n_steps + 1):
        rho = np.exp(log_rho)
        da, db, dw, drho, res = mean_field_velocity(a, b, w, rho, points, y, noise=noise)
        if step % every == 0 or step == n_steps:
            times.append(step * dt)
            losses.append(float(np.mean(res * res)))
            coef_rows.append((res + y) @ chis / points.shape[0])
            outputs.append(res + y)
            big_phi = smoothed_relu(b[None, :] + points @ w.T, rho[None, :])[1]
            gains.append(float(np.mean(a * a * big_phi)))
        if step == n_steps:
            break
        dlog = drho / rho
        a1, b1, w1 = a + dt * da, b + dt * db, w + dt * dw
        lr1 = np.maximum(log_rho + dt * dlog, LOG_TAIL_FLOOR)
        rho1 = np.exp(lr1)
        da2, db2, dw2, drho2, _ = mean_field_velocity(a1, b1, w1, rho1, points, y, noise=noise)
        a = a + 0.5 * dt * (da + da2)
        b = b + 0.5 * dt * (db + db2)
        w = w + 0.5 * dt * (dw + dw2)
        log_rho = np.maximum(log_rho + 0.5 * dt * (dlog + drho2 / rho1), LOG_TAIL_FLOOR)
        min_log_rho = min(min_log_rho, float(log_rho.min()))
        if not np.all(np.isfinite(log_rho)) or not np.all(np.isfinite(a)):
            raise PiamiValueError(
                f"the mean-field integration diverged at t = {step * dt:.3g}: lower dt (now {dt})"
            )
    return MeanFieldTrajectory(
        times=np.asarray(times),
        loss=np.asarray(losses),
        coefficients=np.asarray(coef_rows),
        points=points,
        outputs=np.asarray(outputs),
        target=y,
        supports=sups,
        min_tail=math.exp(min_log_rho),
        noise_gain=np.asarray(gains),
    )
