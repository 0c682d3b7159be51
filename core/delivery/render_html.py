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

from core.delivery.presenting import ShownDigest
from core.delivery.template_env import environment

#: Invisible characters after the preheader, so clients do not fill the preview line
#: with the start of the body (zero-width non-joiner and no-break space pairs).
PREHEADER_FILLER = "\u200c\u00a0" * 60


@cache
def _inliner() -> css_inline.CSSInliner:
    # Never fetch a stylesheet: a digest is rendered from its own template alone.
    return css_inline.CSSInliner(load_remote_stylesheets=False)


def render_html(shown: ShownDigest) -> str:
    """A complete HTML document with inline styles."""
    page = (
        environment().get_template("digest.html").render(d=shown, preheader_filler=PREHEADER_FILLER)
    )
    return _inliner().inline(page)


def render_markdown(shown: ShownDigest) -> str:
    """The digest as CommonMark: a heading, then one list item per story."""
    return environment().get_template("digest.md").render(d=shown)
