"""Exponents of the data: ``beta`` from the correlation decay, ``gamma`` from the entropy profile.

Cagnetta, Raventos, Ganguli and Wyart (2026): ``||C(n)|| ~ n**(-beta)`` and
``H_n - H_inf ~ n**(-gamma)`` predict the data-limited exponent ``alpha_D = gamma / (2 beta)``
(:mod:`piami.theory.scaling`). The fits use :class:`~piami.instruments.scaling.PowerLawFit`;
intervals are bootstrap percentiles, and ``alpha_D``'s interval pairs the bootstrap draws of the two
exponents.

``H_n`` has two estimators here:

* from n-gram counts (:func:`fit_gamma`, on an :class:`EntropyProfile`): exact in the limit of
  many tokens, but a corpus of ``N`` tokens only resolves orders whose ``V**n`` cells are not
  sparse, a handful for characters, too few to see where ``H_n`` levels off;
* from a trained model (:func:`fit_gamma_from_losses`), with the n-gram losses that Cagnetta et
  al. work with: the test loss at context ``n`` of the model trained on the most data,
  ``L_n(P_max)``, an upper bound on ``H_n`` (a cross-entropy) that the theory puts at ``H_n`` for
  every ``n`` the model resolves, ``n <= n*(P_max)`` (:func:`resolvable_lag`), and flat beyond.

:func:`calibrate_beta_on_rhm` measures ``beta`` on a Random Hierarchy Model, whose correlations
are known exactly, with the same estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments.entropy import EntropyProfile
from piami.instruments.scaling import PowerLawFit, _interval
from piami.instruments.statistics import CorrelationProfile, lagged_correlations


@dataclass(frozen=True, kw_only=True)
class ExponentFit:
    """A fitted exponent with its interval and the points used."""

    value: float  # point estimate
    ci: tuple[float, float]  # bootstrap percentile interval
    x: np.ndarray  # abscissae used (lags or context lengths)
    y: np.ndarray  # ordinates used
    amplitude: float  # A of the fit
    offset: float  # E of the fit (H_inf for gamma; 0 for beta)
    offset_ci: tuple[float, float]  # interval of the offset
    boot: np.ndarray  # bootstrap draws of the exponent
    at_bound: bool = False  # the exponent sits on a bound of the fit (not a real optimum)
    offset_at_bound: bool = False  # the offset (H_inf) sits on a bound, e.g. H_inf = 0

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "ci": list(self.ci),
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "amplitude": self.amplitude,
            "offset": self.offset,
            "offset_ci": list(self.offset_ci),
            "at_bound": self.at_bound,
            "offset_at_bound": self.offset_at_bound,
        }


def fit_beta(
    profile: CorrelationProfile,
    *,
    factor: float = 3.0,
    norm: str = "top_sv",
    lags: object = None,
    debias: bool = True,
    n_boot: int = 200,
    ci: float = 0.95,
    rng: np.random.Generator | None = None,
) -> ExponentFit:
    """``beta`` from ``||C(n)|| = A n**(-beta)`` on the lags above ``factor`` x the noise floor.

    Args:
        profile: a measured :class:`CorrelationProfile`.
        factor: keep lags whose strength exceeds ``factor`` times the floor.
        norm: ``"top_sv"`` or ``"frobenius"``.
        lags: restrict the fit to these lags (e.g. one per level of a hierarchy).
        debias: for the Frobenius norm, subtract the floor in quadrature,
            ``sqrt(||C||_F**2 - floor**2)`` (sampling noise is independent of the signal).
        n_boot: bootstrap resamples.
        ci: confidence level of the interval.
        rng: generator (or seed) for the bootstrap.
    """
    if not isinstance(profile, CorrelationProfile):
        raise PiamiTypeError(f"fit_beta takes a CorrelationProfile, got {type(profile).__name__}")
    if norm not in ("top_sv", "frobenius"):
        raise PiamiValueError(f"norm must be 'top_sv' or 'frobenius', got {norm!r}")
    strength = profile.top_sv if norm == "top_sv" else profile.frobenius
    if norm == "frobenius" and debias:  # noise adds in quadrature to the Frobenius norm
        strength = np.sqrt(np.maximum(strength**2 - profile.floor_frobenius**2, 0.0))
    keep = profile.above_floor(factor, norm=norm)
    if lags is not None:
        keep &= np.isin(profile.lags, np.asarray(lags))
    if keep.sum() < 3:
        raise PiamiValueError(
            f"only {int(keep.sum())} lags have ||C(n)|| above {factor} x the noise floor; need 3. "
            "Use more tokens, smaller lags, or a lower factor"
        )
    x, y = profile.lags[keep].astype(np.float64), strength[keep]
    seed = 0 if rng is None else rng  # rng=None meant the fixed seed 0 before random_state
    fit = PowerLawFit(offset=False, n_boot=n_boot, ci=ci, random_state=seed).fit(x, y)
    return ExponentFit(
        value=fit.alpha_,
        ci=fit.ci_["alpha"],
        x=x,
        y=y,
        amplitude=fit.A_,
        offset=0.0,
        offset_ci=(0.0, 0.0),
        boot=fit.boot_[:, 2],
        at_bound=fit.at_bound_,
        offset_at_bound=fit.offset_at_bound_,
    )


def fit_gamma(
    profile: EntropyProfile,
    *,
    estimator: str = "nsb",
    n_min: int = 1,
    include_sparse: bool = False,
    n_boot: int = 200,
    ci: float = 0.95,
    rng: np.random.Generator | None = None,
) -> ExponentFit:
    """``gamma`` and ``H_inf`` from ``H_n = H_inf + A n**(-gamma)`` on the trusted orders.

    Args:
        profile: a measured :class:`EntropyProfile`.
        estimator: ``"plugin"``, ``"miller_madow"`` or ``"nsb"``.
        n_min: smallest context length used (``H_0`` is the unigram entropy, outside the law).
        include_sparse: also fit the orders flagged sparse (not recommended).
    """
    if not isinstance(profile, EntropyProfile):
        raise PiamiTypeError(f"fit_gamma takes an EntropyProfile, got {type(profile).__name__}")
    h = profile.get(estimator)
    keep = (profile.n >= max(n_min, 1)) & np.isfinite(h)
    if not include_sparse:
        keep &= ~profile.sparse
    if keep.sum() < 4:
        raise PiamiValueError(
            f"only {int(keep.sum())} trusted orders n >= {n_min} (not sparse); a fit with offset "
            "needs 4. Use more tokens, a smaller vocabulary, or include_sparse=True"
        )
    x, y = profile.n[keep].astype(np.float64), h[keep]
    # H_inf lies in [0, min H_n]: H_n never increases with n and an entropy is >= 0
    fit = PowerLawFit(
        offset=True,
        n_boot=n_boot,
        ci=ci,
        offset_bounds=(0.0, float(y.min())),
        random_state=0 if rng is None else rng,
    ).fit(x, y)
    return ExponentFit(
        value=fit.alpha_,
        ci=fit.ci_["alpha"],
        x=x,
        y=y,
        amplitude=fit.A_,
        offset=fit.E_,
        offset_ci=fit.ci_["E"],
        boot=fit.boot_[:, 2],
        at_bound=fit.at_bound_,
        offset_at_bound=fit.offset_at_bound_,
    )


def fit_gamma_from_losses(
    n: object,
    loss: object,
    *,
    n_max: int | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    rng: np.random.Generator | None = None,
) -> ExponentFit:
    """``gamma`` and ``H_inf`` from a model's test loss at each context length, ``L_n``.

    The n-gram loss ``L_n`` (Cagnetta, Raventos, Ganguli and Wyart 2026, eq. 2: the test loss
    with ``n`` tokens of context) of the model trained on the most data stands in for ``H_n``: a
    cross-entropy bounds ``H_n`` from above and, in their theory, reaches it for the context
    lengths the model resolves. The law ``L_n = H_inf + A n**(-gamma)`` is fitted on
    ``1 <= n <= n_max``, with ``H_inf`` in ``[0, min L_n]``.

    Args:
        n: context lengths (ints >= 1), e.g. ``1..n_ctx``.
        loss: ``L_n`` (nats) at those lengths.
        n_max: largest context length fitted, e.g. :func:`resolvable_lag` at the model's ``P``
            (beyond it the theory has the loss flat at ``H_{n*}``, not ``H_n``).
        n_boot: bootstrap resamples.
        ci: confidence level of the interval.
        rng: generator (or seed) for the bootstrap.
    """
    x = np.asarray(n, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise PiamiValueError(f"n and loss must be 1-D of equal length, got {x.shape}, {y.shape}")
    keep = (x >= 1) & np.isfinite(y)
    if n_max is not None:
        keep &= x <= n_max
    if keep.sum() < 4:
        raise PiamiValueError(
            f"only {int(keep.sum())} context lengths in [1, {n_max}] to fit L_n = H_inf + A "
            "n**(-gamma); a fit with offset needs 4. Use a longer context or a larger P_max"
        )
    x, y = x[keep], y[keep]
    fit = PowerLawFit(
        offset=True,
        n_boot=n_boot,
        ci=ci,
        offset_bounds=(0.0, float(y.min())),
        random_state=0 if rng is None else rng,
    ).fit(x, y)
    return ExponentFit(
        value=fit.alpha_,
        ci=fit.ci_["alpha"],
        x=x,
        y=y,
        amplitude=fit.A_,
        offset=fit.E_,
        offset_ci=fit.ci_["E"],
        boot=fit.boot_[:, 2],
        at_bound=fit.at_bound_,
        offset_at_bound=fit.offset_at_bound_,
    )


def resolvable_lag(
    profile: CorrelationProfile, n_tokens: float, *, factor: float = 3.0, norm: str = "top_sv"
) -> int:
    """Largest lag resolvable from ``n_tokens`` tokens: ``n*(P)`` of Cagnetta et al. (2026, eq. 4).

    The noise floor of ``||C(n)||`` falls as ``N**(-1/2)`` with the number ``N`` of pairs, so the
    floor measured on ``profile.n_pairs`` pairs is rescaled to ``n_tokens``; ``n*`` is the last lag
    of the run, from the first measured lag on, that stays above ``factor`` times that floor
    (0 when the first lag is already below it).
    """
    if not isinstance(profile, CorrelationProfile):
        raise PiamiTypeError(f"resolvable_lag takes a CorrelationProfile, got {type(profile)}")
    if not (np.isfinite(n_tokens) and n_tokens > 0):
        raise PiamiValueError(f"n_tokens must be > 0, got {n_tokens!r}")
    if norm not in ("top_sv", "frobenius"):
        raise PiamiValueError(f"norm must be 'top_sv' or 'frobenius', got {norm!r}")
    s = profile.top_sv if norm == "top_sv" else profile.frobenius
    f = profile.floor_top_sv if norm == "top_sv" else profile.floor_frobenius
    above = s > factor * f * np.sqrt(profile.n_pairs / float(n_tokens))
    run = np.cumprod(above).astype(bool)  # True up to the first lag below the floor
    return int(profile.lags[run].max()) if run.any() else 0


def calibrate_beta_on_rhm(
    rhm: object, n_seqs: int, *, n_boot: int = 200, rng: np.random.Generator
) -> tuple[ExponentFit, float]:
    """``beta`` measured on sampled RHM data, and the exact ``beta`` of the same grammar.

    The grammar's correlations between the last token and its ``n``-th predecessor are exact
    (:meth:`~piami.processes.rhm.RandomHierarchyModel.exact_correlation`); their top singular
    values at the lags the sampled fit used give the ground truth slope. ``ln m / ln s`` is the
    asymptotic law (Cagnetta and Wyart 2024); a grammar with a small vocabulary departs from it.

    Returns:
        ``(fit, beta_exact)``: the sampled fit (:func:`fit_beta`, top singular value, lags one
        per level, ``anchor="last"``) and the slope of the exact norms at the same lags.
    """
    lags = rhm.level_lags()
    tokens = rhm.sample(n_seqs, rng=rng)
    prof = lagged_correlations(tokens, lags, n_vocab=rhm.v, anchor="last", rng=rng)
    fit = fit_beta(prof, lags=lags, n_boot=n_boot, rng=rng)
    exact = [np.linalg.norm(rhm.exact_correlation(int(k), anchor="last"), 2) for k in fit.x]
    slope = np.polyfit(np.log(fit.x), np.log(exact), 1)[0]
    return fit, float(-slope)


def predict_alpha_d(
    gamma: ExponentFit, beta: ExponentFit, *, ci: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """``alpha_D = gamma / (2 beta)`` with the interval from the paired bootstrap draws."""
    from piami.theory.scaling import alpha_d

    value = alpha_d(gamma.value, beta.value)
    k = min(gamma.boot.size, beta.boot.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = gamma.boot[:k] / (2.0 * beta.boot[:k])
    draws = draws[np.isfinite(draws) & (draws > 0)]
    return value, _interval(draws, ci)


def measure_statistics(
    tokens: object,
    *,
    n_vocab: int | None = None,
    n_max_lag: int = 256,
    n_lags: int = 16,
    lags: object = None,
    anchor: str | None = None,
    n_max_entropy: int = 8,
    estimator: str = "nsb",
    include_sparse: bool = False,
    norm: str = "top_sv",
    factor: float = 3.0,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
    progress: bool = False,
) -> dict:
    """Correlation decay, entropy profile, ``beta``, ``gamma`` and the predicted ``alpha_D``.

    Returns:
        dict with ``"correlations"`` (:class:`CorrelationProfile`), ``"entropies"``
        (:class:`EntropyProfile`), ``"beta"``, ``"gamma"`` (:class:`ExponentFit` or the error
        message when a fit cannot be made), ``"alpha_d"`` and ``"alpha_d_ci"`` (NaN when either
        exponent is missing or not positive: alpha_D is defined for decaying laws only).
    """
    from piami.instruments.entropy import conditional_entropies

    if rng is None:
        rng = np.random.default_rng(0)
    corr = lagged_correlations(
        tokens,
        lags,
        n_vocab=n_vocab,
        n_max=n_max_lag,
        n_lags=n_lags,
        anchor=anchor,
        rng=rng,
        progress=progress,
    )
    ent = conditional_entropies(tokens, n_max_entropy, n_vocab=n_vocab, progress=progress)
    out: dict = {"correlations": corr, "entropies": ent}
    try:
        out["beta"] = fit_beta(corr, factor=factor, norm=norm, n_boot=n_boot, rng=rng)
    except PiamiValueError as exc:
        out["beta"] = str(exc)
    try:
        out["gamma"] = fit_gamma(
            ent, estimator=estimator, include_sparse=include_sparse, n_boot=n_boot, rng=rng
        )
    except PiamiValueError as exc:
        out["gamma"] = str(exc)
    if (
        isinstance(out["beta"], ExponentFit)
        and isinstance(out["gamma"], ExponentFit)
        and out["beta"].value > 0
        and out["gamma"].value > 0
    ):
        out["alpha_d"], out["alpha_d_ci"] = predict_alpha_d(out["gamma"], out["beta"])
    else:
        out["alpha_d"], out["alpha_d_ci"] = float("nan"), (float("nan"), float("nan"))
    return out


def statistics_to_dict(stats: dict) -> dict:
    """JSON-ready form of :func:`measure_statistics`' output."""
    d = {}
    for k, v in stats.items():
        d[k] = v.to_dict() if hasattr(v, "to_dict") else v
    return d
