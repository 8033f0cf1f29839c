"""Simulated learning curves: ridge regression on Gaussian power-law features, in float64 numpy.

Latents ``z ~ N(0, I_M)``, features ``x_k = sqrt(lambda_k) z_k``, target ``y = sum_k v_k z_k``
(plus Gaussian label noise of variance ``r`` where a part ``r`` of the target lies outside the
features). The predictor ``w.x`` minimizes ``|X w - y|^2 + delta |w|^2``; it is solved through the
``n x n`` kernel ``X X^T + delta I`` when ``n <= M`` and the ``M x M`` normal equations otherwise.
Its test MSE is exact over fresh inputs: ``sum_k (sqrt(lambda_k) w_k - v_k)^2 + r``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from piami.experiments.power_law_curves.config import Config
from piami.instruments.curves import loglog_slope
from piami.lab import Measurements
from piami.theory import (
    kernel_learning_curve,
    power_law_spectrum,
    random_feature_learning_curve,
    random_feature_spectrum,
)

#: Bootstrap resamples of a fitted slope (seeds resampled at each size).
N_BOOTSTRAP = 400


@dataclass(kw_only=True)
class Curve:
    """One simulated learning curve beside its theory and a control theory.

    Attributes:
        name: ``"kernel a=.. b=.."``, ``"trap"``, ``"random features"`` or ``"shuffled labels"``.
        role: ``"kernel"``, ``"trap"``, ``"rf"`` or ``"shuffled"``.
        a, b: the spectrum's exponents; n_modes: modes of the data (latents).
        n: ``(n_sizes,)`` training-set sizes; test: ``(n_sizes, n_seeds)`` test MSE per seed.
        theory: ``(n_sizes,)`` predicted test MSE; control: ``(n_sizes,)`` the control theory
            (wrong spectrum, or infinitely many features), which the data must reject.
        control_name: what ``control`` is.
        fit: ``(n_sizes,)`` bool, the sizes of the exponent fit.
        slope: fitted slope of log(mean test MSE) on log n over ``fit``; slope_sd, slope_interval:
            its bootstrap s.d. and 95% percentile interval; theory_slope: the theory's slope there.
    """

    name: str
    role: str
    a: float
    b: float
    n_modes: int
    n: np.ndarray
    test: np.ndarray
    theory: np.ndarray
    control: np.ndarray
    control_name: str
    fit: np.ndarray
    slope: float = math.nan
    slope_sd: float = math.nan
    slope_interval: tuple[float, float] = (math.nan, math.nan)
    theory_slope: float = math.nan

    @property
    def mean(self) -> np.ndarray:
        """``(n_sizes,)`` mean test MSE over seeds."""
        return self.test.mean(axis=1)

    @property
    def log_se(self) -> np.ndarray:
        """``(n_sizes,)`` standard error of log(mean) (delta method: s.e. of the mean / mean)."""
        return self.test.std(axis=1, ddof=1) / math.sqrt(self.test.shape[1]) / self.mean


@dataclass(kw_only=True)
class CurveMeasurements(Measurements):
    """The curves in order: kernel per pair, shuffled labels, trap, random features."""

    curves: list[Curve] = field(default_factory=list)


def ridge_test_mse(
    z: np.ndarray, sd: np.ndarray, v: np.ndarray, y: np.ndarray, ridge: float
) -> float:
    """Exact test MSE (against the clean target) of ridge regression on ``x = z * sd``.

    Args:
        z: ``(n, M)`` standard Gaussian latents; sd: ``(M,)`` feature scales ``sqrt(lambda)``.
        v: ``(M,)`` target coefficients (``y_clean = z @ v``); y: ``(n,)`` training labels.
        ridge: ``delta >= 0`` (0 needs ``X X^T`` or ``X^T X`` invertible).
    """
    x = z * sd
    n, m = x.shape
    if n <= m:
        k = x @ x.T
        k[np.diag_indices(n)] += ridge
        w = x.T @ scipy.linalg.solve(k, y, assume_a="pos")
    else:
        g = x.T @ x
        g[np.diag_indices(m)] += ridge
        w = scipy.linalg.solve(g, x.T @ y, assume_a="pos")
    return float(np.sum((sd * w - v) ** 2))


def _sizes(lo: int, hi: int) -> np.ndarray:
    return 2.0 ** np.arange(round(math.log2(lo)), round(math.log2(hi)) + 1)


def _simulate(
    ns: np.ndarray,
    spec: list[tuple[np.ndarray, np.ndarray, float]],
    *,
    ridge: float,
    shuffle: bool,
    seq: np.random.SeedSequence,
    bar: object,
) -> np.ndarray:
    """``(n_sizes, n_seeds)`` test MSE; ``spec[s] = (sd, v, residual)`` is seed ``s``'s data."""
    children = seq.spawn(ns.size * len(spec))
    out = np.empty((ns.size, len(spec)))
    for i, n in enumerate(ns.astype(int)):
        for s, (sd, v, res) in enumerate(spec):
            rng = np.random.default_rng(children[i * len(spec) + s])
            z = rng.standard_normal((n, sd.size))
            y = z @ v + math.sqrt(res) * rng.standard_normal(n)
            if shuffle:
                y = rng.permutation(y)
            out[i, s] = ridge_test_mse(z, sd, v, y, ridge) + res
            bar.update()  # type: ignore[attr-defined]
    return out


def _slope(c: Curve, rng: np.random.Generator) -> None:
    """Fitted slope over ``c.fit`` with its bootstrap over seeds; the theory's slope there."""
    n, t = c.n[c.fit], c.test[c.fit]
    c.theory_slope = loglog_slope(n, c.theory[c.fit])[0]
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):  # no slope: the rows say not identified
        c.slope, c.slope_sd, c.slope_interval = math.nan, math.nan, (math.nan, math.nan)
        return
    c.slope = loglog_slope(n, t.mean(axis=1))[0]
    boot = np.empty(N_BOOTSTRAP)
    for j in range(N_BOOTSTRAP):
        idx = rng.integers(0, t.shape[1], t.shape)
        boot[j] = loglog_slope(n, np.take_along_axis(t, idx, 1).mean(axis=1))[0]
    lo, hi = np.quantile(boot, [0.025, 0.975])
    c.slope_sd, c.slope_interval = float(boot.std(ddof=1)), (float(lo), float(hi))


def _kernel_curve(cfg: Config, a: float, b: float, m: int, hi: int, **kw: object) -> Curve:
    lam, v = power_law_spectrum(m, a, b)
    ns = _sizes(cfg.n_min, hi)
    spec = [(np.sqrt(lam), v, 0.0)] * cfg.n_seeds
    wrong = power_law_spectrum(m, a + cfg.spectrum_shift, b)
    test = _simulate(ns, spec, ridge=0.0, **kw)  # type: ignore[arg-type]
    return Curve(
        name=f"kernel a={a:g} b={b:g}",
        role="kernel",
        a=a,
        b=b,
        n_modes=m,
        n=ns,
        test=test,
        theory=kernel_learning_curve(lam, v, ns).test_mse,
        control=kernel_learning_curve(*wrong, ns).test_mse,
        control_name=f"theory with a = {a + cfg.spectrum_shift:g}",
        fit=np.ones(ns.size, dtype=bool),
    )


def _rf_curve(cfg: Config, seqs: list[np.random.SeedSequence], bar: object) -> Curve:
    """Random features ``phi = F x``: each seed draws its own ``F`` (``N x M``, i.i.d.
    ``N(0, 1/N)``); the regression on ``phi`` is simulated in the eigenbasis of ``F Lambda F^T``
    (ridge on ``|w|^2`` is rotation invariant), the target outside the features' span as noise."""
    a, b = cfg.pairs[0]
    lam, v = power_law_spectrum(cfg.n_modes, a, b)
    spec = []
    for s in seqs[0].spawn(cfg.n_seeds):
        f = np.random.default_rng(s).standard_normal((cfg.n_features, cfg.n_modes))
        mu, u, res = random_feature_spectrum(lam, v, f / math.sqrt(cfg.n_features))
        keep = mu > 0
        spec.append((np.sqrt(mu[keep]), u[keep], res))
    ns = _sizes(cfg.n_min, cfg.n_max)
    test = _simulate(ns, spec, ridge=cfg.rf_ridge, shuffle=cfg.shuffle_labels, seq=seqs[1], bar=bar)
    rf = random_feature_learning_curve(lam, v, ns, n_features=cfg.n_features, ridge=cfg.rf_ridge)
    return Curve(
        name="random features",
        role="rf",
        a=a,
        b=b,
        n_modes=cfg.n_modes,
        n=ns,
        test=test,
        theory=rf.test_mse,
        control=kernel_learning_curve(lam, v, ns, ridge=cfg.rf_ridge).test_mse,
        control_name="kernel theory (infinitely many features)",
        fit=ns <= cfg.n_features / 8,
    )


def measure(cfg: Config, *, progress: bool = True) -> CurveMeasurements:
    """Simulate every curve (``n_seeds`` training sets per size) and fit their slopes."""
    from tqdm.auto import tqdm

    from piami.models import limit_threads

    seqs = np.random.SeedSequence(cfg.seed).spawn(len(cfg.pairs) + 5)
    hi = cfg.n_modes // cfg.fit_fraction
    n_k = _sizes(cfg.n_min, hi).size
    total = cfg.n_seeds * (
        n_k * (len(cfg.pairs) + 1)
        + _sizes(cfg.n_min, cfg.n_features // 2).size
        + _sizes(cfg.n_min, cfg.n_max).size
    )
    bar = tqdm(total=total, disable=not progress, desc="training sets")
    m = CurveMeasurements()
    sh = cfg.shuffle_labels
    with limit_threads(1):
        start = time.perf_counter()
        for j, (a, b) in enumerate(cfg.pairs):
            kw = {"shuffle": sh, "seq": seqs[j], "bar": bar}
            m.curves.append(_kernel_curve(cfg, a, b, cfg.n_modes, hi, **kw))
        a, b = cfg.pairs[0]
        kw = {"shuffle": True, "seq": seqs[-5], "bar": bar}
        shuffled = _kernel_curve(cfg, a, b, cfg.n_modes, hi, **kw)
        shuffled.name, shuffled.role = "shuffled labels", "shuffled"
        m.curves.append(shuffled)
        m.timing["kernel_s"] = time.perf_counter() - start
        start = time.perf_counter()
        kw = {"shuffle": sh, "seq": seqs[-4], "bar": bar}
        trap = _kernel_curve(cfg, a, b, cfg.n_features, cfg.n_features // 2, **kw)
        lam_big, v_big = power_law_spectrum(cfg.n_modes, a, b)
        trap.name, trap.role = "trap", "trap"
        trap.control = kernel_learning_curve(lam_big, v_big, trap.n).test_mse
        trap.control_name = f"theory with M = {cfg.n_modes} modes (n << M)"
        trap.fit = trap.n >= cfg.n_features / 8
        m.curves.append(trap)
        m.curves.append(_rf_curve(cfg, seqs[-3:-1], bar))
        m.timing["trap_rf_s"] = time.perf_counter() - start
    bar.close()
    boot = np.random.default_rng(seqs[-1])
    for c in m.curves:
        _slope(c, boot)
        m.metrics[c.name] = {
            "n": c.n.astype(int).tolist(),
            "mean_test_mse": c.mean.tolist(),
            "theory": c.theory.tolist(),
            "log_se": c.log_se.tolist(),
            "slope": c.slope,
            "slope_sd": c.slope_sd,
            "theory_slope": c.theory_slope,
        }
    return m
