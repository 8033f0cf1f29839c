"""The certificate page: every instrument and theory check, its error on ground truth over seeds.

Written by ``piami certify`` as ``index.html`` (self-contained, links to each run's report),
``certificate.json`` (the same rows as data) and ``certificate.md`` (the summary table, for a
README).
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import Any

from piami._io import atomic_write_json, atomic_write_text
from piami.lab.certificate import CertificateRow, certificate_rows, experiment_verdicts
from piami.lab.fingerprint import code_fingerprint, git_describe
from piami.report.html import _CSS, _fmt

_MARK = {True: ("pass", "✓"), False: ("fail", "✗"), None: ("na", "n/i")}
_VERDICT = {"pass": "ok", "fail": "bad", "not identified": "ni"}


def _rate(row: CertificateRow) -> str:
    if not row.n_decided:
        return "not identified"
    lo, hi = row.pass_interval
    return f"{row.n_passed}/{row.n_decided} [{lo:.2f}, {hi:.2f}]"


def _error(row: CertificateRow) -> str:
    m, s = row.error_mean, row.error_spread
    if m is None:
        return "—"
    unit = "" if row.relative else (f" {row.unit}" if row.unit else "")
    txt = f"{m:+.3g}" if not row.relative else f"{m:+.2%}"
    if s is not None:
        txt += f" ± {s:.2g}" if not row.relative else f" ± {s:.2%}"
    return txt + unit


def _summary(cert: Any) -> list[tuple[str, str, str, str, str, str]]:
    """experiment, verdicts over seeds, predictions passed, controls passed, failures, and the
    rows the data did not decide."""
    out = []
    verdicts = experiment_verdicts(cert.results)
    rows = certificate_rows(cert.results)
    for name in cert.results:
        v = verdicts.get(name, {})
        n_pass = sum(x == "pass" for x in v.values())
        mine = [r for r in rows if r.experiment == name]

        def count(kind: str, mine: list[CertificateRow] = mine) -> str:
            sel = [r for r in mine if r.kind == kind]
            ok = sum(r.n_passed for r in sel)
            dec = sum(r.n_decided for r in sel)
            return f"{ok}/{dec}" if sel else "—"

        failed = len(cert.failures.get(name, {}))
        undecided = [
            f"{r.name} ({sum(v is None for v in r.passed.values())}/{len(r.passed)} seeds)"
            for r in mine
            if r.kind != "refuted" and any(v is None for v in r.passed.values())
        ]
        out.append(
            (
                name,
                f"{n_pass}/{len(cert.seeds)} seeds pass",
                count("prediction"),
                count("control"),
                str(failed),
                "; ".join(undecided) or "—",
            )
        )
    return out


def _code(cert: Any) -> tuple[str, str]:
    """The code fingerprint(s) and git description(s) of the results certified (normally one)."""
    runs = [r for rs in cert.results.values() for r in rs]
    codes = sorted({r.code for r in runs if r.code}) or [code_fingerprint()]
    gits = sorted({r.code_git for r in runs if r.code_git}) or [git_describe()]
    return ", ".join(codes), ", ".join(g for g in gits if g)


def render_certificate(cert: Any) -> str:
    """The certificate as one HTML page."""
    rows = certificate_rows(cert.results)
    code, described = _code(cert)
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>piami certificate</title>",
        f"<style>{_CSS}</style></head><body><h1>piami certificate</h1>",
        f"<p class='sub'>code {html.escape(code)}"
        + (f" ({html.escape(described)})" if described else "")
        + f" · variant {cert.variant} · seeds {', '.join(map(str, cert.seeds))} · "
        f"{cert.wall_s / 60:.1f} min · written {when}</p>",
        "<p>Every comparison of every experiment, run at each seed: how often it passed (with the "
        "Clopper–Pearson 95% interval of that rate), its error on ground truth (measured − "
        "predicted; mean ± standard deviation over seeds), and the controls a broken system "
        "fails. <i>n/i</i>: not identified (the data could not decide the row). Refuted rows are "
        "published predictions contradicted here: findings, not failures.</p>",
        "<h2>Experiments</h2><table><tr><th>experiment</th><th>verdict per seed</th>"
        "<th>runs passing</th><th>prediction rows passed (of decided)</th>"
        "<th>control rows passed (of decided)</th><th>runs that raised</th>"
        "<th>rows not identified</th></tr>",
    ]
    verdicts = experiment_verdicts(cert.results)
    for name, runs_pass, preds, controls, failed, undecided in _summary(cert):
        links = []
        for seed in cert.seeds:
            v = verdicts.get(name, {}).get(seed)
            href = cert.reports.get(name, {}).get(seed)
            if v is None:
                why = html.escape(cert.failures.get(name, {}).get(seed, "missing"))
                links.append(f"<span class='badge bad' title='{why}'>seed {seed}: raised</span>")
            else:
                links.append(
                    f"<a class='badge {_VERDICT[v]}' href='{html.escape(href)}'>"
                    f"seed {seed}: {v}</a>"
                )
        parts.append(
            f"<tr><td><b>{html.escape(name)}</b></td><td>{' '.join(links)}</td>"
            f"<td>{runs_pass}</td><td>{preds}</td><td>{controls}</td><td>{failed}</td>"
            f"<td><small>{html.escape(undecided)}</small></td></tr>"
        )
    parts.append("</table><h2>Every check</h2>")
    parts.append(
        "<table><tr><th>experiment</th><th>kind</th><th>check</th><th>pass rate</th>"
        "<th>error (mean ± sd)</th><th>per seed</th><th>tolerance</th><th>tolerance from</th>"
        "<th>reference</th></tr>"
    )
    for r in rows:
        marks = []
        for seed in cert.seeds:
            if seed not in r.passed:
                continue
            cls, sym = _MARK[r.passed[seed]]
            title = (
                f"seed {seed}: measured {_fmt(r.measured.get(seed))}, "
                f"predicted {_fmt(r.predicted.get(seed))}"
            )
            if r.notes.get(seed):
                title += f"; not identified: {r.notes[seed]}"
            href = cert.reports.get(r.experiment, {}).get(seed, "")
            marks.append(
                f"<a class='{cls}' href='{html.escape(href)}' "
                f"title='{html.escape(title)}'>{sym}</a>"
            )
        parts.append(
            f"<tr class='k-{r.kind}'><td>{html.escape(r.experiment)}</td><td>{r.kind}</td>"
            f"<td>{html.escape(r.name)}</td><td>{_rate(r)}</td>"
            f"<td class='num'>{html.escape(_error(r))}</td>"
            f"<td>{' '.join(marks)}</td><td>{html.escape(r.tolerance)}</td>"
            f"<td>{html.escape(r.tolerance_source)}</td><td>{html.escape(r.reference)}</td></tr>"
        )
    parts.append("</table>")
    failures = [(n, s, e) for n, d in cert.failures.items() for s, e in sorted(d.items())]
    if failures:
        parts.append("<h2>Runs that raised</h2><ul>")
        parts.extend(
            f"<li>{html.escape(n)}, seed {s}: {html.escape(e)}</li>" for n, s, e in failures
        )
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(cert: Any) -> str:
    """The experiments' summary as a Markdown table (for a README), with how it was made."""
    lines = [
        f"Variant {cert.variant}, seeds {', '.join(map(str, cert.seeds))}, code "
        f"{_code(cert)[0]}{f' ({_code(cert)[1]})' if _code(cert)[1] else ''}, "
        f"{cert.wall_s / 60:.1f} min.",
        "",
        "| experiment | runs passing | prediction rows passed | control rows passed | "
        "runs that raised | rows not identified |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs_pass, preds, controls, failed, undecided in _summary(cert):
        lines.append(f"| `{name}` | {runs_pass} | {preds} | {controls} | {failed} | {undecided} |")
    return "\n".join(lines) + "\n"


def write_certificate(cert: Any) -> None:
    """Write ``index.html``, ``certificate.json`` and ``certificate.md`` into ``cert.out``."""
    rows = certificate_rows(cert.results)
    atomic_write_text(cert.out / "index.html", render_certificate(cert))
    atomic_write_text(cert.out / "certificate.md", render_markdown(cert))
    atomic_write_json(
        cert.out / "certificate.json",
        {
            "code": _code(cert)[0],
            "code_git": _code(cert)[1],
            "variant": cert.variant,
            "seeds": cert.seeds,
            "wall_s": cert.wall_s,
            "verdicts": {
                k: {str(s): v for s, v in d.items()}
                for k, d in experiment_verdicts(cert.results).items()
            },
            "failures": {k: {str(s): v for s, v in d.items()} for k, d in cert.failures.items()},
            "reports": {k: {str(s): v for s, v in d.items()} for k, d in cert.reports.items()},
            "rows": [r.to_dict() for r in rows],
        },
    )
