"""Rows of the belief-geometry section of ``instrument-calibration`` (see :mod:`.beliefs`).

Per Mess3 setting: two sanity rows (correlation <= information dimension for any measure; the
exact beliefs of the held-out contexts already show the long-run dimension at these scales), the
prediction (the residual stream's correlation dimension is the belief set's, decided only where
the network resolves its belief set: :func:`undecided_because`) and two controls (the untrained
network misses the dimension; training removes at least half of the untrained network's KL).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.experiments.instrument_calibration.beliefs import BeliefMeasured, Interval3
from piami.lab import Comparison

REF_FRACTAL = "Jurgens & Crutchfield 2021 (Chaos 31, 083114); Grassberger & Procaccia 1983"
REF_BELIEF = "Shai et al. 2024; Marzen & Crutchfield 2017"
#: largest resolution ratio at which the residual stream's dimension is read (stated a priori)
MAX_RESOLUTION_RATIO = 1.0
#: fewest pairs of distinct contexts with equal beliefs needed to gauge the resolution
MIN_RESOLUTION_PAIRS = 20
#: smallest radius / the network's RMS belief error needed to read the dimension: pair distances
#: carry an error ~ sqrt(2) eps, which at r >= 3 sqrt(2) eps shifts log r by < 0.06 (derived)
PRECISION_FACTOR = 3 * np.sqrt(2)
#: the prediction's name after the setting's tag
RESIDUAL_ROW = "correlation dimension of the final residual stream (no probe) vs the belief set"


def undecided_because(res: dict[str, float]) -> str:
    """Why the residual stream's dimension cannot test the theory here ("" when it can)."""
    eps, r = res["belief_error"], res["belief_radius"]
    if not np.isfinite(eps):
        return "the network's output does not determine its belief, so its precision is unknown"
    if r < PRECISION_FACTOR * eps:
        return (
            f"the network's beliefs (read from its own output) err by {eps:.2g} RMS, more than "
            f"the smallest radius {r:.2g} of the belief set over {PRECISION_FACTOR:.2f}: it cannot "
            "show the scales where the theory's dimension lives"
        )
    if not (np.isfinite(res["ratio"]) and res["pairs"] >= MIN_RESOLUTION_PAIRS):
        return (
            f"only {res['pairs']} pairs of distinct contexts with equal beliefs: resolution unknown"
        )
    if res["ratio"] > MAX_RESOLUTION_RATIO:
        return (
            f"the network does not resolve its belief set at these scales: contexts with equal "
            f"beliefs lie {res['ratio']:.2f} x the smallest radius apart in the residual stream "
            f"(more than {MAX_RESOLUTION_RATIO:g}), so the slope measures its other content"
        )
    return ""


def _iv(d: Interval3 | list[float]) -> tuple[float, float] | None:
    """The interval ``(low, high)`` of ``(mean, low, high)``; None when not finite."""
    return (d[1], d[2]) if np.isfinite(d[1]) else None


def compare_beliefs(cfg: Any, settings: list[BeliefMeasured]) -> list[Comparison]:
    """The rows of every Mess3 setting, in order."""
    return [c for m in settings for c in compare_belief(cfg, m)]


def compare_belief(cfg: Any, m: BeliefMeasured) -> list[Comparison]:
    """Dimensions of the belief measure (Jurgens & Crutchfield 2021), the residual stream's
    (Shai et al. 2024; Grassberger & Procaccia 1983) and the untrained network's."""
    th, ex = m.dims["theory_long_run"], m.dims["exact_context"]
    tol, tag = cfg.dimension_tolerance, m.tag
    src = (
        f"a priori: {tol:g}, the dimension bar of this experiment, stated before any run; an "
        f"interval wider than {2 * tol:g} does not decide"
    )
    q = cfg.dimension_quantiles
    scale = f"radii at the {q[0]:g}..{q[1]:g} quantiles of each cloud's pair distances"
    dl = m.theory["lyapunov_dimension"]
    return [
        Comparison(
            name=f"{tag}: correlation ≤ Lyapunov (information) dimension of the belief measure",
            kind="sanity",
            predicted=dl[0],
            measured=th[0],
            tolerance=float(th[2] - th[0]) if np.isfinite(th[2]) else 0.0,
            sense="at_most",
            measured_interval=_iv(th),
            predicted_interval=_iv(dl),
            max_interval_width=2 * tol,
            tolerance_source="measured noise: 95% half-width of the correlation dimension over "
            "subsets",
            reference=REF_FRACTAL,
            note="for any measure, correlation ≤ information dimension",
        ),
        Comparison(
            name=f"{tag}: correlation dimension, exact beliefs of the held-out contexts vs "
            "long-run",
            kind="sanity",
            predicted=th[0],
            measured=ex[0],
            tolerance=tol,
            tolerance_source=src,
            measured_interval=_iv(ex),
            predicted_interval=_iv(th),
            reference=REF_FRACTAL,
            max_interval_width=2 * tol,
            note=f"context {cfg.n_ctx} and these scales already show the theory's dimension; "
            f"{scale}",
        ),
        _residual_row(cfg, m, src, scale),
        *_controls(cfg, m),
    ]


def _residual_row(cfg: Any, m: BeliefMeasured, src: str, scale: str) -> Comparison:
    """The prediction: the residual stream's correlation dimension is the belief set's."""
    th, tr, res = m.dims["theory_long_run"], m.dims["trained"], m.resolution
    tol = cfg.dimension_tolerance
    return Comparison(
        name=f"{m.tag}: {RESIDUAL_ROW}",
        kind="prediction",
        predicted=th[0],
        measured=tr[0],
        tolerance=tol,
        tolerance_source=src,
        measured_interval=_iv(tr),
        predicted_interval=_iv(th),
        not_identified=undecided_because(res),
        max_interval_width=2 * tol,
        reference=REF_BELIEF + "; " + REF_FRACTAL,
        note=f"last context position, {cfg.n_dim_seqs} held-out contexts; {scale}; smallest "
        f"belief radius {res['belief_radius']:.3g} vs the network's belief error "
        f"{res['belief_error']:.3g} (≥ {PRECISION_FACTOR:.2f} x to decide); resolution ratio "
        f"{res['ratio']:.3g} from {res['pairs']} pairs (≤ {MAX_RESOLUTION_RATIO:g} to decide)",
    )


def _controls(cfg: Any, m: BeliefMeasured) -> list[Comparison]:
    """The untrained network misses the dimension; training removes half its KL."""
    th, un, kl = m.dims["theory_long_run"], m.dims["untrained"], m.kl
    tol = cfg.dimension_tolerance
    return [
        Comparison(
            name=f"{m.tag}: the untrained network's residual stream misses the belief set's "
            "dimension",
            kind="control",
            predicted=tol,
            measured=abs(un[0] - th[0]),
            tolerance=0.0,
            sense="at_least",
            tolerance_source="a priori: the null must lie farther from the theory than the "
            "prediction's tolerance",
            reference=REF_BELIEF,
            note=f"same initialization, not trained: dimension {un[0]:.3f} [{un[1]:.3f}, "
            f"{un[2]:.3f}] against the theory's {th[0]:.3f}",
        ),
        Comparison(
            name=f"{m.tag}: training removes at least half of the untrained network's KL",
            kind="control",
            predicted=0.5,
            measured=kl["trained"] / kl["untrained"],
            tolerance=0.0,
            sense="at_most",
            tolerance_source="a priori: half, stated before any run",
            reference=REF_BELIEF,
            note=f"KL(exact ‖ model) at the last position: trained {kl['trained']:.3g}, untrained "
            f"{kl['untrained']:.3g} nats",
        ),
    ]
