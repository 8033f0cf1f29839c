"""Self-contained HTML reports: comparisons, metrics, config and figures embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from piami._io import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable
from piami.experiments.result import Result

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
.badge.ok{background:#137333}.badge.bad{background:#c5221f}
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


def render_html(result: Result) -> str:
    """The report of ``result`` as one HTML string with its figures embedded."""
    n = len(result.comparisons)
    ok = n - result.n_failed
    badge = (
        f'<span class="badge {"ok" if result.passed else "bad"}">{ok}/{n} comparisons passed</span>'
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>piami · {html.escape(result.experiment)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(result.experiment)}</h1>",
        f"<p class='sub'>piami {html.escape(result.piami_version)} · seed {result.seed} · "
        f"{result.runtime_s:.1f} s · {badge}</p>",
    ]
    if result.description:
        parts.append(f"<p>{html.escape(result.description)}</p>")
    parts.append(
        "<h2>Theory beside measurement</h2><table><tr><th>quantity</th><th>predicted</th>"
        "<th>measured</th><th>tolerance</th><th>result</th><th>unit</th><th>reference</th>"
        "<th>note</th></tr>"
    )
    for c in result.comparisons:
        cls, word = {True: ("pass", "pass"), False: ("fail", "FAIL"), None: ("na", "not made")}[
            c.passed
        ]
        tol = f"±{c.tolerance:g}{' (relative)' if c.relative else ''}"
        if c.sense == "at_least":
            tol = f"≥ predicted − {c.tolerance:g}{' (rel.)' if c.relative else ''}"
        elif c.sense == "at_most":
            tol = f"≤ predicted + {c.tolerance:g}{' (rel.)' if c.relative else ''}"
        parts.append(
            f"<tr><td>{html.escape(c.name)}</td><td class='num'>{_fmt(c.predicted)}</td>"
            f"<td class='num'>{_fmt(c.measured)}</td><td>{html.escape(tol)}</td>"
            f"<td class='{cls}'>{word}</td><td>{html.escape(c.unit)}</td>"
            f"<td>{html.escape(c.reference)}</td><td>{html.escape(c.note)}</td></tr>"
        )
    parts.append("</table>")
    for fig in result.figures:
        b64 = base64.b64encode(fig.png).decode("ascii")
        parts.append(
            f"<figure><img alt='{html.escape(fig.name)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption><b>{html.escape(fig.name)}</b>. {html.escape(fig.caption)}</figcaption></figure>"
        )
    if result.metrics:
        parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>")
        for k, v in _flat_metrics(result.metrics):
            parts.append(f"<tr><td>{html.escape(k)}</td><td class='num'>{_fmt(v)}</td></tr>")
        parts.append("</table>")
    cfg = json.dumps(to_jsonable(result.config), indent=2)
    parts.append(f"<h2>Config</h2><pre>{html.escape(cfg)}</pre></body></html>")
    return "\n".join(parts)


def save_result(result: Result, out_dir: str | Path) -> Path:
    """Write ``result.json``, one PNG per figure and ``report.html`` into ``out_dir``, atomically.

    ``result.json`` is written last, so its presence marks a complete run.

    Returns:
        The path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fig in result.figures:
        atomic_write_bytes(out / f"{fig.name}.png", fig.png)
    report = atomic_write_text(out / "report.html", render_html(result))
    atomic_write_json(out / "result.json", result.to_dict())
    return report
