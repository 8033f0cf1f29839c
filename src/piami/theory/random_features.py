"""Learning curves of linear regression on random features of Gaussian latents.

Random features (the model of Maloney, Roberts & Sully 2022): with Gaussian latents
``x ~ N(0, diag(lambda))`` and features ``phi = F x`` (``F`` of shape ``(N, M)``), linear regression
on ``phi`` is kernel regression with the kernel ``phi.phi'``, whose eigenvalues are those of
``F diag(lambda) F^T``; the part of the target outside the span of the features is Gaussian and
independent of them, so it acts as label noise. :func:`random_feature_spectrum` performs this exact
reduction for one given ``F``; :func:`random_feature_learning_curve` gives the average over Gaussian
``F`` by a deterministic equivalent derived here (two nested kappa equations, features acting as
``N`` samples of the latents), checked against the reduction averaged over draws of ``F``; it was
not transcribed from, nor compared term by term with, Maloney et al.'s closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from piami.errors import PiamiShapeError, PiamiValueError
from piami.theory.learning_curves import (
    _check_inputs,
    _learn,
    _solve_kappa,
)
from piami.typing import Float

__all__ = ["RandomFeatureCurve", "random_feature_learning_curve", "random_feature_spectrum"]


def random_feature_spectrum(
    eigenvalues: Float[np.ndarray, " n_modes"],
    target_coefficients: Float[np.ndarray, " n_modes"],
    projection: Float[np.ndarray, "n_features n_modes"],
) -> tuple[Float[np.ndarray, " n_features"], Float[np.ndarray, " n_features"], float]:
    """The kernel spectrum seen by linear regression on random features ``phi = F x``.

    Latents ``x ~ N(0, diag(lambda))``, target ``sum_i v_i x_i / sqrt(lambda_i)``, features
    ``phi = F x`` (the setting of Maloney, Roberts & Sully 2022, for one draw of ``F``).
    The feature covariance ``C = F diag(lambda) F^T = Q diag(mu) Q^T`` gives the kernel
    ``phi.phi' = sum_j mu_j psi_j psi_j'`` with orthonormal Gaussian eigenfeatures
    ``psi_j = q_j.phi / sqrt(mu_j)``; the target's coefficients are
    ``u_j = q_j^T F diag(lambda) b / sqrt(mu_j)`` with ``b_i = v_i / sqrt(lambda_i)``, and what the
    features cannot express, variance ``sum_i v_i^2 - sum_j u_j^2``, is Gaussian and independent of
    ``phi``: label noise. Pass the result to :func:`kernel_learning_curve` (adding it to any label
    noise); a ridge ``delta`` on ``||w||^2`` is the kernel ridge ``delta``.

    Args:
        eigenvalues: latent variances ``lambda_i > 0``, shape ``(n_modes,)``.
        target_coefficients: ``v_i``, shape ``(n_modes,)``.
        projection: ``F``, shape ``(n_features, n_modes)``, finite.

    Returns:
        ``(mu, u, residual)``: feature-kernel eigenvalues (``n_features`` of them, decreasing;
        numerically zero ones set to 0 with ``u = 0``), target coefficients, and the variance
        of the target outside the features' span (``>= 0``).

    Examples:
        Keeping the first two latents: their spectrum, and the rest of the target as noise.

        >>> lam, v = np.array([0.5, 0.3, 0.2]), np.array([0.6, 0.0, 0.8])
        >>> mu, u, res = random_feature_spectrum(lam, v, np.eye(3)[:2])
        >>> mu.tolist(), np.abs(u).round(12).tolist(), round(res, 12)
        ([0.5, 0.3], [0.6, 0.0], 0.64)
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    v = np.asarray(target_coefficients, dtype=np.float64)
    f = np.asarray(projection, dtype=np.float64)
    if lam.ndim != 1 or v.shape != lam.shape or f.ndim != 2 or f.shape[1] != lam.size:
        raise PiamiShapeError(
            f"need eigenvalues (M,), target_coefficients (M,), projection (N, M); got "
            f"{lam.shape}, {v.shape}, {f.shape}"
        )
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise PiamiValueError("eigenvalues must be finite and > 0 (latent variances)")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(f))):
        raise PiamiValueError("target_coefficients and projection must be finite")
    cov = (f * lam) @ f.T
    mu, q = np.linalg.eigh(0.5 * (cov + cov.T))
    mu, q = mu[::-1], q[:, ::-1]
    cross = f @ (np.sqrt(lam) * v)  # Cov(phi, y) = F diag(lambda) b
    keep = mu > max(mu[0], 0.0) * lam.size * np.finfo(np.float64).eps * 10
    u = np.zeros_like(mu)
    u[keep] = (q[:, keep].T @ cross) / np.sqrt(mu[keep])
    mu = np.where(keep, mu, 0.0)
    residual = max(float(np.sum(v**2) - np.sum(u**2)), 0.0)
    return mu, u, residual


@dataclass(frozen=True, kw_only=True)
class RandomFeatureCurve:
    """Expected errors of ridge regression on ``n_features`` Gaussian random features, averaged
    over the features (deterministic equivalent); per-``n`` fields have shape ``(len(n),)``."""

    n: Float[np.ndarray, " n_sizes"]  # training-set sizes P
    n_features: int  # N
    kappa: Float[np.ndarray, " n_sizes"]  # latent-space kappa: mean predictor sum L_i v_i phi_i
    feature_kappa: Float[np.ndarray, " n_sizes"]  # kappa of the feature kernel (0 at threshold)
    e0: Float[np.ndarray, " n_sizes"]  # overfitting factor of the sample stage
    test_mse: Float[np.ndarray, " n_sizes"]  # on noisy test labels
    generalization_error: Float[np.ndarray, " n_sizes"]  # test_mse - noise
    train_mse: Float[np.ndarray, " n_sizes"]
    bias2: Float[np.ndarray, " n_sizes"]  # sum (1 - L_i)^2 v_i^2 of the mean predictor
    variance: Float[np.ndarray, " n_sizes"]  # over features, samples and noise
    eigenvalues: Float[np.ndarray, " n_modes"]  # latent lambda_i
    target_coefficients: Float[np.ndarray, " n_modes"]
    ridge: float
    noise: float

    def learnability(
        self, modes: slice | np.ndarray | None = None
    ) -> Float[np.ndarray, "n_sizes n_modes"]:
        """``L_i = lambda_i / (lambda_i + kappa)`` per size and latent mode (see
        :meth:`KernelCurve.learnability`)."""
        lam = self.eigenvalues if modes is None else self.eigenvalues[modes]
        return _learn(np.atleast_1d(lam)[None, :], self.kappa[:, None])


def _latent_kappa(lam: np.ndarray, n_features: int, lam_prime: float) -> float:
    """kappa~ with ``lam_prime = kappa~ (1 - df1(kappa~)/N)``: the kappa equation, n = N."""
    return float(_solve_kappa(lam, np.array([float(n_features)]), n_features * lam_prime)[0])


def _feature_stage(lam: np.ndarray, n_feat: int, p: float, ridge: float, rho: float) -> tuple:
    """``(kappa~, lam', ridge share of the sample stage)`` for one training-set size ``p``."""
    m = int(np.count_nonzero(lam > 0))
    rank = min(n_feat, m)
    if ridge == 0.0 and p >= rank:  # interpolation in feature space: kappa_P -> 0
        kt = _latent_kappa(lam, n_feat, 0.0) if n_feat < m else 0.0
        return kt, 0.0, p - rank

    def g(log_lp: float) -> float:
        lp = math.exp(log_lp)
        kt = _latent_kappa(lam, n_feat, lp)
        return float(np.sum(_learn(lam, kt))) + ridge / (rho * lp) - p

    lo, hi = 0.0, 0.0
    while g(lo) <= 0:
        lo -= 2.0
    while g(hi) >= 0:
        hi += 2.0
    log_lp = brentq(g, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=300)
    lp = math.exp(log_lp)
    return _latent_kappa(lam, n_feat, lp), lp, (ridge / (rho * lp) if ridge > 0 else 0.0)


def random_feature_learning_curve(
    eigenvalues: Float[np.ndarray, " n_modes"],
    target_coefficients: Float[np.ndarray, " n_modes"],
    n: float | Float[np.ndarray, " n_sizes"],
    *,
    n_features: int,
    ridge: float = 0.0,
    noise: float = 0.0,
    projection_variance: float | None = None,
) -> RandomFeatureCurve:
    """Learning curve of ridge regression on random features, averaged over the features.

    Latents ``x ~ N(0, diag(lambda))``, target ``sum_i v_i x_i / sqrt(lambda_i)`` plus noise,
    features ``phi = F x`` with ``F`` ``(N, M)`` i.i.d. ``N(0, s^2)``, predictor ``w.phi``
    minimizing ``sum_mu (w.phi_mu - y_mu)^2 + delta |w|^2`` (Maloney, Roberts & Sully 2022, their
    setting; their closed form is the ridgeless, F-averaged case). Two stages, each
    the kernel theory: with ``rho = N s^2`` and the latent kappa~ solving
    ``sum_i lambda_i/(lambda_i + kappa~) + N lam'/kappa~ = N`` (features as ``N`` samples),
    ``df1 = sum L_i``, ``df2 = sum L_i^2``, ``S = df1 - df2`` at ``L_i = lambda_i/(lambda_i +
    kappa~)`` and ``c = (N - df1)/(N - df2)``:

    * sample stage: ``df1 + delta/(rho lam') = P`` fixes ``lam'`` (feature kappa ``rho lam'``);
    * ``E_0 = P / (c S + delta/(rho lam'))``;
    * ``E = E_0 [sum_i v_i^2 (1 - L_i)(1 - c L_i) + sigma^2]``, train ``(delta/(P rho lam'))^2 E``.

    As ``N -> inf`` (``c -> 1``) this is :func:`kernel_learning_curve`. Ridgeless, kappa~ solves
    ``sum L_i = min(N, P)``; at ``P >= min(N, M)`` it is the interpolation limit
    (``E_0 = P/(P - min(N, M))``). Derived here from the deterministic equivalent
    ``lam'(S_hat + lam')^-1 ~ kappa~(Sigma + kappa~)^-1`` of a sample covariance; checked against
    :func:`random_feature_spectrum` (exact for one ``F``) averaged over draws, in the tests.

    Args:
        eigenvalues: latent variances ``lambda_i > 0``.
        target_coefficients: ``v_i``.
        n: training-set size(s) ``P >= 1``.
        n_features: ``N >= 1``.
        ridge: ``delta >= 0`` on ``|w|^2``.
        noise: label-noise variance.
        projection_variance: ``s^2``; default ``1/N`` (so ``E[F^T F] = I``).

    Returns:
        A :class:`RandomFeatureCurve`.

    Examples:
        >>> from piami.theory import kernel_learning_curve, power_law_spectrum
        >>> lam, v = power_law_spectrum(200, 1.5, 2.0)
        >>> rf = random_feature_learning_curve(lam, v, 50.0, n_features=10**9, ridge=1e-3)
        >>> kr = kernel_learning_curve(lam, v, 50.0, ridge=1e-3)
        >>> bool(np.isclose(rf.test_mse[0], kr.test_mse[0], rtol=1e-6))
        True
    """
    lam, v, ns, ridge, noise = _check_inputs(eigenvalues, target_coefficients, n, ridge, noise)
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise PiamiValueError(f"n_features must be an integer >= 1, got {n_features!r}")
    if n_features < 1:
        raise PiamiValueError(f"n_features must be an integer >= 1, got {n_features!r}")
    s2 = 1.0 / n_features if projection_variance is None else projection_variance
    if not isinstance(s2, (int, float)) or not math.isfinite(s2) or s2 <= 0:
        raise PiamiValueError(f"projection_variance must be > 0, got {projection_variance!r}")
    rho, nf = n_features * float(s2), int(n_features)
    out = {k: np.empty_like(ns) for k in ("kt", "kp", "e0", "test", "train", "b2")}
    for i, p in enumerate(ns):
        kt, lp, share = _feature_stage(lam, nf, float(p), ridge, rho)
        learn = _learn(lam, kt)
        miss = np.where(lam > 0, kt / (lam + kt), 1.0) if kt > 0 else np.where(lam > 0, 0.0, 1.0)
        df1, df2 = float(learn.sum()), float((learn**2).sum())
        c = 0.0 if lp == 0.0 else (nf - df1) / (nf - df2)  # lp = 0: N - df1 = 0 exactly
        denom = c * float((learn * miss).sum()) + share
        floor = float(np.sum(v**2 * miss * (1.0 - c * learn))) + noise
        e0 = p / denom if denom > 0 else math.inf
        out["kt"][i], out["kp"][i], out["e0"][i] = kt, rho * lp, e0
        out["test"][i] = e0 * floor if floor > 0 else 0.0
        out["train"][i] = share / p * (share / denom) * floor if share > 0 else 0.0
        out["b2"][i] = float(np.sum(miss**2 * v**2))
    return RandomFeatureCurve(
        n=ns,
        n_features=nf,
        kappa=out["kt"],
        feature_kappa=out["kp"],
        e0=out["e0"],
        test_mse=out["test"],
        generalization_error=out["test"] - noise,
        train_mse=out["train"],
        bias2=out["b2"],
        variance=out["test"] - noise - out["b2"],
        eigenvalues=lam,
        target_coefficients=v,
        ridge=ridge,
        noise=noise,
    )
