"""The rows of the power-law-curves experiment: a pure function of the measured curves.

Pointwise test (every curve against a theory): at each size ``n``, ``d_n = |log(mean over seeds)
- log(theory)|`` against ``3 se_n + c/n`` (``se_n``: standard error of the log mean, ``c`` the
config's ``allowance``: the theory is exact up to ``O(1/n)``; random features add ``c/N``). The
row's value is the largest ratio ``d_n / (3 se_n + c/n)`` over the sizes; it passes at most 1.
A control theory must be rejected by the same test: its largest ratio at least 1.
"""

from __future__ import annotations

import math

import numpy as np

from piami.experiments.power_law_curves.config import Config
from piami.experiments.power_law_curves.measure import Curve, CurveMeasurements
from piami.lab import Comparison
from piami.theory import asymptotic_exponent

REF = (
    "Bordelon, Canatar & Pehlevan 2020; Simon et al. 2023 (eigenlearning); Spigler, Geiger & "
    "Wyart 2020 (exponent)"
)
REF_RF = "Maloney, Roberts & Sully 2022 (random features); piami.theory.random_features"
#: The trap's steepening must exceed this (on the fitted slope) to count as a trap.
TRAP_STEEPENING = 0.1


def deviation_ratio(c: Curve, reference: np.ndarray, allowance: np.ndarray) -> tuple[float, int]:
    """Largest ``|log(mean / reference)| / (3 se + allowance)`` over sizes, and its size."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.log(c.mean) - np.log(reference)) / (3 * c.log_se + allowance)
    d = np.where(np.isfinite(d), d, np.inf)
    i = int(np.argmax(d))
    return float(d[i]), int(c.n[i])


def _pointwise(c: Curve, cfg: Config, *, extra: float = 0.0) -> tuple[Comparison, Comparison]:
    """The pointwise prediction row and its control-theory row for one curve."""
    allow = cfg.allowance / c.n + extra
    ratio, worst = deviation_ratio(c, c.theory, allow)
    ctl, ctl_worst = deviation_ratio(c, c.control, allow)
    sizes = f"n = {int(c.n[0])}..{int(c.n[-1])}"
    rf = " + c/N" if extra else ""
    src = (
        f"measured noise: 3 standard errors of log(mean test MSE) over {c.test.shape[1]} seeds, "
        f"plus a finite-size allowance c/n{rf} with c = {cfg.allowance:g} fixed a priori "
        "(the theory is exact up to O(1/n))"
    )
    ref = REF_RF if c.role == "rf" else REF
    return (
        Comparison(
            name=f"{c.name}: test MSE against theory, largest deviation / allowance",
            kind="prediction",
            predicted=0.0,
            measured=ratio,
            tolerance=1.0,
            tolerance_source=src,
            sense="at_most",
            reference=ref,
            note=f"{sizes}, M = {c.n_modes}; worst at n = {worst}",
        ),
        Comparison(
            name=f"{c.name}: {c.control_name} rejected by the same test",
            kind="control",
            predicted=1.0,
            measured=ctl,
            tolerance=0.0,
            tolerance_source=src,
            sense="at_least",
            reference=ref,
            note=(
                f"{sizes}; largest ratio at n = {ctl_worst}: the test must tell the theories apart"
            ),
        ),
    )


def _exponent_rows(c: Curve, cfg: Config) -> list[Comparison]:
    alpha = asymptotic_exponent(c.a, c.b)
    other = 2 * c.a if c.b - 1 < 2 * c.a else c.b - 1
    bar = cfg.exponent_bar
    fit = f"n = {int(c.n[c.fit][0])}..{int(c.n[c.fit][-1])} <= M/{cfg.fit_fraction}"
    return [
        Comparison(
            name=f"{c.name}: fitted exponent against -min(b-1, 2a)",
            kind="prediction",
            predicted=-alpha,
            measured=c.slope,
            tolerance=bar,
            tolerance_source="a priori: the issue's bar ±0.05 on the exponent",
            measured_interval=c.slope_interval,
            max_interval_width=4 * bar,
            reference=REF,
            note=(
                f"slope of log(mean test MSE) on log n over {fit} (ridgeless, noiseless); "
                f"bootstrap s.d. {c.slope_sd:.3f}; an interval wider than {4 * bar:g} cannot "
                "decide a ±bar window"
            ),
        ),
        Comparison(
            name=f"{c.name}: theory's own slope over the fit range against -min(b-1, 2a)",
            kind="sanity",
            predicted=-alpha,
            measured=c.theory_slope,
            tolerance=bar,
            tolerance_source="a priori: the same bar; else the fit range is not asymptotic",
            reference=REF,
            note=f"{fit}: the range was fixed before the run; this checks it is asymptotic",
        ),
        Comparison(
            name=f"{c.name}: the other regime's exponent missed",
            kind="control",
            predicted=bar,
            measured=abs(c.slope + other),
            tolerance=0.0,
            tolerance_source="a priori: the same bar; the fit must tell the two regimes apart",
            sense="at_least",
            reference=REF,
            note=f"|fitted slope - (-{other:g})|, the exponent of the other candidate regime",
        ),
    ]


def _trap_rows(c: Curve, cfg: Config, alpha: float) -> list[Comparison]:
    n = c.n[c.fit]
    span = f"n = {int(n[0])}..{int(n[-1])} (M/8..M/2, M = {c.n_modes})"
    # the O(1/n) allowances at the ends of the range move the slope by at most this much
    slope_allow = cfg.allowance * (1 / n[0] + 1 / n[-1]) / math.log(n[-1] / n[0])
    return [
        Comparison(
            name="trap: slope near M against the finite-M theory's slope",
            kind="prediction",
            predicted=c.theory_slope,
            measured=c.slope,
            tolerance=3 * c.slope_sd + slope_allow,
            tolerance_source=(
                "measured noise: three bootstrap s.d. of the slope plus the O(1/n) allowance "
                f"carried to the slope ({slope_allow:.3f})"
            ),
            measured_interval=c.slope_interval,
            reference=REF,
            note=span,
        ),
        Comparison(
            name=f"trap: the curve near M is steeper than -min(b-1, 2a) by >= {TRAP_STEEPENING:g}",
            kind="prediction",
            predicted=-alpha - TRAP_STEEPENING,
            measured=c.slope,
            tolerance=0.0,
            tolerance_source=(
                f"a priori: a steepening of at least {TRAP_STEEPENING:g} is what makes an "
                "exponent fitted near M misleading (twice the exponent bar)"
            ),
            sense="at_most",
            reference=REF,
            note=f"{span}; the finite-M theory's slope there is {c.theory_slope:.3f}",
        ),
    ]


def compare(cfg: Config, m: CurveMeasurements) -> list[Comparison]:
    """Rows per kernel pair, the shuffled-label control, the trap and the random features."""
    rows: list[Comparison] = []
    for c in m.curves:
        if c.role == "kernel":
            rows.extend(_pointwise(c, cfg))
            rows.extend(_exponent_rows(c, cfg))
        elif c.role == "shuffled":
            alpha = asymptotic_exponent(c.a, c.b)
            rows.append(
                Comparison(
                    name="shuffled labels: the curve does not fall (exponent near 0)",
                    kind="control",
                    predicted=0.0,
                    measured=c.slope,
                    tolerance=alpha / 2,
                    tolerance_source="a priori: half-way from 0 to the predicted -min(b-1, 2a)",
                    reference=REF,
                    note=f"a = {c.a:g}, b = {c.b:g}; training labels permuted, test on the target",
                )
            )
        elif c.role == "trap":
            rows.extend(_pointwise(c, cfg))
            rows.extend(_trap_rows(c, cfg, asymptotic_exponent(c.a, c.b)))
        elif c.role == "rf":
            rows.extend(_pointwise(c, cfg, extra=cfg.allowance / cfg.n_features))
    return rows
