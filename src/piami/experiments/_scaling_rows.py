"""The comparison rows of ``scaling-from-statistics`` and the bars they are judged against.

Every bar is a module constant, fixed before any run of this version and never set from a config:
a user cannot widen a tolerance until a row passes. See the experiment's module docstring for what
each row claims.
"""

from __future__ import annotations

import math

import numpy as np

from piami.lab import Comparison

REFERENCE = "Cagnetta, Raventos, Ganguli & Wyart 2026, alpha_D = gamma/(2 beta)"
#: Relative tolerance of the alpha_D row; an interval wider than the band it spans does not decide.
TOLERANCE = 0.25
#: Nats the model at the largest P must gain over the unigram predictor.
MIN_CONTEXT_GAIN = 0.1
#: Relative tolerance of the beta instrument on the RHM.
BETA_TOLERANCE = 0.1
#: Lags count as resolved above this multiple of the noise floor (beta fit, n*, control).
FLOOR_FACTOR = 3.0


def _finite_pair(ci) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = (float(v) for v in ci)
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _why_not_identified(stats: dict, gamma, fit, n_points: int) -> list[str]:
    """Reasons the alpha_D row cannot be decided (empty when it can)."""
    why = []
    beta = stats["beta"]
    if isinstance(beta, str):
        why.append(f"beta not measured: {beta}")
    elif beta.at_bound:
        why.append(f"the beta fit ends on a bound of its exponent ({beta.value:.3g})")
    if isinstance(gamma, str):
        why.append(f"gamma not measured: {gamma}")
    else:
        if gamma.offset_at_bound:
            why.append(
                f"the gamma fit puts H_inf on a bound of [0, min L_n] ({gamma.offset:.3g} nats)"
            )
        elif gamma.at_bound:  # (at_bound is also set by H_inf on its upper bound)
            why.append(f"the gamma fit ends on a bound of its exponent ({gamma.value:.3g})")
    if fit is None:
        why.append(f"{n_points} learning-curve points finished; the fit needs 4")
    elif fit.at_bound_ or fit.offset_at_bound_:
        why.append(
            f"the learning-curve fit ends on a bound (alpha {fit.alpha_:.3g}, E {fit.E_:.3g} "
            "nats in [0, min L]): it resolves no power law over these P"
        )
    return why


def prediction_row(stats: dict, gamma, curve: dict, metrics: dict) -> Comparison:
    """alpha_D predicted from beta and gamma against the learning curve's exponent."""
    fit = curve["fit"]
    why = _why_not_identified(stats, gamma, fit, len(curve["points"]))
    pred = metrics.get("alpha_d_predicted")
    if "alpha_d_predicted_error" in metrics:
        why.append(f"no prediction: {metrics['alpha_d_predicted_error']}")
    pred_ci = _finite_pair(metrics.get("alpha_d_predicted_ci"))
    meas = None if fit is None else fit.alpha_
    meas_ci = None if fit is None else _finite_pair(fit.ci_["alpha"])
    cap = None
    if pred is not None and math.isfinite(pred) and pred != 0:
        cap = 2 * TOLERANCE * abs(pred)  # the width of the tolerance band itself
    for what, ci in (("predicted", pred_ci), ("measured", meas_ci)):
        if ci is None and (pred if what == "predicted" else meas) is not None:
            why.append(f"no finite 95% interval of the {what} alpha_D")
    parts = []
    if not isinstance(stats["beta"], str):
        parts.append(f"beta {stats['beta'].value:.3f}")
    if not isinstance(gamma, str):
        parts.append(
            f"gamma {gamma.value:.3f} and H_inf {gamma.offset:.3f} nats from L_n(P_max) on "
            f"n = 1..{int(gamma.x.max())} (n* at P_max)"
        )
    if fit is not None:
        parts.append(f"learning-curve E {fit.E_:.3f} nats")
    return Comparison(
        name="alpha_D: gamma/(2 beta) from statistics vs learning-curve exponent",
        kind="prediction",
        predicted=pred,
        measured=meas,
        tolerance=TOLERANCE,
        relative=True,
        tolerance_source=(
            "a priori: 25% of the predicted alpha_D, fixed before any run of this version; the "
            "two corpora of Cagnetta et al. 2026 differ by 27% (alpha_D 0.185 and 0.141), so the "
            "bar tells one corpus's exponent from the other's"
        ),
        predicted_interval=pred_ci,
        measured_interval=meas_ci,
        max_interval_width=cap,
        not_identified="; ".join(why),
        reference=REFERENCE,
        note="; ".join(parts)
        + ". A 95% interval wider than the tolerance band (2 x 25% of the prediction) cannot "
        "place the exponent inside or outside it and leaves the row not identified.",
    )


def context_gain_row(curve: dict, h0_minus_h1: float | None) -> Comparison:
    """Control: the model trained on the most data beats the unigram predictor."""
    name = "context gain of the model at the largest P over the unigram predictor"
    source = (
        "a priori: 0.1 nats, ten times the ~0.01 nats by which a context-free model's test loss "
        "can fall below the unigram predictor's, and far below what one token of context is "
        "worth in text (H_0 - H_1 of the n-gram profile, in the note)"
    )
    if not curve["points"]:
        return Comparison(
            name=name,
            kind="control",
            predicted=MIN_CONTEXT_GAIN,
            measured=None,
            tolerance=0.0,
            sense="at_least",
            unit="nats",
            tolerance_source=source,
            not_identified="no training point finished",
        )
    top = curve["points"][-1]
    uni, loss = float(top["unigram_test_loss"]), float(curve["loss"][-1])
    h01 = "" if h0_minus_h1 is None else f"; H_0 - H_1 from n-gram counts {h0_minus_h1:.3f} nats"
    return Comparison(
        name=name,
        kind="control",
        predicted=MIN_CONTEXT_GAIN,
        measured=uni - loss,
        tolerance=0.0,
        sense="at_least",
        unit="nats",
        tolerance_source=source,
        note=(
            f"P = {top['n_train_tokens']}: unigram test loss {uni:.3f} nats, model {loss:.3f} "
            f"nats (context >= n_ctx/2){h01}. An untrained, undertrained or context-blind model "
            "(shuffle_train=true) gains about 0."
        ),
    )


def shuffled_corpus_row(shuffled) -> Comparison:
    """Control: a token-order permutation leaves no lag above the noise floor."""
    above = shuffled.above_floor(FLOOR_FACTOR)
    ratio = float(np.max(shuffled.top_sv / shuffled.floor_top_sv))
    return Comparison(
        name="permuted training tokens: lags with ||C(n)|| above 3x the noise floor",
        kind="control",
        predicted=0,
        measured=int(above.sum()),
        tolerance=0.0,
        sense="at_most",
        unit="lags",
        tolerance_source=(
            "derived: a permutation leaves C(n) pure sampling noise, which the rule that selects "
            "the lags of the beta fit (3x the noise floor) must reject at every lag"
        ),
        note=f"largest ||C(n)|| / floor over {shuffled.lags.size} lags: {ratio:.2f}",
    )


def calibration_row(fit, exact: float, asymptotic: float) -> Comparison:
    """Sanity: the beta instrument on an RHM against its exact correlations."""
    name = "beta instrument on a Random Hierarchy Model vs its exact correlations"
    source = (
        "a priori: beta must be right to 10% for alpha_D = gamma/(2 beta) to be decided at the "
        "25% bar of the prediction row"
    )
    if isinstance(fit, str):
        return Comparison(
            name=name,
            kind="sanity",
            predicted=exact,
            measured=None,
            tolerance=BETA_TOLERANCE,
            relative=True,
            tolerance_source=source,
            not_identified=f"no beta fit on the sampled RHM: {fit}",
        )
    return Comparison(
        name=name,
        kind="sanity",
        predicted=exact,
        measured=fit.value,
        tolerance=BETA_TOLERANCE,
        relative=True,
        tolerance_source=source,
        measured_interval=_finite_pair(fit.ci),
        reference="Cagnetta & Wyart 2024 (RHM correlations); exact: RandomHierarchyModel",
        note=(
            f"top singular value, last token and its n-th predecessor, lags "
            f"{[int(v) for v in fit.x]}; the exact slope at these lags is {exact:.3f}, the "
            f"asymptotic ln m / ln s = {asymptotic:.3f}"
        ),
    )
