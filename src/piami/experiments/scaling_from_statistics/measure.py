"""The measurements of ``scaling-from-statistics``: the points combined into a learning curve,
gamma read off the model trained on the most data, and the predicted ``alpha_D``.

* the learning curve: the test loss with at least ``n_ctx / 2`` tokens of context against the
  training-set size ``P``, fitted by ``L(P) = E + A P**(-alpha)`` (the measured ``alpha_D``);
* ``gamma``: from the n-gram losses ``L_n`` (Cagnetta, Raventos, Ganguli and Wyart 2026, eq. 2)
  of the model trained on the most data, fitted on ``n <= n*(P_max)``, the lags whose correlation
  stands above the noise floor rescaled to ``P_max`` tokens;
* the prediction ``alpha_D = gamma / (2 beta)`` (ibid.), with the interval of the paired
  bootstrap draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments.scaling_from_statistics.config import FLOOR_FACTOR, Config
from piami.experiments.scaling_from_statistics.statistics import (
    corpus_statistics,
    rhm_calibration,
)
from piami.lab import Measurements, PlanOutcome

if TYPE_CHECKING:
    from piami.instruments.entropy import EntropyProfile
    from piami.instruments.exponents import ExponentFit
    from piami.instruments.scaling import PowerLawFit
    from piami.instruments.statistics import CorrelationProfile


@dataclass(frozen=True, kw_only=True)
class LearningCurve:
    """The finished training points, sorted by ``P``, and the fit of their loss.

    Attributes:
        P: ``(n_points,)`` training tokens.
        loss: ``(n_points,)`` test loss (nats) with at least ``n_ctx / 2`` tokens of context.
        by_pos: ``(n_points, n_ctx)`` test loss by position: column ``k`` is ``L_{k+1}(P)``.
        n: ``(n_ctx,)`` context lengths ``1..n_ctx`` of the columns.
        unigram_loss: ``(n_points,)`` test loss (nats) of the unigram predictor of each point.
        fit: ``E + A P**(-alpha)`` fitted on ``loss`` (None with fewer than 4 points).
    """

    P: np.ndarray
    loss: np.ndarray
    by_pos: np.ndarray
    n: np.ndarray
    unigram_loss: np.ndarray
    fit: PowerLawFit | None = None


@dataclass(kw_only=True)
class ScalingMeasurements(Measurements):
    """What ``compare`` and ``figures`` of ``scaling-from-statistics`` read.

    Attributes:
        correlations, shuffled, entropies, beta, gamma_ngram: the corpus statistics
            (:class:`~piami.experiments.scaling_from_statistics.statistics.CorpusStatistics`).
        curve: the learning curve of the points.
        gamma: gamma from the model's ``L_n`` at ``P_max``, or why it could not be fitted.
        alpha_d_predicted: ``gamma / (2 beta)`` (None when either exponent is missing).
        alpha_d_predicted_ci: its 95% interval from the paired bootstrap draws.
        alpha_d_predicted_error: why no prediction was made from two fitted exponents.
        rhm_beta: beta fitted on sequences sampled from the calibration RHM, or why not.
        rhm_beta_exact: the slope of that RHM's exact correlations at the same lags.
        rhm_beta_asymptotic: its ``ln m / ln s``.
    """

    correlations: CorrelationProfile
    shuffled: CorrelationProfile
    entropies: EntropyProfile
    beta: ExponentFit | str
    gamma_ngram: ExponentFit | str
    curve: LearningCurve
    gamma: ExponentFit | str
    alpha_d_predicted: float | None = None
    alpha_d_predicted_ci: tuple[float, float] | None = None
    alpha_d_predicted_error: str = ""
    rhm_beta: ExponentFit | str
    rhm_beta_exact: float
    rhm_beta_asymptotic: float


def learning_curve(
    cfg: Config, outcome: PlanOutcome, rng: np.random.Generator, metrics: dict[str, Any]
) -> LearningCurve:
    """The finished points, sorted by P, their context loss and the fit ``E + A P**(-alpha)``."""
    from piami.instruments.scaling import PowerLawFit

    points = sorted(
        (r.metrics for r in outcome.results.values()), key=lambda m: m["n_train_tokens"]
    )
    P = np.array([m["n_train_tokens"] for m in points], float)
    by_pos = np.array([m["loss_by_position"] for m in points], float)
    by_pos = by_pos.reshape(len(points), cfg.n_ctx)
    n = np.arange(1, cfg.n_ctx + 1)  # position k predicts from k + 1 tokens
    late = n > cfg.n_ctx // 2
    loss = by_pos[:, late].mean(1) if points else np.zeros(0)
    unigram = np.array([m["unigram_test_loss"] for m in points], float)
    metrics["learning_curve"] = {
        "P": P.tolist(),
        "context_loss": loss.tolist(),
        "context_loss_positions": [int(n[late][0]), int(n[-1])],
        "test_loss_all_positions": [m["test_loss"] for m in points],
        "unigram_test_loss": [m["unigram_test_loss"] for m in points],
        "best_step": [m["best_step"] for m in points],
        "stopped_early": [m["stopped_early"] for m in points],
        "missing": sorted(outcome.failures),
    }
    fit = None
    if P.size >= 4:
        fit = PowerLawFit(
            offset=True,
            n_boot=cfg.n_boot,
            offset_bounds=(0.0, float(loss.min())),
            random_state=rng,
        ).fit(P, loss)
        metrics["loss_fit"] = {
            "alpha": fit.alpha_,
            "alpha_ci": list(fit.ci_["alpha"]),
            "E": fit.E_,
            "E_ci": list(fit.ci_["E"]),
            "A": fit.A_,
            "at_bound": fit.at_bound_,
            "offset_at_bound": fit.offset_at_bound_,
        }
    return LearningCurve(P=P, loss=loss, by_pos=by_pos, n=n, unigram_loss=unigram, fit=fit)


def model_gamma(
    cfg: Config,
    correlations: CorrelationProfile,
    curve: LearningCurve,
    rng: np.random.Generator,
    metrics: dict[str, Any],
) -> ExponentFit | str:
    """gamma from ``L_n(P_max)`` on ``n <= n*(P_max)``; the error message when it cannot be fit."""
    from piami.instruments.exponents import fit_gamma_from_losses, resolvable_lag

    if not curve.P.size:
        return "no training point finished"
    n_star = resolvable_lag(correlations, float(curve.P[-1]), factor=FLOOR_FACTOR)
    metrics["n_star_at_p_max"] = n_star
    try:
        gamma = fit_gamma_from_losses(
            curve.n, curve.by_pos[-1], n_max=n_star, n_boot=cfg.n_boot, rng=rng
        )
    except PiamiValueError as exc:
        metrics["gamma"] = str(exc)
        return str(exc)
    metrics["gamma"] = gamma.to_dict()
    return gamma


def predict(gamma: ExponentFit | str, beta: ExponentFit | str, metrics: dict[str, Any]) -> dict:
    """The fields ``alpha_d_predicted``, ``..._ci``, ``..._error`` of the measurements."""
    from piami.instruments.exponents import predict_alpha_d

    if isinstance(gamma, str) or isinstance(beta, str):
        return {}
    try:
        value, ci = predict_alpha_d(gamma, beta)
    except PiamiValueError as exc:  # an exponent <= 0: no prediction
        metrics["alpha_d_predicted_error"] = str(exc)
        return {"alpha_d_predicted_error": str(exc)}
    metrics["alpha_d_predicted"] = value
    metrics["alpha_d_predicted_ci"] = list(ci)
    return {"alpha_d_predicted": value, "alpha_d_predicted_ci": ci}


def combine(cfg: Config, outcome: PlanOutcome) -> ScalingMeasurements:
    """Statistics of the training part, the learning curve of the points, gamma and alpha_D."""
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    stats = corpus_statistics(cfg, rng)
    t1 = time.perf_counter()
    metrics = dict(stats.metrics)
    curve = learning_curve(cfg, outcome, rng, metrics)
    gamma = model_gamma(cfg, stats.correlations, curve, rng, metrics)
    prediction = predict(gamma, stats.beta, metrics)
    t2 = time.perf_counter()
    rhm = rhm_calibration(cfg.seed, cfg.n_boot)
    metrics["rhm_calibration"] = rhm.metrics
    timing = {
        "statistics_s": t1 - t0,
        "fits_s": t2 - t1,
        "rhm_calibration_s": time.perf_counter() - t2,
        "points": {key: r.timing for key, r in sorted(outcome.results.items()) if r.timing},
    }
    return ScalingMeasurements(
        metrics=metrics,
        timing=timing,
        correlations=stats.correlations,
        shuffled=stats.shuffled,
        entropies=stats.entropies,
        beta=stats.beta,
        gamma_ngram=stats.gamma_ngram,
        curve=curve,
        gamma=gamma,
        **prediction,
        rhm_beta=rhm.fit,
        rhm_beta_exact=rhm.exact,
        rhm_beta_asymptotic=rhm.asymptotic,
    )
