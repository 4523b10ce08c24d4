"""Exercise text as HTML: Markdown with $math$, raw HTML escaped, unsafe links refused.

Math is left as TeX inside `<span class="math inline">` / `<div class="math block">`
and typeset in the browser by KaTeX (with its default `trust: false`).
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markupsafe import Markup
from mdit_py_plugins.dollarmath import dollarmath_plugin


@cache
def _md() -> MarkdownIt:
    # "html": False escapes every tag an author (or a hostile import) writes; markdown-it's
    # link validation refuses javascript:, vbscript:, file: and data: URLs.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).use(
        dollarmath_plugin, double_inline=True
    )


def markdown(text: str | None) -> Markup:
    """Block Markdown (paragraphs, lists, code, display math) as safe HTML."""
    return Markup(_md().render(text or ""))


def markdown_inline(text: str | None) -> Markup:
    """One line of Markdown (a part's label, a feedback message) as safe inline HTML."""
    return Markup(_md().renderInline(text or ""))
