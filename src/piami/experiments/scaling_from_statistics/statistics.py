"""The data side of the prediction: beta and the n-gram entropies of the corpus, and the beta
instrument calibrated on a grammar whose correlations are known exactly.

* ``beta``: the decay ``||C(n)|| ~ n**(-beta)`` of the top singular value of the token correlation
  matrix at lag ``n`` (Cagnetta, Raventos, Ganguli and Wyart 2026), measured on the training part
  and fitted on the lags above ``FLOOR_FACTOR`` (3) times the shuffle noise floor; the same
  profile of the tokens in permuted order is the control;
* the n-gram conditional entropies ``H_n`` (plug-in, Miller-Madow, NSB) and their ``gamma``, kept
  for reference (the experiment takes ``gamma`` from a trained model's losses instead);
* the calibration: ``beta`` sampled from a Random Hierarchy Model (Cagnetta and Wyart 2024)
  against the slope of its exact correlations at the same lags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments.scaling_from_statistics.config import FLOOR_FACTOR, Config
from piami.experiments.scaling_from_statistics.point import corpus_tokens, split_three

if TYPE_CHECKING:
    from piami.instruments.entropy import EntropyProfile
    from piami.instruments.exponents import ExponentFit
    from piami.instruments.statistics import CorrelationProfile

#: The grammar the beta instrument is calibrated on (its rules drawn from the run's seed).
RHM = {"v": 16, "n_classes": 16, "m": 2, "s": 2, "L": 6}
RHM_N_SEQS = 20_000


@dataclass(frozen=True, kw_only=True)
class CorpusStatistics:
    """The statistics of the training part.

    Attributes:
        correlations: ``||C(n)||`` at the measured lags, with its noise floor.
        shuffled: the same profile of the training tokens in permuted order (the control).
        entropies: ``H_n`` (nats) of the n-gram counts, ``n = 0..n_max_entropy``.
        beta: the fit of ``||C(n)|| ~ n**(-beta)``, or why it could not be made.
        gamma_ngram: the fit of ``H_n - H_inf ~ n**(-gamma)`` on the counts, or why not.
        metrics: their JSON-ready form for ``result.json``.
    """

    correlations: CorrelationProfile
    shuffled: CorrelationProfile
    entropies: EntropyProfile
    beta: ExponentFit | str
    gamma_ngram: ExponentFit | str
    metrics: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class BetaCalibration:
    """The beta instrument on a Random Hierarchy Model.

    Attributes:
        fit: beta fitted on sampled sequences, or why it could not be made.
        exact: the slope of the grammar's exact correlations at the same lags (NaN without fit).
        asymptotic: ``ln m / ln s``, the large-lag exponent (Cagnetta and Wyart 2024).
        metrics: their JSON-ready form for ``result.json``.
    """

    fit: ExponentFit | str
    exact: float
    asymptotic: float
    metrics: dict[str, Any]


def corpus_statistics(cfg: Config, rng: np.random.Generator) -> CorpusStatistics:
    """beta, the n-gram entropies and their gamma, and the shuffled-corpus profile."""
    from piami.instruments.exponents import measure_statistics
    from piami.instruments.statistics import lagged_correlations

    ids, vocab = corpus_tokens(cfg.source, cfg.tokenizer, cfg.max_chars)
    train_ids, _, _ = split_three(ids, cfg.test_tokens)
    if cfg.p_max > train_ids.size - 1:
        raise PiamiValueError(
            f"p_max={cfg.p_max} exceeds the {train_ids.size - 1} training tokens; raise max_chars"
        )
    stats = measure_statistics(
        train_ids,
        n_vocab=vocab,
        n_max_lag=cfg.n_max_lag,
        n_lags=cfg.n_lags,
        n_max_entropy=cfg.n_max_entropy,
        factor=FLOOR_FACTOR,
        n_boot=cfg.n_boot,
        rng=rng,
    )
    corr = stats["correlations"]
    shuffled = lagged_correlations(rng.permutation(train_ids), corr.lags, n_vocab=vocab, rng=rng)
    beta, gamma_ngram = stats["beta"], stats["gamma"]
    metrics = {
        "n_tokens": int(ids.size),
        "n_train_tokens_total": int(train_ids.size),
        "vocab_size": vocab,
        "beta": beta if isinstance(beta, str) else beta.to_dict(),
        "gamma_ngram": gamma_ngram if isinstance(gamma_ngram, str) else gamma_ngram.to_dict(),
        "alpha_d_from_ngram_gamma": stats["alpha_d"],
        "alpha_d_from_ngram_gamma_ci": list(stats["alpha_d_ci"]),
        "correlations": corr.to_dict(),
        "correlations_shuffled": shuffled.to_dict(),
        "entropies": stats["entropies"].to_dict(),
    }
    return CorpusStatistics(
        correlations=corr,
        shuffled=shuffled,
        entropies=stats["entropies"],
        beta=beta,
        gamma_ngram=gamma_ngram,
        metrics=metrics,
    )


def rhm_calibration(seed: int, n_boot: int) -> BetaCalibration:
    """beta of an RHM drawn from ``seed``, sampled and exact."""
    from piami.instruments.exponents import calibrate_beta_on_rhm
    from piami.processes.rhm import RandomHierarchyModel

    rhm = RandomHierarchyModel(**RHM, rng=np.random.default_rng([seed, 1]))
    fit: ExponentFit | str
    try:
        fit, exact = calibrate_beta_on_rhm(
            rhm, RHM_N_SEQS, n_boot=n_boot, rng=np.random.default_rng([seed, 2])
        )
    except PiamiValueError as exc:
        fit, exact = str(exc), float("nan")
    metrics = {
        "process": repr(rhm),
        "n_seqs": RHM_N_SEQS,
        "beta_asymptotic": rhm.beta,
        "beta_exact": exact,
        "beta_sampled": fit if isinstance(fit, str) else fit.to_dict(),
    }
    return BetaCalibration(fit=fit, exact=exact, asymptotic=rhm.beta, metrics=metrics)
