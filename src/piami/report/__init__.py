"""Reports: ``result.json``, PNG figures and a self-contained ``report.html`` for each run."""

from piami.report.html import render_html, save_result

__all__ = ["render_html", "save_result"]
