"""The jinja2 environment of digest templates (``core/delivery/templates``) and the
escaping each medium needs.

``.html`` templates autoescape (every story field is text); ``.txt`` and ``.md`` do not,
and the Markdown template passes each field through :func:`escape_markdown`, which
escapes only what would change the rendering: ``127.0.0.1`` and ``daily-planet`` stay
as they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from core.delivery.model import AlsoReported, safe_link
from core.delivery.presenting import Piece

#: Characters that start or end Markdown inline syntax anywhere in a line: emphasis,
#: code, links and images (``!`` only matters before ``[``, escaped here), raw HTML
#: (``<``), GFM strikethrough, the escape character itself, and ``&`` where it would
#: begin an entity (``&amp;``). Text never spans lines here, so ``|`` cannot make a table.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<~]|&(?=#?\w+;))")
#: What makes a line a block when text begins one: a heading, quote, list item, thematic
#: break or setext underline (``*``, ``_``, `` ` `` and ``<`` are escaped inline already).
_BLOCK_START = re.compile(
    r"^(\s*)(#{1,6}(?=\s|$)|>|[+-](?=\s|$)|\d{1,9}(?=[.)](?:\s|$))|=+\s*$|-[\s-]*$)"
)


def _block_safe(line: str) -> str:
    """``line`` with a backslash before a marker that would make it a block."""
    match = _BLOCK_START.match(line)
    if match is None:
        return line
    marker = match.group(2)
    # "1." or "1)": escape the delimiter after the number; anything else: the marker.
    at = match.end(2) if marker.isdigit() else match.end(1)
    return line[:at] + "\\" + line[at:]


def escape_markdown(text: str) -> str:
    """``text`` as CommonMark (GFM) that renders as the text it is, on one line."""
    return _block_safe(_INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split())))


def markdown_url(url: str) -> str:
    """A link destination in angle brackets may hold spaces and parentheses, not ``<``,
    ``>`` or line breaks: those are percent-encoded."""
    return url.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20").replace("\n", "")


def _md_snippet(pieces: Sequence[Piece]) -> str:
    """A snippet on one line of Markdown, the query's terms in bold."""
    parts = []
    for piece in pieces:
        text = _INLINE_SPECIAL.sub(r"\\\1", piece.text)
        parts.append(f"**{text}**" if piece.hit else text)
    return _block_safe("".join(parts))


def _md_outlet(also: AlsoReported) -> str:
    href = safe_link(also.url)
    label = escape_markdown(also.name)
    return f"[{label}](<{markdown_url(href)}>)" if href else label


@cache
def environment() -> Environment:
    """The shared environment (templates are compiled once per process)."""
    env = Environment(
        loader=PackageLoader("core.delivery", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["md_url"] = markdown_url
    env.filters["md_snippet"] = _md_snippet
    env.filters["md_outlet"] = _md_outlet
    env.globals["safe_link"] = safe_link
    return env
