"""From checkpoint rows to stage boundaries, marker events, and how they line up.

The LLC curve is the identified estimates at positive steps (an estimate flagged as not
converged or not positive, :mod:`.measure`, is left out and shown apart); its critical points
(:func:`.stages.critical_points`) are the stage boundaries, with each estimate's standard error
``chain spread / sqrt(chains)`` entering the flat threshold.

A marker's own stage boundaries are found the same way: the critical points of its curve over log
step, with the same smoothing and flat threshold (markers are read on fixed token sets, so no
standard error enters). Both curves report the ends of flat stretches at their edges too
(``edges=True``: where a marker starts to move, and where it levels off for the rest of the run),
and only marker events within the LLC curve's range (its identified estimates, widened by the
tolerance) are compared. In Hoogland et al.'s account a structure forms *within* a stage and the
stage ends when it is complete, so the events to set beside the LLC's boundaries are where a
marker stops changing or turns (the bigram share peaks once the model goes beyond bigrams; the
previous-token attention levels off), not the middle of its rise. A marker is read only once it
has formed, by bars stated in advance:

- **bigram**: the *bigram share* ``1 - KL(bigram || model) / KL(bigram || unigram)`` (0 for a
  model that knows only the character frequencies, 1 for the exact bigram model) reaches 0.5;
- **previous token**: the previous-token attention rises by at least 0.1 from step 0 (uniform
  attention gives it 0.06 at a context of 64);
- **induction**: the induction score rises by at least :data:`~.config.INDUCTION_FORMED` nats.

The step at which each marker crosses its level or half of its rise (``formation midpoint``) is
kept in the metrics and figures: a first version of this experiment set those midpoints beside the
LLC's boundaries, which tests the wrong event (see the documentation page).

Noise: the LLC values are redrawn :data:`N_BOOT` times from normals with their standard errors,
the critical points found again each time, and each distance taken again; its 2.5-97.5% range says
whether the chains' spread lets the data place a boundary (independent redraws ignore the
positive correlation that common random numbers give neighbouring checkpoints, so the range is
conservative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.experiments.developmental_stages.config import INDUCTION_FORMED, MIN_CONVERGED, Config
from piami.experiments.developmental_stages.stages import (
    CriticalPoints,
    critical_points,
    nearest_distance,
    transition_step,
)

__all__ = [
    "ALIGNED",
    "Analysis",
    "MarkerSpec",
    "analyse",
    "coverage",
    "marker_series",
    "summary",
]


@dataclass(frozen=True, kw_only=True)
class MarkerSpec:
    """How a marker is read (see the module docstring)."""

    series: str  # key of :func:`marker_series`
    label: str  # for rows and figures
    rise: bool = True  # acquisition raises the marker
    level: float | None = None  # level whose crossing says it formed (None: a rise of min_change)
    min_change: float = 0.0  # smallest rise that says it formed


#: The markers whose critical points are set beside the LLC's boundaries.
ALIGNED: dict[str, MarkerSpec] = {
    "bigram": MarkerSpec(series="bigram_share", label="bigram share", level=0.5),
    "previous_token": MarkerSpec(
        series="prev_token_attention", label="previous-token attention", min_change=0.1
    ),
    "induction": MarkerSpec(
        series="induction_score", label="induction score", min_change=INDUCTION_FORMED
    ),
}
N_BOOT = 200  # redraws of the LLC curve for the boundaries' noise


def marker_series(rows: list[dict[str, Any]], reference: dict[str, float]) -> dict[str, np.ndarray]:
    """Every marker over the checkpoints, with ``step`` and the derived ``bigram_share``."""
    out = {
        k: np.array([r[k] for r in rows], dtype=np.float64)
        for k in (
            "step",
            "held_out_loss",
            "bigram_kl",
            "prev_token_attention",
            "induction_score",
            "induction_attention",
        )
    }
    out["bigram_share"] = 1.0 - out["bigram_kl"] / reference["bigram_kl_of_unigram"]
    return out


def coverage(boundaries: np.ndarray, lo: float, hi: float, tol: float) -> float:
    """Share of ``[lo, hi]`` (decades) within ``tol`` of a boundary (decades, ``log10`` step).

    Example:
        >>> coverage(np.array([1.0]), 0.0, 4.0, 0.5)
        0.25
    """
    if hi <= lo or boundaries.size == 0:
        return 0.0
    covered, end = 0.0, lo
    for b in np.sort(boundaries):  # union of the windows [b - tol, b + tol] inside [lo, hi]
        a, z = max(b - tol, end), min(b + tol, hi)
        if z > a:
            covered += z - a
            end = z
    return float(covered / (hi - lo))


@dataclass(kw_only=True)
class Analysis:
    """Boundaries, marker events and their distances for one model (module docstring)."""

    steps: np.ndarray  # every checkpoint's step
    llc: np.ndarray  # LLC estimate per checkpoint
    llc_se: np.ndarray  # its standard error
    identified: np.ndarray  # bool per checkpoint: the estimate is identified
    used: np.ndarray  # bool: in the curve (positive step, identified)
    cp: CriticalPoints | None  # the LLC's critical points; None: too few identified estimates
    why_unresolved: str  # why no LLC boundary can be placed ("" when one can)
    rises: dict[str, float]  # marker -> its largest move from step 0 (series units)
    midpoints: dict[str, float | None]  # marker -> formation midpoint (None: never formed)
    events: dict[str, CriticalPoints | None]  # marker -> its critical points (None: not formed)
    distance: dict[str, float | None]  # marker -> largest distance (decades) from one of its
    #   critical points to the nearest LLC boundary
    distance_interval: dict[str, tuple[float, float]] = field(default_factory=dict)
    matched: list[dict[str, Any]] = field(default_factory=list)  # per boundary: nearest event
    outside: dict[str, np.ndarray] = field(default_factory=dict)  # marker events outside the
    #   LLC curve's range (by more than the tolerance): not compared
    coverage: float | None = None  # share of the log-step range near some boundary
    span: float = 0.0  # decades spanned by the LLC curve

    def boundary_steps(self) -> np.ndarray:
        return np.zeros(0) if self.cp is None else self.cp.steps

    def event_steps(self) -> dict[str, np.ndarray]:
        """Each formed marker's critical points (steps)."""
        return {k: cp.steps for k, cp in self.events.items() if cp is not None}


def _markers(cfg: Config, series: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """Rises, formation midpoints and (for formed markers) critical points of every marker."""
    rises, mids, events = {}, {}, {}
    steps = series["step"]
    pos = steps > 0
    for name, spec in ALIGNED.items():
        y = series[spec.series]
        sign = 1.0 if spec.rise else -1.0
        rises[name] = float(np.max(sign * (y - y[0])))
        mids[name] = transition_step(
            steps, y, rise=spec.rise, level=spec.level, min_change=spec.min_change
        )
        events[name] = None
        if mids[name] is not None and pos.sum() >= 3:
            events[name] = critical_points(
                steps[pos],
                y[pos],
                bandwidth=cfg.smoothing,
                flat_fraction=cfg.flat_fraction,
                edges=True,
            )
    return rises, mids, events


def _curve(cfg: Config, steps, llc, se) -> CriticalPoints:
    return critical_points(
        steps,
        llc,
        stderr=se,
        bandwidth=cfg.smoothing,
        flat_fraction=cfg.flat_fraction,
        z=cfg.z,
        edges=True,
    )


def _farthest(events: np.ndarray, bounds: np.ndarray, span: float) -> float:
    """The largest distance from one of ``events`` to its nearest boundary (capped at ``span``)."""
    return max(min(nearest_distance(e, bounds), span) for e in events)


def analyse(cfg: Config, rows: list[dict[str, Any]], reference: dict[str, float]) -> Analysis:
    """Boundaries of the LLC curve of ``rows``, the markers' events, and their distances."""
    series = marker_series(rows, reference)
    steps = series["step"]
    llc = np.array([r["llc_mean"] for r in rows], dtype=np.float64)
    se = np.array([r["llc_se"] for r in rows], dtype=np.float64)
    ok = np.array([bool(r["identified"]) for r in rows])
    used = ok & (steps > 0) & np.isfinite(llc) & np.isfinite(se)
    rises, mids, events = _markers(cfg, series)
    a = Analysis(
        steps=steps,
        llc=llc,
        llc_se=se,
        identified=ok,
        used=used,
        cp=None,
        why_unresolved="",
        rises=rises,
        midpoints=mids,
        events=events,
        distance={k: None for k in ALIGNED},
    )
    if used.sum() < MIN_CONVERGED:
        a.why_unresolved = (
            f"only {int(used.sum())} of {len(rows)} LLC estimates are identified (converged and "
            f"positive; at least {MIN_CONVERGED} are needed to read the curve's slope)"
        )
        return a
    x, y, s = steps[used], llc[used], se[used]
    a.cp = _curve(cfg, x, y, s)
    lo, hi = float(np.log10(x[0])), float(np.log10(x[-1]))
    a.span = hi - lo
    if not a.cp.resolved:
        a.why_unresolved = (
            f"the LLC curve's slope is nowhere beyond {cfg.z:g} standard errors (from the chains' "
            "spread) of zero: the noise is too large to place a boundary"
        )
        return a
    tol, bounds = cfg.tolerance(), a.cp.steps
    a.coverage = coverage(a.cp.log_steps(), lo, hi, tol)
    # a marker event outside the LLC curve's range cannot meet a boundary the curve can show
    inside = {
        k: v[(v >= x[0] / 10**tol) & (v <= x[-1] * 10**tol)] for k, v in a.event_steps().items()
    }
    a.outside = {k: a.event_steps()[k][~np.isin(a.event_steps()[k], v)] for k, v in inside.items()}
    found = {k: v for k, v in inside.items() if v.size}
    for name, ev in found.items():
        a.distance[name] = _farthest(ev, bounds, a.span)
    for b, kind in zip(bounds, a.cp.kinds, strict=True):
        near = {k: float(np.min(np.abs(np.log10(ev) - np.log10(b)))) for k, ev in found.items()}
        best = min(near, key=near.get) if near else None
        a.matched.append(
            {
                "step": float(b),
                "kind": kind,
                "nearest_marker": best,
                "distance": None if best is None else near[best],
                "matched": bool(best is not None and near[best] <= tol),
            }
        )
    a.distance_interval = _bootstrap(cfg, x, y, s, found, a.span)
    return a


def _bootstrap(cfg: Config, x, y, s, found, span) -> dict[str, tuple[float, float]]:
    """95% range of each marker's distance to the LLC's boundaries over redrawn LLC curves."""
    rng = np.random.default_rng([cfg.seed, 5])
    draws: dict[str, list[float]] = {k: [] for k in found}
    for _ in range(N_BOOT):
        cp = _curve(cfg, x, y + s * rng.standard_normal(y.size), s)
        for k, ev in found.items():
            draws[k].append(_farthest(ev, cp.steps, span))
    pct = {k: np.percentile(v, [2.5, 97.5]) for k, v in draws.items()}
    return {k: (float(lo), float(hi)) for k, (lo, hi) in pct.items()}


def summary(a: Analysis) -> dict[str, Any]:
    """The analysis as JSON-ready numbers (for ``result.json``)."""
    cp = a.cp
    return {
        "boundaries": [] if cp is None else [float(v) for v in cp.steps],
        "boundary_kinds": [] if cp is None else list(cp.kinds),
        "resolved": bool(cp is not None and cp.resolved),
        "why_unresolved": a.why_unresolved,
        "identified_estimates": int(a.identified.sum()),
        "estimates": int(a.identified.size),
        "marker_rises": dict(a.rises),
        "marker_midpoints": dict(a.midpoints),
        "marker_events": {
            k: {"steps": [float(v) for v in e.steps], "kinds": list(e.kinds)}
            for k, e in a.events.items()
            if e is not None
        },
        "events_outside_llc_range": {k: [float(v) for v in e] for k, e in a.outside.items()},
        "distance_decades": dict(a.distance),
        "distance_interval": {k: list(v) for k, v in a.distance_interval.items()},
        "matched_boundaries": list(a.matched),
        "coverage": a.coverage,
        "span_decades": a.span,
    }
