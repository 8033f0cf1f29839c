"""developmental-stages' rows: do the LLC's stage boundaries line up with the markers?

Predictions (the model trained on text): for each marker of :data:`~.analysis.ALIGNED`, the
largest distance in decades from one of the marker's critical points (where it levels off or
turns, :mod:`.analysis`) to the nearest LLC critical point, within one checkpoint interval
(Hoogland et al.: stage boundaries coincide with the completion of bigram, n-gram and induction-head
formation); and the share of LLC critical points that lie within one interval of some marker's
critical point, at least 1 (every boundary marks a change the markers see). A row is not
identified when its marker never forms or has no critical point in the run, when too few LLC
estimates are identified, when the LLC's slope is nowhere beyond the chains' noise, or when the
95% range of the distance over redrawn LLC curves straddles the tolerance (the chains' spread
cannot place the boundary).

Controls: the share of the log-step range within one interval of a boundary stays at most
:data:`~.config.MAX_CHANCE_COVERAGE` (otherwise any marker event would match by chance); the model
trained on shuffled characters learns no induction (its induction score rises by at most
:data:`~.config.INDUCTION_ABSENT` nats) and no bigrams (its bigram share stays below 0.5); and its
final LLC lies below the text model's (it learned less structure). A sanity row: every LLC
estimate ran its chains on their own minibatches.
"""

from __future__ import annotations

from piami.experiments.developmental_stages.analysis import (
    ALIGNED,
    Analysis,
    analyse,
    marker_series,
)
from piami.experiments.developmental_stages.config import (
    INDUCTION_ABSENT,
    MAX_CHANCE_COVERAGE,
    REFERENCE,
    Config,
)
from piami.experiments.developmental_stages.measure import StageMeasurements
from piami.lab import Comparison

__all__ = ["analyses", "compare"]

OLSSON = "Olsson et al. 2022 (induction heads on repeated random tokens)"


def analyses(cfg: Config, m: StageMeasurements) -> dict[str, Analysis]:
    """The analysis of each model measured."""
    return {name: analyse(cfg, r["rows"], m.reference) for name, r in m.runs.items()}


def compare(cfg: Config, m: StageMeasurements) -> list[Comparison]:
    """The rows of the module docstring."""
    an = analyses(cfg, m)
    text = an["text"]
    rows = [marker_row(cfg, name, text) for name in ALIGNED]
    rows.append(boundary_share_row(cfg, text))
    rows.append(chance_row(cfg, text))
    if "shuffled" in an:
        rows += shuffled_rows(cfg, m, an["shuffled"], text)
    rows.append(batching_row(m))
    return rows


def _tol_source(cfg: Config) -> str:
    return (
        f"a priori: one checkpoint interval, log10({cfg.n_steps}) / {cfg.n_checkpoints - 1} decades"
    )


def _boundaries_note(a: Analysis) -> str:
    if a.cp is None or not a.cp.steps.size:
        return "no LLC critical point"
    pts = ", ".join(f"{k} at {s:.0f}" for s, k in zip(a.cp.steps, a.cp.kinds, strict=True))
    return f"LLC critical points: {pts}"


def _events_note(name: str, a: Analysis) -> str:
    ev = a.events.get(name)
    mid = a.midpoints.get(name)
    head = "" if mid is None else f"formation midpoint at step {mid:.0f}; "
    if ev is None:
        return head + _boundaries_note(a)
    pts = ", ".join(f"{k} at {s:.0f}" for s, k in zip(ev.steps, ev.kinds, strict=True)) or "none"
    tail = "" if a.cp is None or a.cp.steps.size else " (a distance is then the curve's span)"
    return f"{head}{ALIGNED[name].label} critical points: {pts}; " + _boundaries_note(a) + tail


def marker_row(cfg: Config, name: str, a: Analysis) -> Comparison:
    """The largest distance from one of ``name``'s critical points to the nearest LLC one."""
    spec, tol = ALIGNED[name], cfg.tolerance()
    ev, dist = a.events[name], a.distance[name]
    iv = a.distance_interval.get(name)
    why = ""
    if ev is None:
        how = (
            f"reaches {spec.level:g}" if spec.level is not None else f"rises by {spec.min_change:g}"
        )
        why = (
            f"the {spec.label} never forms: it never {how} (largest move {a.rises[name]:.3g}) "
            f"within {cfg.n_steps} steps"
        )
    elif not ev.steps.size:
        why = (
            f"the {spec.label} has no critical point within the run (it never levels off or turns)"
        )
    elif a.why_unresolved:
        why = a.why_unresolved
    elif dist is None:
        out = ", ".join(f"{v:.0f}" for v in a.outside.get(name, ()))
        why = (
            f"the {spec.label}'s critical points (steps {out}) lie outside the range of the LLC "
            "curve's identified estimates"
        )
    elif iv is not None and iv[0] <= tol < iv[1]:
        why = (
            f"over redrawn LLC curves the distance ranges over [{iv[0]:.2f}, {iv[1]:.2f}] decades, "
            f"across the tolerance {tol:.2f}: the chains' spread cannot place the boundary"
        )
    return Comparison(
        name=f"{spec.label}: its critical points lie within one checkpoint interval of LLC ones",
        kind="prediction",
        predicted=0.0,
        measured=dist,
        tolerance=tol,
        tolerance_source=_tol_source(cfg),
        sense="within",
        unit="decades of step",
        reference=REFERENCE + ("; " + OLSSON if name == "induction" else ""),
        measured_interval=iv,
        not_identified=why,
        note=_events_note(name, a),
    )


def boundary_share_row(cfg: Config, a: Analysis) -> Comparison:
    """The share of LLC critical points within one interval of some marker's critical point."""
    n = len(a.matched)
    k = sum(b["matched"] for b in a.matched)
    why = a.why_unresolved or ("" if n else "the LLC curve has no critical point")
    per = "; ".join(
        f"{b['kind']} at {b['step']:.0f}: nearest {b['nearest_marker']} "
        + ("(none)" if b["distance"] is None else f"{b['distance']:.2f} dec")
        for b in a.matched
    )
    chance = "" if a.coverage is None else f"; chance of a match per marker event {a.coverage:.2f}"
    return Comparison(
        name="LLC boundaries that lie within one checkpoint interval of a marker's critical point",
        kind="prediction",
        predicted=1.0,
        measured=k / n if n else None,
        tolerance=0.0,
        tolerance_source=(
            "a priori: every stage boundary marks a change the markers see (Hoogland et al.), "
            "one checkpoint interval"
        ),
        sense="at_least",
        unit="fraction",
        reference=REFERENCE,
        not_identified=why,
        note=f"{k}/{n} boundaries matched; {per}{chance}",
    )


def chance_row(cfg: Config, a: Analysis) -> Comparison:
    """Control: the boundaries' tolerance windows leave most of the log-step range uncovered."""
    return Comparison(
        name="share of the log-step range within one checkpoint interval of an LLC boundary",
        kind="control",
        predicted=MAX_CHANCE_COVERAGE,
        measured=a.coverage,
        tolerance=0.0,
        tolerance_source=(
            f"a priori: above {MAX_CHANCE_COVERAGE:g}, a transition anywhere would match a "
            "boundary more often than not"
        ),
        sense="at_most",
        unit="fraction",
        not_identified=a.why_unresolved,
        note=_boundaries_note(a) + f" over {a.span:.2f} decades",
    )


def shuffled_rows(
    cfg: Config, m: StageMeasurements, sh: Analysis, text: Analysis
) -> list[Comparison]:
    """Controls on the model trained on shuffled characters."""
    share = {
        name: marker_series(m.runs[name]["rows"], m.reference)["bigram_share"]
        for name in ("shuffled", "text")
    }
    last_s, last_t = m.runs["shuffled"]["rows"][-1], m.runs["text"]["rows"][-1]
    why_llc = "; ".join(
        f"{name} model's last LLC estimate is not identified ({r['why_not_identified']})"
        for name, r in (("shuffled", last_s), ("text", last_t))
        if not r["identified"]
    )
    return [
        Comparison(
            name="shuffled-text control: the induction score does not rise",
            kind="control",
            predicted=INDUCTION_ABSENT,
            measured=sh.rises["induction"],
            tolerance=0.0,
            tolerance_source=(
                f"a priori: {INDUCTION_ABSENT:g} nats, the drift of a model without induction"
            ),
            sense="at_most",
            unit="nats / token",
            reference=OLSSON,
            note=(
                "largest rise of the induction score from step 0 over training; the text model's: "
                f"{text.rises['induction']:.3f}"
            ),
        ),
        Comparison(
            name="shuffled-text control: the bigram share stays below one half",
            kind="control",
            predicted=0.5,
            measured=float(share["shuffled"].max()),
            tolerance=0.0,
            tolerance_source="a priori: the bigram marker's transition level",
            sense="at_most",
            unit="fraction",
            note=f"largest over checkpoints; the text model's: {share['text'].max():.3f}",
        ),
        Comparison(
            name="shuffled-text control: final LLC below the text model's",
            kind="control",
            predicted=float(last_t["llc_mean"]),
            measured=float(last_s["llc_mean"]),
            tolerance=0.0,
            tolerance_source="a priori: less structure learned, a more degenerate minimum",
            sense="at_most",
            reference=REFERENCE,
            measured_interval=_iv(last_s),
            predicted_interval=_iv(last_t),
            not_identified=why_llc,
            note=f"LLC at step {last_s['step']}, mean ± 1.96 standard errors over chains",
        ),
    ]


def _iv(row: dict) -> tuple[float, float]:
    h = 1.96 * float(row["llc_se"])
    return (float(row["llc_mean"]) - h, float(row["llc_mean"]) + h)


def batching_row(m: StageMeasurements) -> Comparison:
    """Sanity: every LLC estimate's chains drew their own minibatches."""
    rows = [r for run in m.runs.values() for r in run["rows"]]
    modes = sorted({r["batching"] for r in rows})
    return Comparison(
        name="LLC chains draw their own minibatches at every checkpoint",
        kind="sanity",
        predicted=1.0,
        measured=float(all(r["independent_batches"] for r in rows)),
        tolerance=0.0,
        tolerance_source="derived: the chains' spread and R-hat assume independent chains",
        note=f"batching: {', '.join(modes)}",
    )
