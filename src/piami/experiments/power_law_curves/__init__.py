"""Learning curves on Gaussian power-law data: eigenlearning theory against simulation.

Gaussian latents ``x ~ N(0, diag(lambda))`` with ``lambda_k ∝ k^(-a)`` over ``M`` modes and a
linear target ``y = sum_k v_k x_k / sqrt(lambda_k)`` with ``v_k^2 ∝ k^(-b)``
(:func:`piami.theory.power_law_spectrum`). Ridge regression on ``x`` is kernel ridge regression
with the linear kernel ``x.x'``, whose eigenvalues are exactly ``lambda_k``; its test MSE averaged
over training sets is :func:`piami.theory.kernel_learning_curve` (Bordelon, Canatar & Pehlevan
2020; Simon et al. 2023), exact up to ``O(1/n)``. Ridgeless and noiseless, for ``1 << n << M``,
``E ~ n^(-min(b - 1, 2a))`` (:func:`piami.theory.asymptotic_exponent`; Spigler, Geiger & Wyart
2020). Three curves are measured:

* ``kernel``: one per ``(a, b)`` pair, ``M = n_modes``, ``n`` up to ``M / fit_fraction`` (where
  the asymptote holds, fixed before any run): pointwise against the theory, and the fitted
  exponent against ``-min(b - 1, 2a)`` within the issue's bar ``±0.05``;
* ``trap``: the first pair with only ``M = n_features`` modes, ``n`` up to ``M / 2``: the curve
  steepens as ``n`` nears ``M`` (finite-``M`` theory), so an exponent fitted there overshoots;
* ``random features``: ``N = n_features`` features ``phi = F x`` of the ``n_modes`` latents, ``F``
  Gaussian (Maloney, Roberts & Sully 2022), ``n`` from ``n_min`` to ``n_max``: pointwise against
  :func:`piami.theory.random_feature_learning_curve` (averaged over ``F``); the curve leaves the
  kernel curve for a plateau at the target's part outside the features' span.

Controls: the theory with the wrong spectrum (``a + spectrum_shift``) must be rejected by the
same pointwise test; shuffled labels give a curve that does not fall (exponent near 0); the other
regime's exponent must miss the fitted slope; the infinite-feature curve must be rejected on the
random-feature data and on the trap's. Broken ingredient: ``shuffle_labels=True`` shuffles the
training labels of every measured curve, and the prediction rows fail.
"""

from __future__ import annotations

from piami.experiments.power_law_curves.compare import compare
from piami.experiments.power_law_curves.config import Config
from piami.experiments.power_law_curves.measure import Curve, CurveMeasurements, measure
from piami.experiments.power_law_curves.plots import figures
from piami.lab import Experiment

__all__ = ["EXPERIMENT", "Config", "Curve", "CurveMeasurements"]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    broken = " BROKEN INGREDIENT: training labels shuffled." if cfg.shuffle_labels else ""
    pairs = ", ".join(f"(a={a:g}, b={b:g})" for a, b in cfg.pairs)
    return (
        f"Ridge(less) regression on Gaussian power-law data, lambda_k ~ k^-a, v_k^2 ~ k^-b, for "
        f"{pairs}: linear kernel on M = {cfg.n_modes} modes (n <= M/{cfg.fit_fraction}), the "
        f"same with M = {cfg.n_features} (the finite-feature trap), and N = {cfg.n_features} "
        f"Gaussian random features (n = {cfg.n_min}..{cfg.n_max}, ridge {cfg.rf_ridge:g}); "
        f"{cfg.n_seeds} training sets per size, against the eigenlearning theory." + broken
    )


EXPERIMENT = Experiment(
    name="power-law-curves",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={"pairs": ((1.5, 2.0), (1.5, 5.0)), "n_modes": 4096, "n_max": 1024},
    summary="Kernel and random-feature learning curves on power-law data vs eigenlearning theory",
)
