"""Predict the data-limited scaling exponent from the data's statistics, then measure it.

Cagnetta, Raventos, Ganguli and Wyart (2026): if the token correlations decay as
``||C(n)|| ~ n**(-beta)`` and the conditional entropies as ``H_n - H_inf ~ n**(-gamma)``, a model
trained on ``P`` tokens resolves a context ``n*(P) ~ P**(1/(2 beta))`` and its loss falls as
``L(P) - H_inf ~ P**(-alpha_D)`` with ``alpha_D = gamma / (2 beta)`` (:mod:`piami.theory.scaling`).

The experiment plans one training run per training-set size ``P`` (sub-runs of
``scaling-train-point``, executed by whoever runs the plan: in process, or stored and parallel with
``piami run scaling-from-statistics --workers N``), then combines them:

* ``beta``: top singular value of ``C(n)`` on the training part, fitted on the lags above three
  times the shuffle noise floor;
* ``gamma``: from the n-gram losses ``L_n`` (Cagnetta et al., eq. 2: the test loss with ``n``
  tokens of context) of the model trained on the most data, fitted on the lengths it resolves,
  ``n <= n*(P_max)``: the lags whose correlation stands above the same floor rescaled to
  ``P_max`` tokens. The count-based estimate (NSB entropies of the n-gram counts) is kept beside
  it but not used: on a few million characters it trusts only ``n <= 5`` or so, where ``H_n``
  does not yet show its asymptote (the fit puts ``H_inf`` on its bound, 0 nats, impossible for
  English);
* the measured ``alpha_D``: the fit ``L(P) = E + A P**(-alpha)`` of the test loss with at least
  ``n_ctx / 2`` tokens of context.

Rows (bars fixed before any run of this version, constants of
:mod:`piami.experiments._scaling_rows`, never config fields):

* prediction ``alpha_D``: within 25% of the predicted value. Not identified when either 95%
  interval is wider than the tolerance band itself, or a fit sits on a bound, or a fit cannot be
  made; the z-score of the two intervals is reported.
* control: the model trained on the most data gains at least 0.1 nats over the unigram predictor
  (an untrained, undertrained or context-blind model fails it; ``shuffle_train=True`` makes one);
* control: a token-order permutation of the training part leaves no lag above the noise floor;
* sanity: the ``beta`` instrument on a Random Hierarchy Model, against the exact correlations of
  the same grammar.

History (measured 2026-12-03, seed 0, before the plan/combine rewrite): the statistics of the
full defaults (``measure_statistics`` on the 1.8M training characters of Shakespeare) gave
``alpha_D`` 0.200 with a 95% interval [0.165, 0.635] and ``H_inf`` on its bound, 0 nats (the issue
had 0.222 [0.164, 0.506]); the tolerance was then the root-sum-square of the two half-widths, so
almost any exponent in [0, 0.45] passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments._scaling_rows import (
    FLOOR_FACTOR,
    calibration_row,
    context_gain_row,
    prediction_row,
    shuffled_corpus_row,
)
from piami.experiments._scaling_train import POINT, PointConfig, corpus_tokens, split_three
from piami.lab import Experiment, PlanOutcome, Result, SubRun, register

register(POINT)  # the sub-run this experiment plans (discovered with this module)

#: The grammar the beta instrument is calibrated on (its rules drawn from the run's seed).
RHM = {"v": 16, "n_classes": 16, "m": 2, "s": 2, "L": 6}
RHM_N_SEQS = 20_000
#: Config fields handed to every training point.
POINT_FIELDS = (
    "source",
    "tokenizer",
    "max_chars",
    "test_tokens",
    "shuffle_train",
    "n_ctx",
    "n_layers",
    "d_model",
    "d_mlp",
    "n_steps",
    "batch_size",
    "lr",
    "eval_every",
    "eval_stride",
    "device",
)


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # seeds the statistics, the bootstrap, the RHM and every training run
    source: str = "shakespeare"  # 'shakespeare', a text file, or a folder of .txt
    tokenizer: str = "char"  # 'char', 'byte', 'bpe' or 'bpe:N'
    max_chars: int | None = 2_000_000  # characters of the source used (None: all)
    test_tokens: int = 100_000  # validation and test parts (each), taken from the end
    n_max_lag: int = 256  # largest lag of the correlation profile
    n_lags: int = 16  # log-spaced lags measured
    n_max_entropy: int = 8  # largest context length of the n-gram H_n (kept for reference)
    p_min: int = 10_000  # smallest training set (tokens)
    p_max: int = 1_000_000  # largest training set (tokens)
    n_sizes: int = 6  # log-spaced training-set sizes between p_min and p_max
    shuffle_train: bool = False  # broken ingredient: train on permuted tokens (the run must fail)
    n_ctx: int = 64  # transformer context
    n_layers: int = 2  # transformer blocks
    d_model: int = 64  # residual width
    d_mlp: int = 256  # MLP width
    n_steps: int = 1500  # longest schedule per run (early stopping usually ends sooner)
    batch_size: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate
    eval_every: int = 50  # steps between validation evaluations
    eval_stride: int | None = 8  # a test window every so many tokens (None: n_ctx)
    n_boot: int = 200  # bootstrap replicates of every fit
    device: str = "auto"  # torch device of the training runs

    def __post_init__(self) -> None:
        for name in ("p_min", "p_max", "n_sizes", "n_max_lag", "n_lags", "test_tokens", "n_ctx"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PiamiValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.n_sizes < 6:
            raise PiamiValueError(f"n_sizes must be >= 6 for a 3-parameter fit, got {self.n_sizes}")
        if not self.p_min < self.p_max:
            raise PiamiValueError(f"need p_min < p_max, got {self.p_min} >= {self.p_max}")
        if self.n_max_entropy < 4:
            raise PiamiValueError(f"n_max_entropy must be >= 4, got {self.n_max_entropy}")
        if self.n_ctx < 8:
            raise PiamiValueError(
                f"n_ctx must be >= 8 (gamma needs 4 context lengths), got {self.n_ctx}"
            )
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 20:
            raise PiamiValueError(
                f"n_boot must be an int >= 20 for 95% intervals, got {self.n_boot!r}"
            )
        # what the training points get is checked now, not when the plan runs
        PointConfig(**{k: getattr(self, k) for k in POINT_FIELDS}, n_train_tokens=self.p_max)

    def sizes(self) -> list[int]:
        """The training-set sizes, log-spaced and distinct."""
        s = np.unique(np.round(np.geomspace(self.p_min, self.p_max, self.n_sizes)).astype(int))
        return [int(v) for v in s]


def plan(cfg: Config) -> list[SubRun]:
    """One ``scaling-train-point`` per training-set size, all with the run's seed.

    The points share the seed (common random numbers along the curve); two top-level seeds give
    disjoint point seeds.
    """
    base = {k: getattr(cfg, k) for k in POINT_FIELDS}
    return [
        SubRun(
            key=f"P={P}",
            experiment=POINT.name,
            overrides={**base, "seed": cfg.seed, "n_train_tokens": P},
        )
        for P in cfg.sizes()
    ]


def combine(cfg: Config, outcome: PlanOutcome) -> Result:
    """Statistics of the training part, the learning curve of the points, and the rows."""
    rng = np.random.default_rng(cfg.seed)
    result = Result(
        experiment="",
        config={},
        seed=cfg.seed,
        description=(
            "Measure the correlation-decay exponent beta of a corpus and the entropy exponent "
            "gamma from the n-gram losses of the model trained on the most data, predict the "
            "data-limited exponent alpha_D = gamma/(2 beta) (Cagnetta, Raventos, Ganguli and Wyart "
            "2026), and compare it with the exponent of the learning curve L(P) = E + A P^-alpha "
            "of transformers trained on log-spaced training sizes P (early-stopped)."
        ),
    )
    walls = {}
    t0 = time.perf_counter()
    stats = _statistics(cfg, rng, result)
    walls["statistics_s"] = time.perf_counter() - t0
    curve = _learning_curve(cfg, outcome, rng, result)
    gamma = _model_gamma(cfg, stats, curve, rng, result)
    result.comparisons.append(prediction_row(stats, gamma, curve, result.metrics))
    ent = stats["entropies"]
    h01 = float(ent.nsb[0] - ent.nsb[1]) if np.isfinite(ent.nsb[:2]).all() else None
    result.comparisons.append(context_gain_row(curve, h01))
    result.comparisons.append(shuffled_corpus_row(stats["shuffled"]))
    t1 = time.perf_counter()
    walls["fits_s"] = t1 - t0 - walls["statistics_s"]
    result.comparisons.append(calibration_row(*_rhm_calibration(cfg, cfg.n_boot, result)))
    t2 = time.perf_counter()
    walls["rhm_calibration_s"] = t2 - t1
    _figures(stats, gamma, curve, result)
    walls["figures_s"] = time.perf_counter() - t2
    result.timing.update(walls)
    return result


def _statistics(cfg: Config, rng: np.random.Generator, result: Result) -> dict:
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
    stats["shuffled"] = lagged_correlations(
        rng.permutation(train_ids), corr.lags, n_vocab=vocab, rng=rng
    )
    beta, gamma_ngram = stats["beta"], stats["gamma"]
    result.metrics.update(
        n_tokens=int(ids.size),
        n_train_tokens_total=int(train_ids.size),
        vocab_size=vocab,
        beta=beta if isinstance(beta, str) else beta.to_dict(),
        gamma_ngram=gamma_ngram if isinstance(gamma_ngram, str) else gamma_ngram.to_dict(),
        alpha_d_from_ngram_gamma=stats["alpha_d"],
        alpha_d_from_ngram_gamma_ci=list(stats["alpha_d_ci"]),
        correlations=corr.to_dict(),
        correlations_shuffled=stats["shuffled"].to_dict(),
        entropies=stats["entropies"].to_dict(),
    )
    return stats


def _learning_curve(
    cfg: Config, outcome: PlanOutcome, rng: np.random.Generator, result: Result
) -> dict:
    """The finished points, sorted by P, their context loss and the fit ``E + A P**(-alpha)``."""
    from piami.instruments.scaling import PowerLawFit

    points = sorted(
        (r.metrics for r in outcome.results.values()), key=lambda m: m["n_train_tokens"]
    )
    P = np.array([m["n_train_tokens"] for m in points], float)
    by_pos = np.array([m["loss_by_position"] for m in points], float).reshape(
        len(points), cfg.n_ctx
    )
    n = np.arange(1, cfg.n_ctx + 1)  # position k predicts from k + 1 tokens
    late = n > cfg.n_ctx // 2
    loss = by_pos[:, late].mean(1) if points else np.zeros(0)
    curve = {"P": P, "loss": loss, "by_pos": by_pos, "n": n, "points": points, "fit": None}
    result.metrics["learning_curve"] = {
        "P": P.tolist(),
        "context_loss": loss.tolist(),
        "context_loss_positions": [int(n[late][0]), int(n[-1])],
        "test_loss_all_positions": [m["test_loss"] for m in points],
        "unigram_test_loss": [m["unigram_test_loss"] for m in points],
        "best_step": [m["best_step"] for m in points],
        "stopped_early": [m["stopped_early"] for m in points],
        "missing": sorted(outcome.failures),
    }
    result.timing["points"] = {
        key: r.timing for key, r in sorted(outcome.results.items()) if r.timing
    }
    if P.size >= 4:
        fit = PowerLawFit(
            offset=True, n_boot=cfg.n_boot, offset_bounds=(0.0, float(loss.min()))
        ).fit(P, loss, rng=rng)
        curve["fit"] = fit
        result.metrics["loss_fit"] = {
            "alpha": fit.alpha_,
            "alpha_ci": list(fit.ci_["alpha"]),
            "E": fit.E_,
            "E_ci": list(fit.ci_["E"]),
            "A": fit.A_,
            "at_bound": fit.at_bound_,
            "offset_at_bound": fit.offset_at_bound_,
        }
    return curve


def _model_gamma(cfg: Config, stats: dict, curve: dict, rng, result: Result):
    """gamma from ``L_n(P_max)`` on ``n <= n*(P_max)``; the error message when it cannot be fit."""
    from piami.instruments.exponents import fit_gamma_from_losses, resolvable_lag

    if not curve["points"]:
        return "no training point finished"
    p_top = float(curve["P"][-1])
    n_star = resolvable_lag(stats["correlations"], p_top, factor=FLOOR_FACTOR)
    result.metrics["n_star_at_p_max"] = n_star
    try:
        gamma = fit_gamma_from_losses(
            curve["n"], curve["by_pos"][-1], n_max=n_star, n_boot=cfg.n_boot, rng=rng
        )
    except PiamiValueError as exc:
        result.metrics["gamma"] = str(exc)
        return str(exc)
    result.metrics["gamma"] = gamma.to_dict()
    if not isinstance(stats["beta"], str):
        from piami.instruments.exponents import predict_alpha_d

        try:
            value, ci = predict_alpha_d(gamma, stats["beta"])
        except PiamiValueError as exc:  # an exponent <= 0: no prediction
            result.metrics["alpha_d_predicted_error"] = str(exc)
        else:
            result.metrics["alpha_d_predicted"] = value
            result.metrics["alpha_d_predicted_ci"] = list(ci)
    return gamma


def _rhm_calibration(cfg: Config, n_boot: int, result: Result) -> tuple:
    """beta of an RHM drawn from the run's seed, sampled and exact."""
    from piami.instruments.exponents import calibrate_beta_on_rhm
    from piami.processes.rhm import RandomHierarchyModel

    rhm = RandomHierarchyModel(**RHM, rng=np.random.default_rng([cfg.seed, 1]))
    try:
        fit, exact = calibrate_beta_on_rhm(
            rhm, RHM_N_SEQS, n_boot=n_boot, rng=np.random.default_rng([cfg.seed, 2])
        )
    except PiamiValueError as exc:
        fit, exact = str(exc), float("nan")
    result.metrics["rhm_calibration"] = {
        "process": repr(rhm),
        "n_seqs": RHM_N_SEQS,
        "beta_asymptotic": rhm.beta,
        "beta_exact": exact,
        "beta_sampled": fit if isinstance(fit, str) else fit.to_dict(),
    }
    return fit, exact, rhm.beta


def _figures(stats: dict, gamma, curve: dict, result: Result) -> None:
    from piami.experiments._scaling_plots import (
        plot_collapse,
        plot_correlations,
        plot_entropies,
        plot_learning_curve,
    )

    beta = stats["beta"]
    result.add_figure(
        "correlations",
        plot_correlations(stats["correlations"], beta, shuffled=stats["shuffled"]),
        "||C(n)|| and its shuffle noise floor; red: power law fitted above 3x the floor; grey: "
        "the same corpus with its token order permuted (control).",
    )
    model = None if not curve["points"] else (curve["n"], curve["by_pos"][-1], curve["P"][-1])
    result.add_figure(
        "entropies",
        plot_entropies(stats["entropies"], stats["gamma"], model=model, model_gamma=gamma),
        "H_n from n-gram counts (plug-in, Miller-Madow, NSB; grey: orders too sparse to trust) "
        "and the n-gram loss L_n of the model trained on the most data, with the gamma fit.",
    )
    fit = curve["fit"]
    pred = result.metrics.get("alpha_d_predicted")
    if curve["P"].size:
        result.add_figure(
            "learning_curve",
            plot_learning_curve(curve["P"], curve["loss"], fit, predicted_alpha=pred),
            "Test loss (context >= n_ctx/2) against training tokens P; red: fitted "
            "E + A P^-alpha; green: predicted slope.",
        )
    if not isinstance(gamma, str) and not isinstance(beta, str) and curve["P"].size:
        result.add_figure(
            "collapse",
            plot_collapse(
                curve["P"], curve["by_pos"], h_inf=gamma.offset, gamma=gamma.value, beta=beta.value
            ),
            "Loss at context n, rescaled: (L_n - H_inf) n^gamma against P / n^(2 beta).",
        )


EXPERIMENT = Experiment(
    name="scaling-from-statistics",
    config_cls=Config,
    plan=plan,
    combine=combine,
    quick={
        "max_chars": 300_000,
        "test_tokens": 10_000,
        "n_max_lag": 64,
        "n_lags": 10,
        "n_max_entropy": 5,
        "p_min": 3_000,
        "p_max": 100_000,
        "n_ctx": 16,
        "n_layers": 1,
        "d_model": 32,
        "d_mlp": 64,
        "n_steps": 150,
        "lr": 0.01,
        "eval_every": 50,
        "eval_stride": 4,
        "n_boot": 50,
    },
    summary="predict alpha_D = gamma/(2 beta) from text statistics, then measure it by training",
)
