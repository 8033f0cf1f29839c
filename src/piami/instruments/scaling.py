"""Power-law fits with confidence intervals: learning curves, correlation decay, entropy profiles.

:class:`PowerLawFit` fits ``y = E + A x**(-alpha)`` (or ``A x**(-alpha)`` without offset) by robust
nonlinear least squares (``scipy.optimize.least_squares``, soft-L1 loss by default, so one outlier
does not drag the exponent), and gives percentile bootstrap intervals. With per-point standard
errors ``sigma`` the bootstrap is parametric (``y* = yhat + sigma z``); without, it resamples the
residuals (``y* = yhat + r_shuffled``), which also carries any misfit of the power-law form.

On top of it: :func:`fit_beta` (log-log slope of ``||C(n)||`` on the lags above the noise floor),
:func:`fit_gamma` (``H_n = H_inf + A n**(-gamma)`` on the trusted orders) and
:func:`predict_alpha_d` (``gamma / (2 beta)`` with the interval propagated through the bootstrap
draws). Theory twin: :mod:`piami.theory.scaling`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import least_squares

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.contract import PiamiEstimator, RandomState, check_random_state
from piami.typing import Float


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(s, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


class PowerLawFit(PiamiEstimator):
    """Fit ``y = E + A x**(-alpha)`` with bootstrap intervals (scikit-learn contract).

    An estimator of :mod:`piami.instruments.contract` whose ``x`` is one positive coordinate
    (1-D, or ``(n, 1)``) rather than a feature matrix; ``score`` is the R^2 of ``y``.

    Args:
        offset: fit the offset ``E`` (else ``E = 0`` and the fit is linear in log-log).
        offset_bounds: allowed range of ``E`` (e.g. ``(0, min y)`` for an entropy rate).
        alpha_bounds: allowed range of the exponent; a fit that ends on a bound is reported
            as such by ``at_bound_`` (which is also set when ``E`` reaches its upper bound, a flat
            curve); ``offset_at_bound_`` says whether ``E`` sits on either bound.
        loss: ``least_squares`` loss: ``"linear"``, ``"soft_l1"``, ``"huber"``, ``"cauchy"``.
        n_boot: bootstrap replicates (0: no intervals).
        ci: confidence level of the intervals.
        random_state: randomness of the bootstrap: an int seed (default 0), a numpy Generator
            (used as it is) or ``None`` (fresh entropy).

    Attributes (after ``fit``):
        E_, A_, alpha_: point estimates.
        ci_: dict ``{"E", "A", "alpha"} -> (low, high)``.
        boot_: ``(n_boot, 3)`` bootstrap draws of ``(E, A, alpha)``.
        residuals_: ``y - yhat`` at the fitted points.

    Example:
        >>> x = np.geomspace(1, 1e4, 8); y = 1.0 + 2.0 * x**-0.3
        >>> fit = PowerLawFit(n_boot=50, random_state=0).fit(x, y)
        >>> round(fit.alpha_, 3)
        0.3
    """

    def __init__(
        self,
        *,
        offset: bool = True,
        loss: str = "soft_l1",
        n_boot: int = 200,
        ci: float = 0.95,
        offset_bounds: tuple[float, float] = (-np.inf, np.inf),
        alpha_bounds: tuple[float, float] = (1e-3, 10.0),
        random_state: RandomState = 0,
    ) -> None:
        self.offset = offset
        self.offset_bounds = offset_bounds
        self.alpha_bounds = alpha_bounds
        self.loss = loss
        self.n_boot = n_boot
        self.ci = ci
        self.random_state = random_state

    def _validate(self, x: object, y: object, sigma: object) -> tuple[np.ndarray, ...]:
        if self.loss not in ("linear", "soft_l1", "huber", "cauchy", "arctan"):
            raise PiamiValueError(f"loss must be a least_squares loss name, got {self.loss!r}")
        if not isinstance(self.n_boot, int) or self.n_boot < 0:
            raise PiamiValueError(f"n_boot must be an int >= 0, got {self.n_boot!r}")
        if not 0 < self.ci < 1:
            raise PiamiValueError(f"ci must be in (0, 1), got {self.ci}")
        x = _coordinate(x)
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PiamiTypeError(f"x and y must be numeric arrays: {exc}") from exc
        if x.ndim != 1 or x.shape != y.shape:
            raise PiamiValueError(f"x and y must be 1-D of equal length, got {x.shape}, {y.shape}")
        need = 4 if self.offset else 3
        if x.size < need:
            raise PiamiValueError(
                f"a power law{' with offset' if self.offset else ''} needs >= {need} points, got "
                f"{x.size}"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.any(x <= 0):
            raise PiamiValueError("x must be finite and > 0 and y finite")
        if not self.offset and np.any(y <= 0):
            raise PiamiValueError("without offset, y must be > 0 (the fit is in log-log)")
        if sigma is not None:
            sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), x.shape).copy()
            if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
                raise PiamiValueError("sigma must be finite and > 0")
        return x, y, sigma

    def _solve(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        lx = np.log(x)
        if not self.offset:  # log y = log A - alpha log x
            ly = np.log(y)
            slope, icpt = np.polyfit(lx, ly, 1)
            s = None if sigma is None else sigma / y

            def res(th: np.ndarray) -> np.ndarray:
                r = ly - (th[0] - th[1] * lx)
                return r if s is None else r / s

            th = least_squares(res, [icpt, -slope], loss=self.loss, f_scale=_scale(ly)).x
            return np.array([0.0, np.exp(th[0]), th[1]])
        w = np.ones_like(y) if sigma is None else sigma
        lo_e, hi_e = (float(b) for b in self.offset_bounds)
        lo_a, hi_a = (float(b) for b in self.alpha_bounds)
        # start: profile over a grid of exponents; for each, (E, A) by weighted linear least
        # squares with E clipped into its bounds (vectorized over the grid)
        alphas = np.geomspace(max(lo_a, 1e-6), hi_a, 240)
        z = x[None, :] ** -alphas[:, None]  # (grid, n)
        iw = 1.0 / w**2
        sw, sz, szz = iw.sum(), z @ iw, (z * z) @ iw
        sy, szy = (iw * y).sum(), (z * y) @ iw
        det = sw * szz - sz * sz
        with np.errstate(divide="ignore", invalid="ignore"):
            e_hat = np.clip((szz * sy - sz * szy) / det, lo_e, hi_e)
            a_hat = (szy - e_hat * sz) / szz
        sse = ((y - e_hat[:, None] - a_hat[:, None] * z) ** 2 / w**2).sum(1)
        sse[~np.isfinite(sse)] = np.inf
        g = int(np.argmin(sse))

        def res3(th: np.ndarray) -> np.ndarray:
            return (y - th[0] - th[1] * x ** -th[2]) / w

        th0 = np.array([e_hat[g], a_hat[g], alphas[g]])
        th0[0] = np.clip(th0[0], lo_e, hi_e)
        th0[2] = np.clip(th0[2], lo_a, hi_a)
        f_scale = 1.0 if sigma is not None else _scale(y)
        try:
            th = least_squares(
                res3,
                th0,
                loss=self.loss,
                f_scale=f_scale,
                max_nfev=200,
                bounds=([lo_e, -np.inf, lo_a], [hi_e, np.inf, hi_a]),
            ).x
        except ValueError:  # start exactly on a bound that least_squares rejects
            th = th0
        return np.array([th[0], th[1], th[2]])

    def fit(
        self,
        x: Float[np.ndarray, " n"],
        y: Float[np.ndarray, " n"],
        *,
        sigma: Float[np.ndarray, " n"] | float | None = None,
        rng: np.random.Generator | None = None,
    ) -> PowerLawFit:
        """Fit, then bootstrap.

        Args:
            x: abscissae ``(n,)`` (or ``(n, 1)``), all ``> 0``.
            y: ordinates ``(n,)``.
            sigma: per-point standard errors of ``y`` (optional): a parametric bootstrap.
            rng: deprecated (warns): a Generator used instead of ``random_state`` for this fit.

        Returns:
            self.
        """
        x, y, sigma = self._validate(x, y, sigma)
        if rng is None:
            rng = check_random_state(self.random_state)
        else:
            warnings.warn(
                "PowerLawFit.fit(rng=...) is deprecated: pass random_state=rng to the "
                "constructor (the same numbers)",
                DeprecationWarning,
                stacklevel=2,
            )
            if not isinstance(rng, np.random.Generator):
                raise PiamiTypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        lo_e, hi_e = self.offset_bounds
        if not lo_e < hi_e or not self.alpha_bounds[0] < self.alpha_bounds[1]:
            raise PiamiValueError(
                f"bounds must be (low, high) with low < high, got offset_bounds="
                f"{self.offset_bounds}, alpha_bounds={self.alpha_bounds}"
            )
        self.E_, self.A_, self.alpha_ = (float(v) for v in self._solve(x, y, sigma))
        tol_b = 1e-4 * max(1.0, abs(self.alpha_))
        self.at_bound_ = bool(
            min(abs(self.alpha_ - b) for b in self.alpha_bounds) < tol_b
            or (self.offset and abs(self.E_ - self.offset_bounds[1]) < 1e-6)
        )
        self.offset_at_bound_ = bool(
            self.offset and min(abs(self.E_ - b) for b in self.offset_bounds) < 1e-6
        )
        yhat = self.predict(x)
        self.residuals_ = y - yhat
        boot = np.full((self.n_boot, 3), np.nan)
        dof = max(x.size - (3 if self.offset else 2), 1)
        scale_r = np.sqrt(x.size / dof)  # residuals shrink by the fitted parameters
        for b in range(self.n_boot):
            if sigma is not None:
                yb = yhat + sigma * rng.standard_normal(x.size)
            else:
                yb = yhat + scale_r * rng.choice(self.residuals_, x.size, replace=True)
            if not self.offset and np.any(yb <= 0):
                continue
            try:
                boot[b] = self._solve(x, yb, sigma)
            except (ValueError, np.linalg.LinAlgError):
                continue
        self.boot_ = boot
        self.ci_ = {
            name: _interval(boot[:, k], self.ci) for k, name in enumerate(("E", "A", "alpha"))
        }
        return self

    def predict(self, x: Float[np.ndarray, " n"]) -> Float[np.ndarray, " n"]:
        """``E_ + A_ x**(-alpha_)`` at ``x`` ``(n,)`` (or ``(n, 1)``)."""
        self._check_fitted("alpha_", "fit(x, y)")
        return self.E_ + self.A_ * _coordinate(x) ** (-self.alpha_)

    def score(self, x: Float[np.ndarray, " n"], y: Float[np.ndarray, " n"]) -> float:
        """R^2 of ``y`` by the fitted law: ``1 - sum (y - yhat)^2 / sum (y - mean y)^2``."""
        yhat = self.predict(x)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != yhat.shape:
            raise PiamiShapeError(f"x and y must have equal length, got {yhat.shape}, {y.shape}")
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        ss_res = float(np.sum((y - yhat) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)


def _coordinate(x: object) -> np.ndarray:
    """``x`` as a float64 1-D array (an ``(n, 1)`` column is flattened)."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(f"x must be a numeric array: {exc}") from exc
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    return x


def _scale(v: np.ndarray) -> float:
    """A residual scale for the robust loss: 10% of the data's spread (never zero)."""
    s = 0.1 * float(np.std(v))
    return s if s > 0 else 1.0
