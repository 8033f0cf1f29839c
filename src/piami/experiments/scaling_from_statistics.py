"""Predict the data-limited scaling exponent from the data's statistics, then measure it.

Cagnetta, Raventos, Ganguli and Wyart (2026): if the token correlations decay as
``||C(n)|| ~ n**(-beta)`` and the conditional entropies as ``H_n - H_inf ~ n**(-gamma)``, a model
trained on ``P`` tokens resolves a context ``n*(P) ~ P**(1/(2 beta))`` and its loss falls as
``L(P) - H_inf ~ P**(-alpha_D)`` with ``alpha_D = gamma / (2 beta)`` (:mod:`piami.theory.scaling`).

This experiment measures ``beta`` (top singular value of ``C(n)`` above the shuffle noise floor)
and ``gamma`` (NSB estimate of ``H_n`` on the orders that are not count-sparse) on the training
part of a corpus, predicts ``alpha_D``; then trains one transformer per training-set size ``P``
(log-spaced, early-stopped on a held-out part) through :func:`piami.runs.sweep` (experiment
``scaling-train-point``: stored, cached, resumable), fits ``L(P) = E + A P**(-alpha)`` and compares.

The comparison passes when the two values differ by less than the root-sum-square of their
interval half-widths: the prediction and the measurement are compatible within their stated
uncertainties. Small models on a few million characters are partly capacity-limited, and the
n-gram ``H_n`` is far from its asymptote at the orders that can be counted, so disagreement is
a possible, honest outcome, reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments._scaling_train import POINT, corpus_tokens, split_three
from piami.lab import Comparison, Experiment, Result, register

register(POINT)  # the unit the sweep runs (discovered with this module)


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # seeds the statistics bootstrap and every training run
    source: str = "shakespeare"  # 'shakespeare', a text file, or a folder of .txt
    tokenizer: str = "char"  # 'char', 'byte', 'bpe' or 'bpe:N'
    max_chars: int | None = 2_000_000  # characters of the source used (None: all)
    test_tokens: int = 100_000  # validation and test parts (each), taken from the end
    n_max_lag: int = 256  # largest lag of the correlation profile
    n_lags: int = 16  # log-spaced lags measured
    n_max_entropy: int = 8  # largest context length of H_n
    p_min: int = 10_000  # smallest training set (tokens)
    p_max: int = 1_000_000  # largest training set (tokens)
    n_sizes: int = 6  # log-spaced training-set sizes between p_min and p_max
    n_ctx: int = 64  # transformer context
    n_layers: int = 2  # transformer blocks
    d_model: int = 64  # residual width
    d_mlp: int = 256  # MLP width
    n_steps: int = 1500  # longest schedule per run (early stopping usually ends sooner)
    batch_size: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate
    eval_every: int = 50  # steps between validation evaluations
    n_boot: int = 200  # bootstrap replicates of every fit
    store: str = "out/runs"  # run store of the sweep (finished points are reused)
    workers: int = 2  # sweep workers (1: in this process; each trains with one thread)
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

    def sizes(self) -> list[int]:
        """The training-set sizes, log-spaced and distinct."""
        s = np.unique(np.round(np.geomspace(self.p_min, self.p_max, self.n_sizes)).astype(int))
        return [int(v) for v in s]


def run(cfg: Config, *, progress: bool = True) -> Result:
    from piami.experiments._scaling_plots import (
        plot_collapse,
        plot_correlations,
        plot_entropies,
        plot_learning_curve,
    )
    from piami.instruments.exponents import measure_statistics
    from piami.instruments.scaling import PowerLawFit
    from piami.runs import sweep

    rng = np.random.default_rng(cfg.seed)
    result = Result(
        experiment="",
        config={},
        seed=cfg.seed,
        description=(
            "Measure the correlation-decay exponent beta and the entropy exponent gamma of a "
            "corpus, predict the data-limited exponent alpha_D = gamma/(2 beta) (Cagnetta, "
            "Raventos, Ganguli and Wyart 2026), then train transformers on log-spaced training "
            "sizes P (early-stopped) and fit the measured alpha_D from L(P) = E + A P^-alpha."
        ),
    )
    # ---- statistics of the training part only (the test part stays unseen)
    ids, vocab = corpus_tokens(cfg.source, cfg.tokenizer, cfg.max_chars)
    train_ids, _, _ = split_three(ids, cfg.test_tokens)
    if cfg.p_max > train_ids.size:
        raise PiamiValueError(
            f"p_max={cfg.p_max} exceeds the {train_ids.size} training tokens; raise max_chars"
        )
    stats = measure_statistics(
        train_ids,
        n_vocab=vocab,
        n_max_lag=cfg.n_max_lag,
        n_lags=cfg.n_lags,
        n_max_entropy=cfg.n_max_entropy,
        n_boot=cfg.n_boot,
        rng=rng,
        progress=progress,
    )
    beta, gamma = stats["beta"], stats["gamma"]
    ok_stats = not isinstance(beta, str) and not isinstance(gamma, str)
    result.metrics.update(
        n_tokens=int(ids.size),
        n_train_tokens_total=int(train_ids.size),
        vocab_size=vocab,
        beta=None if isinstance(beta, str) else beta.to_dict(),
        gamma=None if isinstance(gamma, str) else gamma.to_dict(),
        alpha_d_predicted=stats["alpha_d"],
        alpha_d_predicted_ci=list(stats["alpha_d_ci"]),
        correlations=stats["correlations"].to_dict(),
        entropies=stats["entropies"].to_dict(),
    )
    if isinstance(beta, str):
        result.metrics["beta_error"] = beta
    if isinstance(gamma, str):
        result.metrics["gamma_error"] = gamma
    result.add_figure(
        "correlations",
        plot_correlations(stats["correlations"], beta),
        "||C(n)|| and its shuffle noise floor; red: power law fitted above 3x the floor.",
    )
    result.add_figure(
        "entropies",
        plot_entropies(stats["entropies"], gamma),
        "H_n by plug-in, Miller-Madow and NSB; grey: orders whose counts are too sparse to trust.",
    )
    # ---- learning curve through the sweep runner
    sizes = cfg.sizes()
    base = {
        "source": cfg.source,
        "tokenizer": cfg.tokenizer,
        "max_chars": cfg.max_chars,
        "test_tokens": cfg.test_tokens,
        "n_ctx": cfg.n_ctx,
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "d_mlp": cfg.d_mlp,
        "n_steps": cfg.n_steps,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "eval_every": cfg.eval_every,
        "device": cfg.device,
        "seed": cfg.seed,
    }
    sw = sweep(
        POINT.name,
        base,
        grid={"n_train_tokens": sizes},
        out=cfg.store,
        workers=cfg.workers,
        progress=progress,
    )
    points = sorted((r.metrics for r in sw.results()), key=lambda m: m["n_train_tokens"])
    result.metrics["sweep"] = {"store": str(sw.out), "run_ids": sw.run_ids, "failed": sw.n_failed}
    P = np.array([m["n_train_tokens"] for m in points], float)
    loss = np.array([m["test_loss"] for m in points], float)
    by_pos = np.array([m["loss_by_position"] for m in points], float)
    result.metrics["learning_curve"] = {
        "P": P.tolist(),
        "test_loss": loss.tolist(),
        "best_step": [m["best_step"] for m in points],
        "stopped_early": [m["stopped_early"] for m in points],
    }
    measured = None
    if P.size >= 4:
        measured = PowerLawFit(
            offset=True, n_boot=cfg.n_boot, offset_bounds=(0.0, float(loss.min()))
        ).fit(P, loss, rng=rng)
        result.metrics["alpha_d_measured"] = measured.alpha_
        result.metrics["alpha_d_measured_ci"] = list(measured.ci_["alpha"])
        result.metrics["loss_fit"] = {
            "E": measured.E_,
            "A": measured.A_,
            "at_bound": measured.at_bound_,
        }
    pred = stats["alpha_d"] if ok_stats else None
    result.add_figure(
        "learning_curve",
        plot_learning_curve(
            P,
            loss,
            measured,
            h_inf=gamma.offset if ok_stats else None,
            predicted_alpha=pred,
        ),
        "Test loss against training tokens P; red: fitted E + A P^-alpha; green: predicted slope.",
    )
    if ok_stats and P.size:
        result.add_figure(
            "collapse",
            plot_collapse(P, by_pos, h_inf=gamma.offset, gamma=gamma.value, beta=beta.value),
            "Loss at context n, rescaled: (L_n - H_inf) n^gamma against P / n^(2 beta).",
        )
    # ---- the comparison
    if measured is not None and measured.at_bound_:
        result.metrics["alpha_d_measured_note"] = (
            "the learning-curve fit ended on a bound (exponent at its limit, or a flat curve): it "
            "resolves no power law over these P; no comparison is made"
        )
    if pred is not None and measured is not None and not measured.at_bound_:
        hw_p = _half_width(stats["alpha_d_ci"])
        hw_m = _half_width(measured.ci_["alpha"])
        tol = math.sqrt(hw_p**2 + hw_m**2) if np.isfinite(hw_p + hw_m) else 0.0
        note = (
            f"tolerance = root-sum-square of the 95% interval half-widths (predicted "
            f"[{stats['alpha_d_ci'][0]:.3f}, {stats['alpha_d_ci'][1]:.3f}], measured "
            f"[{measured.ci_['alpha'][0]:.3f}, {measured.ci_['alpha'][1]:.3f}])."
        )
        if gamma.offset_at_bound:
            note += " The gamma fit put H_inf on its bound (0): read the prediction with care."
        result.comparisons.append(
            Comparison(
                name="alpha_D: gamma/(2 beta) from statistics vs learning-curve fit",
                predicted=pred,
                measured=measured.alpha_,
                tolerance=tol,
                unit="",
                reference="Cagnetta, Raventos, Ganguli & Wyart 2026, alpha_D = gamma/(2 beta)",
                note=note,
            )
        )
    else:
        why = (
            result.metrics.get("beta_error")
            or result.metrics.get("gamma_error")
            or result.metrics.get("alpha_d_measured_note")
            or "fewer than 4 learning-curve points finished"
        )
        if measured is not None:
            why += f" (fitted alpha {measured.alpha_:.3g}, E {measured.E_:.3g})"
        result.comparisons.append(
            Comparison(
                name="alpha_D: gamma/(2 beta) from statistics vs learning-curve fit",
                predicted=pred,
                measured=None,
                tolerance=0.0,
                note=f"cannot compare: {why}",
            )
        )
    return result


def _half_width(ci: tuple[float, float]) -> float:
    lo, hi = ci
    return (hi - lo) / 2.0 if np.isfinite(lo) and np.isfinite(hi) else float("nan")


EXPERIMENT = Experiment(
    name="scaling-from-statistics",
    config_cls=Config,
    run=run,
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
        "n_boot": 50,
        "workers": 1,
    },
    summary="predict alpha_D = gamma/(2 beta) from text statistics, then measure it by training",
)
