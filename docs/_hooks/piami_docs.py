"""MkDocs hook of the piami docs: math to MathML at build time, Sphinx roles to cross-references.

Two things the site needs without fetching anything at view time:

- **Math.** ``pymdownx.arithmatex`` (generic mode) marks ``$...$`` and ``$$...$$`` in the pages;
  this hook turns each into MathML with ``latex2mathml`` after the page is rendered. Browsers draw
  MathML natively (Chromium since 109, Firefox, Safari), so no MathJax or KaTeX script is loaded.
- **Roles.** piami's docstrings cite code as Sphinx roles (``:class:`~piami.models.Transformer```,
  ``:func:`piami.train.train```, ``:mod:`piami.theory.dynamics```). A Markdown inline pattern,
  registered for the pages and for mkdocstrings' docstrings alike, makes each an *optional*
  autorefs cross-reference: a link where the target is documented, plain code where it is not
  (a private module), never a warning.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from typing import Any

from latex2mathml.converter import convert as latex_to_mathml
from markdown import Extension
from markdown.inlinepatterns import InlineProcessor
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

# -- math ------------------------------------------------------------------------------------------
# arithmatex (generic) writes <span class="arithmatex">\(...\)</span> and
# <div class="arithmatex">\[...\]</div>, with the TeX HTML-escaped.
_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)


# latex2mathml writes \log n as <mi>log</mi><mi>n</mi>, which browsers set as "logn": TeX puts a
# thin space around a function name (none before an opening parenthesis), so the hook does too.
_FUNCTION = re.compile(
    r"(</mi>|</mn>|</msub>|</msup>|</mfrac>)?"
    r"(<mi>(?:log|ln|exp|sin|cos|tan|det|dim|arg|sgn|tr)</mi>)"
    r"(?!<mo stretchy=\"false\">&#x00028;)"
)
_THIN = '<mspace width="0.1667em"></mspace>'


def _space_functions(mathml: str) -> str:
    return _FUNCTION.sub(lambda m: (m[1] + _THIN if m[1] else "") + m[2] + _THIN, mathml)


def _mathml(tex: str, display: str, where: str) -> str:
    tex = html.unescape(tex).strip()
    try:
        return _space_functions(latex_to_mathml(tex, display=display))
    except Exception as exc:  # a TeX typo must stop the strict build, naming the page
        raise PluginError(f"{where}: cannot convert math {tex!r} to MathML: {exc}") from exc


def on_page_content(html_text: str, page: Any, **_: Any) -> str:
    """Replace the math arithmatex marked with MathML (block first: it may hold no spans)."""
    where = page.file.src_uri
    html_text = _BLOCK.sub(
        lambda m: f'<div class="math">{_mathml(m[1], "block", where)}</div>', html_text
    )
    return _INLINE.sub(lambda m: _mathml(m[1], "inline", where), html_text)


# -- Sphinx roles in docstrings ----------------------------------------------------------------------
_ROLE = r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`<>]+?)`"


class _RolePattern(InlineProcessor):
    """``:class:`~a.b.C``` -> ``<autoref identifier="a.b.C" optional><code>C</code></autoref>``."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:  # noqa: N802
        short, target = m.group(1) == "~", m.group(2).strip()
        title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        el = etree.Element("autoref", {"identifier": target.lstrip("."), "optional": ""})
        code = etree.SubElement(el, "code")
        code.text = title
        return el, m.start(0), m.end(0)


class RolesExtension(Extension):
    """The Markdown extension that registers :class:`_RolePattern` before code spans."""

    def extendMarkdown(self, md: Any) -> None:  # noqa: N802
        md.inlinePatterns.register(_RolePattern(_ROLE, md), "piami-roles", 200)


@event_priority(100)  # before mkdocstrings reads the extensions it gives its docstrings
def on_config(config: Any, **_: Any) -> Any:
    """Register the roles extension for the pages and for mkdocstrings."""
    config.markdown_extensions.append(RolesExtension())
    return config
