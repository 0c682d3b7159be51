"""HTML and Markdown of a digest (the email's HTML part, the ``file`` channel, apprise).

Both are jinja2 templates (``templates/digest.html``, ``templates/digest.md``) over a
:class:`~core.delivery.presenting.ShownDigest`. The HTML follows what renders in mail
clients: a 600 px table layout that narrows on phones, CSS inlined into ``style``
attributes by css-inline (only the media queries stay, in a ``<style>`` marked
``data-css-inline="keep"``: the phone layout and dark-mode colours, for the clients
that read them), a hidden preheader, no external
images, fonts or stylesheets. Every story field is text, escaped by the template's
autoescaping; links only for http(s) URLs.
"""

from __future__ import annotations

from functools import cache

import css_inline

from core.delivery.presenting import ShownDigest, abridge
from core.delivery.template_env import environment

#: Longest HTML part of an email: Gmail clips a message past 102 KB behind a "View
#: entire message" link, so past this the last stories are shown in brief.
MAX_EMAIL_HTML_BYTES = 95_000
#: Invisible characters after the preheader, so clients do not fill the preview line
#: with the start of the body (zero-width non-joiner and no-break space pairs).
PREHEADER_FILLER = "\u200c\u00a0" * 60


@cache
def _inliner() -> css_inline.CSSInliner:
    # Never fetch a stylesheet: a digest is rendered from its own template alone.
    return css_inline.CSSInliner(load_remote_stylesheets=False, minify_css=True)


def render_html(shown: ShownDigest) -> str:
    """A complete HTML document with inline styles."""
    page = (
        environment().get_template("digest.html").render(d=shown, preheader_filler=PREHEADER_FILLER)
    )
    return _inliner().inline(page)


def render_markdown(shown: ShownDigest) -> str:
    """The digest as CommonMark: a heading, then one list item per story."""
    return environment().get_template("digest.md").render(d=shown)


def render_email_html(shown: ShownDigest, max_bytes: int = MAX_EMAIL_HTML_BYTES) -> str:
    """:func:`render_html` within ``max_bytes``: past it, the last stories are shown in
    brief (title, outlet, age: no snippet, reason or feedback links), as few as needed
    (the plain-text part still has them all)."""
    page = render_html(shown)
    keep = sum(len(cluster.stories) for cluster in shown.clusters)
    while len(page.encode("utf-8")) > max_bytes and keep > 0:
        # Shrink in proportion to the excess: two or three renders at most in practice.
        keep = min(keep - 1, keep * max_bytes // len(page.encode("utf-8")))
        page = render_html(abridge(shown, keep))
    return page
