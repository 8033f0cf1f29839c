"""Self-contained HTML reports: comparisons, metrics, config and figures embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from piami._io import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable
from piami.lab import Result

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:1em 0;font-size:.92em;width:100%}
th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#137333;font-weight:600}.fail{color:#c5221f;font-weight:600}.na{color:#b06000;font-weight:600}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
pre{background:#f8f8f8;padding:.8em;overflow-x:auto;font-size:.85em}
.badge{display:inline-block;padding:.15em .6em;border-radius:1em;color:#fff}
.badge.ok{background:#137333}.badge.bad{background:#c5221f}.badge.ni{background:#b06000}
.ref{color:#5b2c91;font-weight:600}tr.k-refuted{background:#f6f0fb}
.warn{background:#fff4e5;border-left:4px solid #b06000;padding:.4em .8em}
td small{color:#666}
"""


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.6g}"
    return html.escape(str(x))


def _flat_metrics(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(_flat_metrics(v, key + "."))
        elif isinstance(v, (list, tuple)) and len(v) > 12:
            rows.append((key, f"[{len(v)} values] first {to_jsonable(list(v[:4]))} …"))
        else:
            rows.append((key, v))
    return rows


_VERDICT_CLASS = {"pass": "ok", "fail": "bad", "not identified": "ni"}
_KIND_HELP = {
    "prediction": "theory beside measurement",
    "control": "a baseline or null that a broken system fails",
    "sanity": "a check of the machinery",
    "refuted": "a published prediction contradicted here: shown, not counted",
}


def _comparison_rows(result: Result) -> list[str]:
    parts = [
        "<table><tr><th>kind</th><th>quantity</th><th>predicted</th><th>measured</th>"
        "<th>tolerance used</th><th>tolerance from</th><th>z</th><th>result</th><th>unit</th>"
        "<th>reference</th><th>note</th></tr>"
    ]
    for c in result.comparisons:
        cls, word = {
            True: ("pass", "pass"),
            False: ("fail", "FAIL"),
            None: ("na", "not identified"),
        }[c.passed]
        if c.kind == "refuted":
            cls, word = (
                "ref",
                {True: "agrees", False: "contradicted", None: "not identified"}[c.passed],
            )
        note = c.note
        if c.passed is None and c.not_identified:
            note = f"Not identified: {c.not_identified}. {note}".strip()
        intervals = []
        if c.measured_interval is not None:
            intervals.append(
                f"95% [{_fmt(c.measured_interval[0])}, {_fmt(c.measured_interval[1])}]"
            )
        meas = _fmt(c.measured) + (f"<br><small>{intervals[0]}</small>" if intervals else "")
        pred = _fmt(c.predicted)
        if c.predicted_interval is not None:
            lo, hi = c.predicted_interval
            pred += f"<br><small>95% [{_fmt(lo)}, {_fmt(hi)}]</small>"
        z = "—" if c.z is None else f"{c.z:+.2f}"
        parts.append(
            f"<tr class='k-{c.kind}'><td title='{html.escape(_KIND_HELP[c.kind])}'>{c.kind}</td>"
            f"<td>{html.escape(c.name)}</td><td class='num'>{pred}</td>"
            f"<td class='num'>{meas}</td><td>{html.escape(c.describe_tolerance())}</td>"
            f"<td>{html.escape(c.tolerance_source)}</td><td class='num'>{z}</td>"
            f"<td class='{cls}'>{word}</td><td>{html.escape(c.unit)}</td>"
            f"<td>{html.escape(c.reference)}</td><td>{html.escape(note)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def render_html(result: Result) -> str:
    """The report of ``result`` as one HTML string with its figures embedded."""
    verdict = result.verdict
    badge = (
        f'<span class="badge {_VERDICT_CLASS[verdict]}">{html.escape(result.verdict_line())}</span>'
    )
    variant = html.escape(result.variant)
    if result.overrides:
        changed = ", ".join(f"{k}={to_jsonable(v)}" for k, v in sorted(result.overrides.items()))
        variant += f" with {html.escape(changed)}"
    code = html.escape(result.code or "?") + (
        f" ({html.escape(result.code_git)})" if result.code_git else ""
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>piami · {html.escape(result.experiment)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(result.experiment)}</h1>",
        f"<p class='sub'>piami {html.escape(result.piami_version)} · code {code} · seed "
        f"{result.seed} · variant {variant} · {result.runtime_s:.1f} s</p>",
        f"<p>{badge}</p>",
    ]
    if result.variant == "quick":
        parts.append(
            "<p class='warn'>This is the <b>quick</b> variant: smaller systems and shorter runs, "
            "with the tolerances listed below (each row's own); the full variant's bars are those "
            "of the defaults.</p>"
        )
    if result.description:
        parts.append(f"<p>{html.escape(result.description)}</p>")
    parts.append("<h2>Theory beside measurement</h2>")
    parts.append(
        "<p class='sub'>A run passes when it decides at least one prediction and every "
        "prediction, control and sanity row passes; refuted rows are findings, not counted; "
        "not identified means the data could not decide the row.</p>"
    )
    parts.extend(_comparison_rows(result))
    if result.runs:
        r = result.runs
        parts.append(
            f"<p>Sub-runs: {r.get('planned', 0)} planned, {r.get('cached', 0)} reused, "
            f"{r.get('computed', 0)} computed, {r.get('failed', 0)} failed.</p>"
        )
    for fig in result.figures:
        b64 = base64.b64encode(fig.png).decode("ascii")
        parts.append(
            f"<figure><img alt='{html.escape(fig.name)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption><b>{html.escape(fig.name)}</b>. {html.escape(fig.caption)}"
            "</figcaption></figure>"
        )
    for title, table in (("Metrics", result.metrics), ("Timing (wall clock)", result.timing)):
        if table:
            parts.append(f"<h2>{title}</h2><table><tr><th>metric</th><th>value</th></tr>")
            for k, v in _flat_metrics(table):
                parts.append(f"<tr><td>{html.escape(k)}</td><td class='num'>{_fmt(v)}</td></tr>")
            parts.append("</table>")
    cfg = json.dumps(to_jsonable(result.config), indent=2)
    parts.append(f"<h2>Config</h2><pre>{html.escape(cfg)}</pre></body></html>")
    return "\n".join(parts)


def save_result(result: Result, out_dir: str | Path) -> Path:
    """Write one PNG per figure, ``result.json`` and ``report.html`` into ``out_dir``, atomically.

    Order matters to a reader who finds the folder after a kill: an older ``report.html`` is
    removed first, the figures are written, then ``result.json`` (its presence marks a complete
    run), and the report last. So a report never stands beside a result it does not describe.

    Returns:
        The path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").unlink(missing_ok=True)
    for fig in result.figures:
        atomic_write_bytes(out / f"{fig.name}.png", fig.png)
    atomic_write_json(out / "result.json", result.to_dict())
    return atomic_write_text(out / "report.html", render_html(result))
