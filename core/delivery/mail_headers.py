"""Text that goes into an email header, checked the way the message will be built.

A header value must hold no line break or other control character, neither as written
nor once its RFC 2047 encoded words are decoded: Python's email package decodes
``=?utf-8?q?=0D=0ABcc:_x?=`` when the header is set and writes the decoded CR LF into the
message, which adds a header of the sender's choosing. Channel configs are checked with
:func:`header_problem` when saved, and :func:`core.delivery.render_email.render_email`
checks every header again when it builds a message.
"""

from __future__ import annotations

import unicodedata
from email.policy import SMTP

#: Unicode categories refused in header text: controls (CR, LF, NUL, ...) and the line
#: and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def refused_character(text: str) -> str | None:
    """The first control character or line break in ``text``, or None."""
    return next((c for c in text if unicodedata.category(c) in REFUSED_CATEGORIES), None)


def header_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be the ``name`` header of a message (None: it can)."""
    bad = refused_character(value)
    if bad is None:
        try:
            bad = refused_character(str(SMTP.header_factory(name, value)))
        except Exception as exc:  # whatever the email package cannot parse is no header
            return f"is not a valid {name} header: {exc}"
    if bad is not None:
        return f"must not contain line breaks or control characters (found {bad!r})"
    return None
