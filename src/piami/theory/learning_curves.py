"""Exact learning curves of kernel ridge regression from the kernel's spectrum.

A kernel ``K(x, x') = sum_i lambda_i phi_i(x) phi_i(x')`` with eigenvalues ``lambda_i >= 0`` and
eigenfunctions orthonormal under the input distribution, a target ``f*(x) = sum_i v_i phi_i(x)``,
``n`` training points with labels ``y = f*(x) + eps`` (noise variance ``sigma^2``), and the
predictor that minimizes ``sum_mu (f(x_mu) - y_mu)^2 + delta ||f||_K^2``, that is
``f(x) = K(x, X) (K(X, X) + delta I)^(-1) y``. Averaged over training sets, its errors depend on the
spectrum only through one number, the *effective regularization* ``kappa > 0``, the root of

    sum_i lambda_i / (lambda_i + kappa) + delta / kappa = n                           (kappa eq.)

(Bordelon, Canatar & Pehlevan 2020; Canatar, Bordelon & Pehlevan 2021; Simon, Dickens, Karkada &
DeWeese 2023, "The eigenlearning framework"; equation numbers differ between their versions, so
the formulas are written out here rather than cited by number). With it:

* learnabilities ``L_i = lambda_i / (lambda_i + kappa)``: the mean predictor is
  ``sum_i L_i v_i phi_i`` (Simon et al.); they obey the *conservation law*
  ``sum_i L_i = n - delta / kappa`` (Simon et al.), the kappa equation itself;
* the overfitting factor ``E_0 = n / (n - sum_i L_i^2)`` (Simon et al.; Canatar et al.'s
  ``1 / (1 - gamma)``);
* the test MSE on noisy labels ``E = E_0 [sum_i (1 - L_i)^2 v_i^2 + sigma^2]`` (Simon et al.);
  against the clean target it is ``E - sigma^2`` (Canatar et al.'s ``E_g``);
* the train MSE ``E_train = (delta / (n kappa))^2 E`` (Simon et al.; checked by simulation).

These are exact for Gaussian eigenfeatures as ``n`` and the number of modes grow together, and
accurate to ``O(1/n)`` at finite ``n`` (tested against simulation in
``tests/theory/test_learning_curves.py``).

Ridgeless (``delta = 0``) with ``M`` positive eigenvalues: for ``n < M`` kappa is the positive root
of ``sum_i lambda_i/(lambda_i + kappa) = n``; for ``n >= M`` it is 0 (the ``delta -> 0+`` limit),
every mode is learned, ``delta / kappa -> n - M`` and ``E = sigma^2 n / (n - M)`` (ordinary least
squares; infinite at ``n = M`` when there is noise, 0 when there is none).

Power laws ``lambda_k ~ k^(-a)``, ``v_k^2 ~ k^(-b)`` give, ridgeless and noiseless for
``1 << n << M``, ``E ~ n^(-min(b - 1, 2a))`` (Bordelon et al. 2020; Spigler, Geiger &
Wyart 2020).

Random features: :mod:`piami.theory.random_features`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piami.errors import DivergenceError, PiamiShapeError, PiamiValueError
from piami.typing import Float

__all__ = [
    "KernelCurve",
    "asymptotic_exponent",
    "kernel_learning_curve",
    "power_law_spectrum",
]

_CHUNK = 2_000_000  # entries of the (n, modes) work array held at once
_MAX_ITER = 200


@dataclass(frozen=True, kw_only=True)
class KernelCurve:
    """The expected errors of kernel ridge regression at each training-set size ``n``.

    Every per-``n`` field has shape ``(len(n),)``; the spectrum is kept so that per-mode quantities
    can be computed on demand (:meth:`learnability`) rather than stored.
    """

    n: Float[np.ndarray, " n_sizes"]  # training-set sizes
    kappa: Float[np.ndarray, " n_sizes"]  # effective regularization (0: ridgeless, n >= M)
    ridge_share: Float[np.ndarray, " n_sizes"]  # delta / kappa = n - sum_i L_i (its limit if 0/0)
    e0: Float[np.ndarray, " n_sizes"]  # overfitting factor n / (n - sum_i L_i^2) (inf at n = M)
    test_mse: Float[np.ndarray, " n_sizes"]  # E on noisy test labels
    generalization_error: Float[np.ndarray, " n_sizes"]  # E - sigma^2: against the clean target
    train_mse: Float[np.ndarray, " n_sizes"]  # (delta / (n kappa))^2 E
    bias2: Float[np.ndarray, " n_sizes"]  # sum_i (1 - L_i)^2 v_i^2: mean predictor vs target
    variance: Float[np.ndarray, " n_sizes"]  # (E0 - 1)(bias2 + sigma^2): over training sets
    eigenvalues: Float[np.ndarray, " n_modes"]  # lambda_i as given
    target_coefficients: Float[np.ndarray, " n_modes"]  # v_i as given
    ridge: float  # delta
    noise: float  # sigma^2

    def learnability(
        self, modes: slice | np.ndarray | None = None
    ) -> Float[np.ndarray, "n_sizes n_modes"]:
        """Learnabilities ``L_i = lambda_i / (lambda_i + kappa)``, shape ``(len(n), n_modes)``.

        Args:
            modes: an index (slice or integer array) selecting the modes; all when ``None``. With
                ``10^5`` modes and 100 sizes the full array is 80 MB: select when that matters.

        Returns:
            ``L_i`` per size and mode (1 for every positive mode where ``kappa = 0``, 0 for
            zero eigenvalues).
        """
        lam = self.eigenvalues if modes is None else self.eigenvalues[modes]
        return _learn(np.atleast_1d(lam)[None, :], self.kappa[:, None])


def _learn(lam: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """``lambda / (lambda + kappa)``, with ``L = 1`` for ``kappa = 0 < lambda`` and 0 for
    ``lambda = 0``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = lam / (lam + kappa)
    return np.where(lam > 0, out, 0.0)


def _check_inputs(
    eigenvalues: object, target_coefficients: object, n: object, ridge: float, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    v = np.asarray(target_coefficients, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise PiamiShapeError(f"eigenvalues must be a non-empty 1-d array, got shape {lam.shape}")
    if v.shape != lam.shape:
        raise PiamiShapeError(
            f"target_coefficients must have the shape of eigenvalues {lam.shape}, got {v.shape}: "
            "give one coefficient v_i per eigenvalue (0 for modes absent from the target)"
        )
    if not np.all(np.isfinite(lam)) or np.any(lam < 0) or not np.any(lam > 0):
        raise PiamiValueError(
            "eigenvalues must be finite and >= 0 with at least one > 0 (a kernel is positive "
            f"semi-definite); got min {np.nanmin(lam)!r}, NaN/inf present: "
            f"{not np.all(np.isfinite(lam))}"
        )
    if not np.all(np.isfinite(v)):
        raise PiamiValueError("target_coefficients contain NaN or inf")
    ns = np.atleast_1d(np.asarray(n, dtype=np.float64))
    if ns.ndim != 1 or ns.size == 0 or not np.all(np.isfinite(ns)) or np.any(ns < 1):
        raise PiamiValueError(f"n must be a number or 1-d array of numbers >= 1, got {n!r}")
    for name, val in (("ridge", ridge), ("noise", noise)):
        if isinstance(val, bool) or not isinstance(val, (int, float, np.floating, np.integer)):
            raise PiamiValueError(f"{name} must be a real number >= 0, got {val!r}")
        if not math.isfinite(val) or val < 0:
            raise PiamiValueError(f"{name} must be finite and >= 0, got {val!r}")
    return lam, v, ns, float(ridge), float(noise)


def _solve_kappa(lam: np.ndarray, ns: np.ndarray, ridge: float) -> np.ndarray:
    """Root ``kappa > 0`` of ``sum lam/(lam + kappa) + ridge/kappa = n`` for each ``n``.

    Safeguarded Newton in ``u = log kappa`` on ``g(u) = sum lam/(lam + e^u) + ridge e^-u - n``,
    which decreases strictly in ``u``: Newton steps that leave the bracket ``[lo, hi]`` (``g(lo) >
    0 > g(hi)``) are replaced by bisection. Requires ``ridge > 0`` or ``n < #{lam > 0}``.
    """
    pos = lam[lam > 0]
    m = pos.size
    # bracket: g < 0 once kappa > (sum lam + ridge) / n; g > 0 once kappa < ridge / n, and (for
    # n < M) once kappa < (M - n) min(lam) / M, since sum lam/(lam+kappa) >= M - kappa M / min(lam).
    hi = np.log(2.0 * (pos.sum() + ridge) / ns)
    lo_r = np.log(ridge / ns) if ridge > 0 else np.full_like(ns, -np.inf)
    with np.errstate(divide="ignore"):
        lo_m = np.log(np.maximum(m - ns, 0.0) / m) + np.log(pos.min())
    lo = np.maximum(lo_r, lo_m) - np.log(2.0)
    u = 0.5 * (lo + hi)
    for _ in range(_MAX_ITER):
        kappa = np.exp(u)[:, None]
        learn = pos[None, :] / (pos[None, :] + kappa)
        g = learn.sum(axis=1) + ridge / kappa[:, 0] - ns
        dg = -(learn * (1.0 - learn)).sum(axis=1) - ridge / kappa[:, 0]
        lo = np.where(g > 0, u, lo)
        hi = np.where(g > 0, hi, u)
        step = np.where(dg < 0, g / dg, 0.0)
        new = u - step
        outside = ~((new > lo) & (new < hi)) | (dg >= 0)
        done = (np.abs(g) <= 1e-14 * ns) | (np.abs(step) <= 1e-15 * np.maximum(1.0, np.abs(u)))
        new = np.where(outside, 0.5 * (lo + hi), new)
        u = np.where(done, u, new)
        if np.all(done):
            break
    kappa = np.exp(u)
    learn = pos[None, :] / (pos[None, :] + kappa[:, None])
    resid = learn.sum(axis=1) + ridge / kappa - ns
    if not np.all(np.abs(resid) <= 1e-11 * ns):
        bad = ns[np.abs(resid) > 1e-11 * ns]
        raise DivergenceError(
            f"the kappa equation did not converge for n = {bad[:5]} (relative residual "
            f"{np.max(np.abs(resid) / ns):.2e}); the spectrum may span too many decades for "
            "float64: drop eigenvalues below ~1e-280 times the largest"
        )
    return kappa


def kernel_learning_curve(
    eigenvalues: Float[np.ndarray, " n_modes"],
    target_coefficients: Float[np.ndarray, " n_modes"],
    n: float | Float[np.ndarray, " n_sizes"],
    *,
    ridge: float = 0.0,
    noise: float = 0.0,
) -> KernelCurve:
    """Expected test and train error of kernel ridge regression with ``n`` samples.

    Solves the kappa equation ``sum_i lambda_i/(lambda_i + kappa) + delta/kappa = n`` (Simon et
    al. 2023; Bordelon et al. 2020) and evaluates the eigenlearning formulas (module
    docstring). The ridge ``delta`` is the one in ``(K(X, X) + delta I)^(-1)``, i.e. in
    ``sum_mu (f(x_mu) - y_mu)^2 + delta ||f||_K^2`` (not divided by ``n``).

    Ridgeless with ``n >= M`` (``M`` = number of positive eigenvalues) returns the ``delta -> 0+``
    limit: ``kappa = 0``, ``L_i = 1``, ``E_0 = n / (n - M)`` (``inf`` at ``n = M``), test MSE
    ``E_0 (sum_{lambda_i = 0} v_i^2 + sigma^2)`` (0 when that sum and ``sigma^2`` vanish) and train
    MSE ``(n - M)/n`` times that sum plus ``sigma^2`` (0 at ``n = M``).

    Args:
        eigenvalues: kernel eigenvalues ``lambda_i >= 0`` (at least one positive), shape
            ``(n_modes,)``, in any order.
        target_coefficients: target ``v_i`` in the orthonormal eigenbasis, shape ``(n_modes,)``.
        n: training-set size(s), a number or 1-d array of numbers ``>= 1`` (need not be integer).
        ridge: ``delta >= 0``.
        noise: label-noise variance ``sigma^2 >= 0``.

    Returns:
        A :class:`KernelCurve` with one entry per ``n`` (in the order given).

    Raises:
        PiamiShapeError: eigenvalues not 1-d, or target of another shape.
        PiamiValueError: negative / non-finite eigenvalues, ``n < 1``, ``ridge < 0``, ``noise < 0``.
        DivergenceError: the kappa equation could not be solved to 1e-11 in float64.

    Examples:
        One mode, ``lambda = 1``: ``n kappa^2 + (n - 1 - delta) kappa - delta = 0``.

        >>> n, delta = 3.0, 0.5
        >>> c = kernel_learning_curve([1.0], [1.0], n, ridge=delta)
        >>> k = (-(n - 1 - delta) + math.sqrt((n - 1 - delta) ** 2 + 4 * n * delta)) / (2 * n)
        >>> bool(np.isclose(c.kappa[0], k))
        True
        >>> lam, v = power_law_spectrum(1000, 2.0, 2.5)
        >>> curve = kernel_learning_curve(lam, v, [10, 100])
        >>> bool(curve.test_mse[1] < curve.test_mse[0])
        True
        >>> bool(np.allclose(curve.learnability().sum(axis=1), curve.n))  # ridgeless: sum L = n
        True
    """
    lam, v, ns, ridge, noise = _check_inputs(eigenvalues, target_coefficients, n, ridge, noise)
    m = int(np.count_nonzero(lam > 0))
    kappa = np.zeros_like(ns)
    interp = (ridge == 0.0) & (ns >= m)  # ridgeless at or past the interpolation threshold
    solve = ~interp
    rows = max(1, _CHUNK // lam.size)
    idx = np.flatnonzero(solve)
    for start in range(0, idx.size, rows):
        part = idx[start : start + rows]
        kappa[part] = _solve_kappa(lam, ns[part], ridge)
    ridge_share = np.where(interp, ns - m, 0.0)
    if ridge > 0:
        ridge_share = ridge / kappa
    s_ll = np.empty_like(ns)  # sum L(1 - L)
    bias2 = np.empty_like(ns)
    for start in range(0, ns.size, rows):
        sl = slice(start, start + rows)
        k = kappa[sl, None]
        learn = _learn(lam[None, :], k)
        with np.errstate(invalid="ignore", divide="ignore"):  # 1 - L without cancellation
            miss = np.where(lam[None, :] > 0, k / (lam[None, :] + k), 1.0)
        s_ll[sl] = (learn * miss).sum(axis=1)
        bias2[sl] = (miss**2 * v[None, :] ** 2).sum(axis=1)
    denom = s_ll + ridge_share  # = n - sum L^2
    floor = bias2 + noise
    with np.errstate(divide="ignore", invalid="ignore"):
        e0 = np.where(denom > 0, ns / denom, np.inf)
        test = np.where(floor > 0, e0 * floor, 0.0)
        variance = np.where(floor > 0, (e0 - 1.0) * floor, 0.0)
        # (delta/(n kappa))^2 E = (r/n)(r/denom) floor, r = delta/kappa; -> 0 as r -> 0 at n = M
        train = np.where(ridge_share > 0, ridge_share / ns * (ridge_share / denom) * floor, 0.0)
    return KernelCurve(
        n=ns,
        kappa=kappa,
        ridge_share=ridge_share,
        e0=e0,
        test_mse=test,
        generalization_error=test - noise,
        train_mse=train,
        bias2=bias2,
        variance=variance,
        eigenvalues=lam,
        target_coefficients=v,
        ridge=ridge,
        noise=noise,
    )


def power_law_spectrum(
    n_modes: int, a: float, b: float, *, normalize: bool = True
) -> tuple[Float[np.ndarray, " n_modes"], Float[np.ndarray, " n_modes"]]:
    """Power-law eigenvalues ``lambda_k ∝ k^(-a)`` and target power ``v_k^2 ∝ k^(-b)``.

    Args:
        n_modes: number of modes ``M >= 1``.
        a: eigenvalue decay exponent ``a > 1`` (so the trace stays finite as ``M`` grows).
        b: target power decay exponent ``b > 1`` (so the target's variance stays finite).
        normalize: scale so that ``sum_k lambda_k = 1`` (unit kernel trace) and
            ``sum_k v_k^2 = 1`` (unit target variance); otherwise ``lambda_k = k^(-a)``,
            ``v_k = k^(-b/2)``.

    Returns:
        ``(eigenvalues, target_coefficients)``, each shape ``(n_modes,)``, decreasing, positive.

    Examples:
        >>> lam, v = power_law_spectrum(100, 2.0, 3.0)
        >>> round(float(lam.sum()), 12), round(float((v**2).sum()), 12)
        (1.0, 1.0)
        >>> bool(np.isclose(lam[0] / lam[9], 10.0**2))
        True
    """
    if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or n_modes < 1:
        raise PiamiValueError(f"n_modes must be an integer >= 1, got {n_modes!r}")
    _check_exponents(a, b)
    k = np.arange(1, int(n_modes) + 1, dtype=np.float64)
    lam = k ** (-float(a))
    v = k ** (-float(b) / 2.0)
    if normalize:
        lam = lam / lam.sum()
        v = v / math.sqrt(float((v**2).sum()))
    return lam, v


def _check_exponents(a: float, b: float) -> None:
    for name, val in (("a", a), ("b", b)):
        ok = isinstance(val, (int, float, np.floating, np.integer)) and not isinstance(val, bool)
        if not ok or not math.isfinite(val) or val <= 1:
            raise PiamiValueError(
                f"{name} must be a finite number > 1 (summable spectrum / target), got {val!r}"
            )


def asymptotic_exponent(a: float, b: float) -> float:
    """Decay exponent ``alpha = min(b - 1, 2a)`` of the test MSE, ``E ~ n^(-alpha)``.

    For ``lambda_k ∝ k^(-a)`` and ``v_k^2 ∝ k^(-b)``: modes ``k < n`` are learned, ``kappa ~
    n^(-a)``; the unlearned tail gives ``n^(-(b-1))`` and the ridge-like shrinkage of the learned
    modes ``kappa^2 sum_{k<n} v_k^2 / lambda_k^2`` gives ``n^(-2a)`` when ``b - 1 > 2a`` (Bordelon
    et al. 2020; Spigler, Geiger & Wyart 2020). It holds ridgeless (or with a ridge
    ``delta << n kappa``), noiseless (noise adds a plateau ``sigma^2 E_0``), for ``1 << n << M``
    (at ``n ~ M`` the finite spectrum takes over); at ``b - 1 = 2a`` there are log corrections.

    Args:
        a: eigenvalue decay exponent (> 1).
        b: target power decay exponent (> 1).

    Returns:
        ``min(b - 1, 2a)``.

    Examples:
        >>> asymptotic_exponent(1.5, 2.0), asymptotic_exponent(1.5, 6.0)
        (1.0, 3.0)
    """
    _check_exponents(a, b)
    return float(min(float(b) - 1.0, 2.0 * float(a)))
