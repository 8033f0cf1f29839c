"""The comparison rows of ``scaling-from-statistics`` and the bars they are judged against.

Every bar is a module constant, fixed before any run of this version and never set from a config:
a user cannot widen a tolerance until a row passes. :func:`compare` is a pure function of the
measurements (no training, no sampling); the rows:

* prediction: ``alpha_D = gamma / (2 beta)`` (Cagnetta, Raventos, Ganguli and Wyart 2026) within
  :data:`TOLERANCE` of the learning curve's exponent; not identified when a fit is missing or on a
  bound, or a 95% interval is wider than the tolerance band;
* control: the model at the largest ``P`` gains :data:`MIN_CONTEXT_GAIN` nats over the unigram
  predictor;
* control: a token-order permutation leaves no lag above :data:`FLOOR_FACTOR` times the noise floor;
* sanity: the beta instrument on a Random Hierarchy Model within :data:`BETA_TOLERANCE` of the
  slope of its exact correlations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from piami.experiments.scaling_from_statistics.config import FLOOR_FACTOR, Config
from piami.lab import Comparison

if TYPE_CHECKING:
    from piami.experiments.scaling_from_statistics.measure import ScalingMeasurements

REFERENCE = "Cagnetta, Raventos, Ganguli & Wyart 2026, alpha_D = gamma/(2 beta)"
#: Relative tolerance of the alpha_D row; an interval wider than the band it spans does not decide.
TOLERANCE = 0.25
#: Nats the model at the largest P must gain over the unigram predictor.
MIN_CONTEXT_GAIN = 0.1
#: Relative tolerance of the beta instrument on the RHM.
BETA_TOLERANCE = 0.1


def compare(cfg: Config, m: ScalingMeasurements) -> list[Comparison]:
    """The four rows of the experiment, from its measurements alone."""
    return [prediction_row(m), context_gain_row(m), shuffled_corpus_row(m), calibration_row(m)]


def _finite_pair(ci: Iterable[float] | None) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = (float(v) for v in ci)
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _why_not_identified(m: ScalingMeasurements) -> list[str]:
    """Reasons the alpha_D row cannot be decided (empty when it can)."""
    why = []
    beta, gamma, fit = m.beta, m.gamma, m.curve.fit
    if isinstance(beta, str):
        why.append(f"beta not measured: {beta}")
    elif beta.at_bound:
        why.append(f"the beta fit ends on a bound of its exponent ({beta.value:.3g})")
    if isinstance(gamma, str):
        why.append(f"gamma not measured: {gamma}")
    elif gamma.offset_at_bound:
        why.append(f"the gamma fit puts H_inf on a bound of [0, min L_n] ({gamma.offset:.3g} nats)")
    elif gamma.at_bound:  # (at_bound is also set by H_inf on its upper bound)
        why.append(f"the gamma fit ends on a bound of its exponent ({gamma.value:.3g})")
    if fit is None:
        why.append(f"{m.curve.P.size} learning-curve points finished; the fit needs 4")
    elif fit.at_bound_ or fit.offset_at_bound_:
        why.append(
            f"the learning-curve fit ends on a bound (alpha {fit.alpha_:.3g}, E {fit.E_:.3g} "
            "nats in [0, min L]): it resolves no power law over these P"
        )
    if m.alpha_d_predicted_error:
        why.append(f"no prediction: {m.alpha_d_predicted_error}")
    return why


def _prediction_note(m: ScalingMeasurements) -> str:
    parts = []
    if not isinstance(m.beta, str):
        parts.append(f"beta {m.beta.value:.3f}")
    if not isinstance(m.gamma, str):
        parts.append(
            f"gamma {m.gamma.value:.3f} and H_inf {m.gamma.offset:.3f} nats from L_n(P_max) on "
            f"n = 1..{int(m.gamma.x.max())} (n* at P_max)"
        )
    if m.curve.fit is not None:
        parts.append(f"learning-curve E {m.curve.fit.E_:.3f} nats")
    return "; ".join(parts) + (
        ". A 95% interval wider than the tolerance band (2 x 25% of the prediction) cannot "
        "place the exponent inside or outside it and leaves the row not identified."
    )


def prediction_row(m: ScalingMeasurements) -> Comparison:
    """alpha_D predicted from beta and gamma against the learning curve's exponent."""
    fit = m.curve.fit
    why = _why_not_identified(m)
    pred = m.alpha_d_predicted
    pred_ci = _finite_pair(m.alpha_d_predicted_ci)
    meas = None if fit is None else fit.alpha_
    meas_ci = None if fit is None else _finite_pair(fit.ci_["alpha"])
    cap = None
    if pred is not None and math.isfinite(pred) and pred != 0:
        cap = 2 * TOLERANCE * abs(pred)  # the width of the tolerance band itself
    for what, value, ci in (("predicted", pred, pred_ci), ("measured", meas, meas_ci)):
        if ci is None and value is not None:
            why.append(f"no finite 95% interval of the {what} alpha_D")
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
        note=_prediction_note(m),
    )


def context_gain_row(m: ScalingMeasurements) -> Comparison:
    """Control: the model trained on the most data beats the unigram predictor.

    ``H_0 - H_1`` of the n-gram profile (NSB) is shown in the note: what one token of context is
    worth in this text.
    """
    source = (
        "a priori: 0.1 nats, ten times the ~0.01 nats by which a context-free model's test loss "
        "can fall below the unigram predictor's, and far below what one token of context is "
        "worth in text (H_0 - H_1 of the n-gram profile, in the note)"
    )
    row = {
        "name": "context gain of the model at the largest P over the unigram predictor",
        "kind": "control",
        "predicted": MIN_CONTEXT_GAIN,
        "tolerance": 0.0,
        "sense": "at_least",
        "unit": "nats",
        "tolerance_source": source,
    }
    curve = m.curve
    if not curve.P.size:
        return Comparison(**row, measured=None, not_identified="no training point finished")
    nsb = m.entropies.nsb
    h01 = float(nsb[0] - nsb[1]) if np.isfinite(nsb[:2]).all() else None
    uni, loss = float(curve.unigram_loss[-1]), float(curve.loss[-1])
    h01_note = "" if h01 is None else f"; H_0 - H_1 from n-gram counts {h01:.3f} nats"
    return Comparison(
        **row,
        measured=uni - loss,
        note=(
            f"P = {int(curve.P[-1])}: unigram test loss {uni:.3f} nats, model {loss:.3f} "
            f"nats (context >= n_ctx/2){h01_note}. An untrained, undertrained or context-blind "
            "model (shuffle_train=true) gains about 0."
        ),
    )


def shuffled_corpus_row(m: ScalingMeasurements) -> Comparison:
    """Control: a token-order permutation leaves no lag above the noise floor."""
    shuffled = m.shuffled
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


def calibration_row(m: ScalingMeasurements) -> Comparison:
    """Sanity: the beta instrument on an RHM against its exact correlations."""
    row = {
        "name": "beta instrument on a Random Hierarchy Model vs its exact correlations",
        "kind": "sanity",
        "predicted": m.rhm_beta_exact,
        "tolerance": BETA_TOLERANCE,
        "relative": True,
        "tolerance_source": (
            "a priori: beta must be right to 10% for alpha_D = gamma/(2 beta) to be decided at "
            "the 25% bar of the prediction row"
        ),
    }
    fit = m.rhm_beta
    if isinstance(fit, str):
        return Comparison(
            **row, measured=None, not_identified=f"no beta fit on the sampled RHM: {fit}"
        )
    return Comparison(
        **row,
        measured=fit.value,
        measured_interval=_finite_pair(fit.ci),
        reference="Cagnetta & Wyart 2024 (RHM correlations); exact: RandomHierarchyModel",
        note=(
            f"top singular value, last token and its n-th predecessor, lags "
            f"{[int(v) for v in fit.x]}; the exact slope at these lags is {m.rhm_beta_exact:.3f}, "
            f"the asymptotic ln m / ln s = {m.rhm_beta_asymptotic:.3f}"
        ),
    )
