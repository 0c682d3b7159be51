"""Signed JSON webhooks, per the Standard Webhooks specification.

Headers: ``webhook-id`` (the delivery id: the same on every attempt and on replay, so
the receiver can deduplicate), ``webhook-timestamp`` (seconds, new per attempt) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` per secret,
space-separated. During a rotation the channel has ``secret`` and ``previousSecret`` and
both sign, so receivers holding either verify. Sent through the guarded client:
private targets are refused unless allowlisted and redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

from core.delivery.channels import WEBHOOK_SECRET_PREFIX, WebhookConfig
from core.delivery.model import DigestView
from core.delivery.outcome import Outcome, from_fetch_error, from_http_status
from core.delivery.render_json import render_json
from core.errors import FetchError
from core.fetch import GuardedClient

#: Content type of the payload.
CONTENT_TYPE = "application/json"


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: one ``v1,`` signature per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(signatures)


def webhook_headers(
    config: WebhookConfig, delivery_id: str, body: bytes, now: datetime
) -> dict[str, str]:
    secrets = [config.secret] + ([config.previousSecret] if config.previousSecret else [])
    timestamp = int(now.timestamp())
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, delivery_id, timestamp, body),
    }


def send_webhook(
    config: WebhookConfig,
    digest: DigestView,
    *,
    delivery_id: str,
    client: GuardedClient,
    now: datetime,
) -> Outcome:
    """POST the digest's JSON to the channel's URL; one attempt."""
    body = render_json(digest)
    headers = webhook_headers(config, delivery_id, body, now)
    try:
        result = client.fetch(
            config.url, method="POST", headers=headers, content=body, follow_redirects=False
        )
    except FetchError as exc:
        return from_fetch_error(exc)
    return from_http_status(result.status, result.headers, result.body, now)
