"""Project guidelines (Markdown) as HTML the rater page can insert as is.

Rendered server-side with markdown-it-py (CommonMark): raw HTML in the source is escaped,
not passed through; links keep only safe schemes (markdown-it drops ``javascript:``,
``vbscript:``, ``file:`` and ``data:``) and open in a new tab without a referrer; images
are off, so guidelines cannot make the page fetch anything from elsewhere.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough").disable("image")

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


@lru_cache(maxsize=256)
def render_guidelines(markdown: str) -> str:
    """Safe HTML for `markdown` (cached: a project's guidelines are read on every page load)."""
    return _parser().render(markdown or "")
