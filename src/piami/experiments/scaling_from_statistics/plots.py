"""Figures of the data statistics and the learning curves (the experiment and ``piami stats``).

:func:`plot_correlations` and :func:`plot_entropies` draw the statistics profiles of any token
array (``piami stats`` uses them); :func:`figures` draws the experiment's four figures from its
measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from piami.lab import FigureSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from piami.experiments.scaling_from_statistics.config import Config
    from piami.experiments.scaling_from_statistics.measure import ScalingMeasurements
    from piami.instruments.entropy import EntropyProfile
    from piami.instruments.exponents import ExponentFit
    from piami.instruments.scaling import PowerLawFit
    from piami.instruments.statistics import CorrelationProfile


def plot_correlations(
    corr: CorrelationProfile,
    beta: ExponentFit | str | None = None,
    *,
    shuffled: CorrelationProfile | None = None,
    title: str = "",
) -> Figure:
    """``||C(n)||`` against ``n`` (log-log) with the noise floor and the fitted power law.

    Args:
        corr: the correlation profile (Cagnetta et al. 2026: ``||C(n)|| ~ n**(-beta)``).
        beta: the fit of its decay (drawn in red), or the message of a fit that failed.
        shuffled: the profile of the same tokens in permuted order (a control), drawn in grey.
        title: the axes' title (default "token correlations").
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.loglog(corr.lags, corr.top_sv, "o-", label="top singular value")
    if shuffled is not None:
        ax.loglog(shuffled.lags, shuffled.top_sv, "x-", color="0.6", label="permuted tokens")
    ax.loglog(corr.lags, corr.frobenius, "s-", ms=3, alpha=0.6, label="Frobenius")
    ax.loglog(corr.lags, corr.floor_top_sv, "k--", lw=1, label=f"noise floor ({corr.floor_method})")
    ax.loglog(corr.lags, corr.floor_frobenius, "k:", lw=1)
    if beta is not None and hasattr(beta, "value"):
        xs = np.geomspace(beta.x.min(), beta.x.max(), 50)
        ax.loglog(
            xs,
            beta.amplitude * xs**-beta.value,
            "r-",
            lw=2,
            alpha=0.7,
            label=f"fit beta={beta.value:.2f} [{beta.ci[0]:.2f}, {beta.ci[1]:.2f}]",
        )
    ax.set_xlabel("lag n")
    ax.set_ylabel("||C(n)||")
    ax.set_title(title or "token correlations")
    ax.legend(fontsize=7)
    return fig


def plot_entropies(
    ent: EntropyProfile,
    gamma: ExponentFit | str | None = None,
    *,
    model: tuple[np.ndarray, np.ndarray, float] | None = None,
    model_gamma: ExponentFit | str | None = None,
    title: str = "",
) -> Figure:
    """``H_n`` (nats) by the three estimators, sparse orders marked, and the fitted laws.

    Args:
        ent: an :class:`~piami.instruments.entropy.EntropyProfile` (n-gram counts).
        gamma: the fit on the counts (an ExponentFit), or an error message.
        model: ``(n, L_n, P)``: a trained model's test loss at each context length.
        model_gamma: the fit of ``L_n`` (an ExponentFit), or an error message.
        title: the axes' title (default "conditional entropies").
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, mark in (("plugin", "v"), ("miller_madow", "^"), ("nsb", "o")):
        ax.plot(ent.n, ent.get(name), mark + "-", ms=4, label=name)
    if ent.sparse.any():
        ax.axvspan(ent.n[ent.sparse].min() - 0.5, ent.n.max() + 0.5, color="0.9", label="sparse")
    for fit, style, what in ((gamma, "r-", "counts"), (model_gamma, "m-", "model")):
        if fit is not None and hasattr(fit, "value"):
            xs = np.linspace(fit.x.min(), fit.x.max(), 50)
            ax.plot(
                xs,
                fit.offset + fit.amplitude * xs**-fit.value,
                style,
                lw=2,
                alpha=0.7,
                label=f"{what}: gamma={fit.value:.2f}, H_inf={fit.offset:.2f}",
            )
    if model is not None:
        n, loss, P = model
        ax.plot(n, loss, "s", ms=3, color="k", alpha=0.6, label=f"model L_n at P={int(P)}")
    ax.set_xlabel("context length n")
    ax.set_ylabel("H_n (nats)")
    ax.set_title(title or "conditional entropies")
    ax.legend(fontsize=7)
    return fig


def plot_learning_curve(
    P: np.ndarray,
    loss: np.ndarray,
    fit: PowerLawFit | None = None,
    *,
    h_inf: float | None = None,
    predicted_alpha: float | None = None,
) -> Figure:
    """Held-out loss against training tokens P, with the fitted ``E + A P**(-alpha)``.

    Args:
        P: ``(n_points,)`` training tokens.
        loss: ``(n_points,)`` test loss (nats/token).
        fit: the fit of ``loss`` against ``P`` (drawn in red).
        h_inf: an entropy rate to draw as a horizontal line (nats).
        predicted_alpha: the predicted ``alpha_D = gamma / (2 beta)`` (Cagnetta et al. 2026),
            drawn through the middle point with the fit's offset.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    P = np.asarray(P, float)
    loss = np.asarray(loss, float)
    ax.semilogx(P, loss, "o", label="test loss, context >= n_ctx/2 (early-stopped)")
    xs = np.geomspace(P.min(), P.max(), 60)
    if fit is not None:
        ax.semilogx(
            xs,
            fit.predict(xs),
            "r-",
            label=f"fit alpha_D={fit.alpha_:.3f} [{fit.ci_['alpha'][0]:.3f}, "
            f"{fit.ci_['alpha'][1]:.3f}]",
        )
        if predicted_alpha is not None and np.isfinite(predicted_alpha):
            # the predicted slope through the middle point, same offset as the fit
            k = len(P) // 2
            a = (loss[k] - fit.E_) * P[k] ** predicted_alpha
            ax.semilogx(
                xs,
                fit.E_ + a * xs**-predicted_alpha,
                "g--",
                label=f"predicted {predicted_alpha:.3f}",
            )
    if h_inf is not None and np.isfinite(h_inf):
        ax.axhline(h_inf, color="k", lw=0.8, ls=":", label=f"H_inf {h_inf:.2f}")
    ax.set_xlabel("training tokens P")
    ax.set_ylabel("test loss (nats/token)")
    ax.legend(fontsize=7)
    return fig


def plot_collapse(
    P: np.ndarray,
    loss_by_pos: np.ndarray,
    *,
    h_inf: float,
    gamma: float,
    beta: float,
    positions: np.ndarray | None = None,
) -> Figure:
    """``(L_n(P) - H_inf) n**gamma`` against ``P / n**(2 beta)`` for several context lengths n.

    The collapse of Cagnetta et al. (2026): with the right exponents, the curves of every ``n``
    fall on one. ``loss_by_pos`` is ``(n_P, n_ctx)``: column ``t`` has context ``t + 1``.
    """
    import matplotlib.pyplot as plt

    from piami.theory.scaling import collapse

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    loss_by_pos = np.asarray(loss_by_pos, float)  # (n_P, n_ctx): position t has context t + 1
    n_ctx = loss_by_pos.shape[1]
    if positions is None:
        positions = np.unique(np.round(np.geomspace(1, n_ctx, 6)).astype(int))
    cmap = plt.get_cmap("viridis")
    for k, n in enumerate(positions):
        x, y = collapse(loss_by_pos[:, n - 1], n, P, h_inf=h_inf, gamma=gamma, beta=beta)
        ax.loglog(
            x,
            np.where(y > 0, y, np.nan),
            "o-",
            ms=3,
            color=cmap(k / len(positions)),
            label=f"n={n}",
        )
    ax.set_xlabel("P / n^(2 beta)")
    ax.set_ylabel("(L_n - H_inf) n^gamma")
    ax.set_title(f"collapse (gamma={gamma:.2f}, beta={beta:.2f})")
    ax.legend(fontsize=7, ncol=2)
    return fig


def figures(cfg: Config, m: ScalingMeasurements) -> list[FigureSpec]:
    """Correlations, entropies, the learning curve and the collapse (when both exponents exist)."""
    curve, beta, gamma = m.curve, m.beta, m.gamma
    out = [
        FigureSpec(
            name="correlations",
            figure=plot_correlations(m.correlations, beta, shuffled=m.shuffled),
            caption="||C(n)|| and its shuffle noise floor; red: power law fitted above 3x the "
            "floor; grey: the same corpus with its token order permuted (control).",
        )
    ]
    model = None if not curve.P.size else (curve.n, curve.by_pos[-1], curve.P[-1])
    out.append(
        FigureSpec(
            name="entropies",
            figure=plot_entropies(m.entropies, m.gamma_ngram, model=model, model_gamma=gamma),
            caption="H_n from n-gram counts (plug-in, Miller-Madow, NSB; grey: orders too sparse "
            "to trust) and the n-gram loss L_n of the model trained on the most data, with the "
            "gamma fit.",
        )
    )
    if curve.P.size:
        fig = plot_learning_curve(
            curve.P, curve.loss, curve.fit, predicted_alpha=m.alpha_d_predicted
        )
        caption = (
            "Test loss (context >= n_ctx/2) against training tokens P; red: fitted "
            "E + A P^-alpha; green: predicted slope."
        )
        out.append(FigureSpec(name="learning_curve", figure=fig, caption=caption))
    if not isinstance(gamma, str) and not isinstance(beta, str) and curve.P.size:
        fig = plot_collapse(
            curve.P, curve.by_pos, h_inf=gamma.offset, gamma=gamma.value, beta=beta.value
        )
        caption = "Loss at context n, rescaled: (L_n - H_inf) n^gamma against P / n^(2 beta)."
        out.append(FigureSpec(name="collapse", figure=fig, caption=caption))
    return out
