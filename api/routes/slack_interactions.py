"""Slack's Interactivity Request URL: the feedback buttons of Slack digests.

No API key: Slack signs every request with the app's signing secret
(``NEWSMON_SLACK_SIGNING_SECRET``; ``X-Slack-Signature`` is ``v0=`` and the hex
HMAC-SHA256 of ``v0:{timestamp}:{body}``, checked by :mod:`slack_sdk.signature` in
constant time, and refused past five minutes), and each button's ``value`` is the signed
feedback token of a digest link, recorded as ``/d/feedback`` records it
(:func:`core.delivery.link_actions.use_feedback_link`: same verification, expiry and one
use). Without a signing secret or a public address the route does not exist (404).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from slack_sdk.signature import Clock, SignatureVerifier

from api.deps import SessionDep, client_address
from api.routes.channels import send_context
from core.delivery.digest_links import LinkError
from core.delivery.link_actions import use_feedback_link
from core.delivery.render_slack import FEEDBACK_ACTION

#: Path of the route (the Slack app's Interactivity Request URL, below the public URL).
INTERACTIONS_PATH = "/slack/interactions"
#: Buttons of one request acted on (a digest message has one per story, a click one).
MAX_ACTIONS = 10

router = APIRouter(include_in_schema=False)


class _AppClock(Clock):
    """The app's clock (tests move it) as :class:`SignatureVerifier` reads time."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


def _verified(request: Request, secret: str, body: bytes) -> bool:
    verifier = SignatureVerifier(secret, clock=_AppClock(request.app.state.clock))
    try:
        return verifier.is_valid_request(body, dict(request.headers))
    except ValueError:  # a timestamp that is no number, a body that is no UTF-8
        return False


def _feedback_values(body: bytes) -> list[str]:
    """The ``value`` of each of our feedback buttons in a ``block_actions`` payload."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload: Any = json.loads(form["payload"][0])
    except (ValueError, KeyError):
        raise HTTPException(400, "expected a form field payload holding JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "expected a block_actions payload")
    actions = payload.get("actions")
    if payload.get("type") != "block_actions" or not isinstance(actions, list):
        raise HTTPException(400, "expected a block_actions payload")
    values = []
    for action in actions[:MAX_ACTIONS]:
        if not isinstance(action, dict) or not isinstance(action.get("value", ""), str):
            raise HTTPException(400, "malformed action")
        if str(action.get("action_id", "")).startswith(FEEDBACK_ACTION):
            values.append(action.get("value", ""))
    return values


async def _signed_body(request: Request) -> bytes:
    """The request's body once Slack's signature over it holds (checked before any
    database work)."""
    secret = request.app.state.settings.slack_signing_secret.get_secret_value()
    if not secret or send_context(request).links is None:
        raise HTTPException(404, "Slack interactivity is not configured")
    body = await request.body()  # at most api.middleware.MAX_BODY_BYTES (else 413)
    if not _verified(request, secret, body):
        raise HTTPException(401, "invalid Slack signature")
    return body


@router.post(INTERACTIONS_PATH)
def interactions(
    request: Request, body: Annotated[bytes, Depends(_signed_body)], session: SessionDep
) -> dict[str, Any]:
    """Record each feedback button of the signed payload, as its link would, once."""
    links = send_context(request).links
    assert links is not None  # checked by _signed_body
    said = []
    for value in _feedback_values(body):
        try:
            claim = links.verify(value, "feedback", now=request.app.state.clock())
        except LinkError as exc:
            said.append(f"Nothing changed: {exc}.")
            continue
        used = use_feedback_link(
            session, claim, request_id=request.state.request_id, ip_address=client_address(request)
        )
        said.append(used.message)
    return {"response_type": "ephemeral", "replace_original": False, "text": " ".join(said)}
