"""The public pages behind a digest's one-click links: story feedback and unsubscribe.

No API key: the signed token in the link is the authority (see
:mod:`core.delivery.digest_links`). A GET only shows what the link will do and a button
that POSTs it, because mail scanners and link previews fetch links on their own; the
POST does it, once. An unsubscribe POST is also what a mail client sends for RFC 8058's
one-click ``List-Unsubscribe-Post``. Tokens travel in the URL, so these pages send no
referrer and are never cached or framed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import SessionDep, client_address
from api.routes.channels import send_context
from core.delivery.digest_links import (
    FEEDBACK_PATH,
    MAX_TOKEN_CHARS,
    UNSUBSCRIBE_PATH,
    DigestLinks,
    LinkClaim,
    LinkError,
    Purpose,
)
from core.delivery.link_actions import LinkOutcome, use_feedback_link, use_unsubscribe_link

#: Headers of every page here: nothing loads from elsewhere, the token leaks nowhere.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-robots-tag": "noindex",
}
#: Status of each link outcome's page.
STATUS = {"done": 200, "used": 200, "gone": 410}

router = APIRouter(prefix="/d", include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

Token = Annotated[str, Query(alias="t", max_length=MAX_TOKEN_CHARS)]


def _links(request: Request) -> DigestLinks | None:
    return send_context(request).links


LinksDep = Annotated[DigestLinks | None, Depends(_links)]


def _page(status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("action", None)
    html = _templates.get_template("digest_link.html").render(**context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _verify(
    request: Request, links: DigestLinks | None, token: str, purpose: Purpose
) -> LinkClaim | HTMLResponse:
    if links is None:
        return _page(404, heading="Link not available", message="This server sends no such links.")
    try:
        return links.verify(token, purpose, now=request.app.state.clock())
    except LinkError as exc:
        return _page(400, heading="Link not valid", message=f"Nothing changed: {exc}.")


def _action(path: str, token: str) -> str:
    return f"{path}?{urlencode({'t': token})}"


def _done(outcome: LinkOutcome, heading: str) -> HTMLResponse:
    return _page(STATUS[outcome.result], heading=heading, message=outcome.message)


@router.get("/feedback")
def feedback_page(request: Request, links: LinksDep, t: Token = "") -> HTMLResponse:
    """What the feedback link will record, and the button that records it."""
    claim = _verify(request, links, t, "feedback")
    if isinstance(claim, HTMLResponse):
        return claim
    label = "relevant" if claim.label == "relevant" else "not relevant"
    return _page(
        heading=f"Mark this story {label}?",
        message=f"This teaches the alert what to send you: stories like it will rank "
        f"{'higher' if claim.label == 'relevant' else 'lower'}.",
        action=_action(FEEDBACK_PATH, t),
        button=f"Yes, {label}",
    )


@router.post("/feedback")
def feedback(request: Request, links: LinksDep, session: SessionDep, t: Token = "") -> HTMLResponse:
    """Record the link's label on its story (once)."""
    claim = _verify(request, links, t, "feedback")
    if isinstance(claim, HTMLResponse):
        return claim
    outcome = use_feedback_link(
        session, claim, request_id=request.state.request_id, ip_address=client_address(request)
    )
    return _done(outcome, "Feedback")


@router.get("/unsubscribe")
def unsubscribe_page(request: Request, links: LinksDep, t: Token = "") -> HTMLResponse:
    """Who will be unsubscribed, and the button that does it."""
    claim = _verify(request, links, t, "unsubscribe")
    if isinstance(claim, HTMLResponse):
        return claim
    return _page(
        heading="Unsubscribe?",
        message=f"{claim.recipient} will no longer receive this alert's digests.",
        action=_action(UNSUBSCRIBE_PATH, t),
        button="Unsubscribe",
    )


@router.post("/unsubscribe")
def unsubscribe(
    request: Request, links: LinksDep, session: SessionDep, t: Token = ""
) -> HTMLResponse:
    """Remove the link's recipient from its channel (RFC 8058 one-click, or the button)."""
    claim = _verify(request, links, t, "unsubscribe")
    if isinstance(claim, HTMLResponse):
        return claim
    outcome = use_unsubscribe_link(
        session, claim, request_id=request.state.request_id, ip_address=client_address(request)
    )
    return _done(outcome, "Unsubscribe")
