"""Signed one-click links of a digest: "Relevant" / "Not relevant" on each story, and
the recipient's unsubscribe.

A link carries a token, signed with HMAC-SHA256 by :mod:`itsdangerous` under a key
derived from the encryption keys (:meth:`core.secrets.Keyring.derive`, so rotating
``NEWSMON_ENCRYPTION_KEYS`` rotates these too, and a token signed with a retired key
stops working once that key is dropped). A token names its purpose (the signing salt:
a feedback token is no unsubscribe token), its organization, channel and story or
recipient, and when it expires. Tokens are used once (``digestLinkUses``, see
:mod:`core.delivery.link_actions`), so a replayed link changes nothing.

Links need the public address of the web process (``NEWSMON_PUBLIC_URL``): without it
a digest carries no feedback or unsubscribe links (there is nowhere to send the reader).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from core.errors import NewsmonError

#: How long a feedback link works after the digest was sent.
FEEDBACK_LINK_TTL = timedelta(days=30)
#: How long an unsubscribe link works (mail is read late; RFC 8058 asks for long-lived).
UNSUBSCRIBE_LINK_TTL = timedelta(days=365)
#: ``info`` of the key derivation: these keys sign digest links and nothing else.
LINK_KEY_PURPOSE = b"newsmon digest links v1"
#: Paths of the public routes (``api.routes.digest_links``).
FEEDBACK_PATH = "/d/feedback"
UNSUBSCRIBE_PATH = "/d/unsubscribe"
#: Longest token accepted (a real one is about 200 characters).
MAX_TOKEN_CHARS = 1000

Purpose = Literal["feedback", "unsubscribe"]
Label = Literal["relevant", "not_relevant"]


class LinkError(NewsmonError):
    """A link token that is not ours, was altered, is malformed or has expired."""


@dataclass(frozen=True)
class LinkClaim:
    """What a verified token says (``story`` and ``label`` for feedback, ``recipient``
    for unsubscribe); ``token_hash`` identifies the token for one-time use."""

    purpose: Purpose
    organization_id: str
    channel_id: str
    expires_at: datetime
    token_hash: str
    story_id: str = ""
    label: str = ""
    recipient: str = ""


class DigestLinks:
    """Makes and checks the signed links of digests.

    Parameters:
      base_url: ``NEWSMON_PUBLIC_URL`` (scheme, host, port; no trailing slash).
      keys: signing keys, newest first (newest signs, any verifies).
    """

    def __init__(self, base_url: str, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("no signing key")
        self.base_url = base_url.rstrip("/")
        # itsdangerous signs with the *last* key of the list and verifies with any.
        ordered = list(reversed(keys))
        self._serializers: dict[str, URLSafeSerializer] = {
            purpose: URLSafeSerializer(ordered, salt=f"newsmon-digest-{purpose}")
            for purpose in ("feedback", "unsubscribe")
        }

    def _url(self, path: str, purpose: Purpose, payload: dict[str, Any]) -> str:
        token = self._serializers[purpose].dumps(payload)
        return f"{self.base_url}{path}?{urlencode({'t': token})}"

    def feedback_url(
        self,
        organization_id: str,
        channel_id: str,
        story_id: str,
        label: Label,
        *,
        now: datetime,
    ) -> str:
        """The link recording ``label`` for the story, from this channel's digest."""
        expires = int((now + FEEDBACK_LINK_TTL).timestamp())
        payload = {"o": organization_id, "c": channel_id, "s": story_id, "l": label, "x": expires}
        return self._url(FEEDBACK_PATH, "feedback", payload)

    def unsubscribe_url(
        self, organization_id: str, channel_id: str, recipient: str, *, now: datetime
    ) -> str:
        """The link removing ``recipient`` from the channel's list."""
        expires = int((now + UNSUBSCRIBE_LINK_TTL).timestamp())
        payload = {"o": organization_id, "c": channel_id, "r": recipient, "x": expires}
        return self._url(UNSUBSCRIBE_PATH, "unsubscribe", payload)

    def verify(self, token: str, purpose: Purpose, *, now: datetime) -> LinkClaim:
        """The claim of a genuine, unexpired token of ``purpose``; else :class:`LinkError`."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise LinkError("this link is incomplete or not a newsmon link")
        try:
            payload = self._serializers[purpose].loads(token)
        except BadSignature:
            raise LinkError("this link is not a valid newsmon link") from None
        try:
            expires = datetime.fromtimestamp(int(payload["x"]), tz=now.tzinfo)
            claim = LinkClaim(
                purpose=purpose,
                organization_id=str(payload["o"]),
                channel_id=str(payload["c"]),
                expires_at=expires,
                token_hash=hashlib.sha256(token.encode("ascii")).hexdigest(),
                story_id=str(payload.get("s", "")),
                label=str(payload.get("l", "")),
                recipient=str(payload.get("r", "")),
            )
        except (KeyError, TypeError, ValueError):
            raise LinkError("this link is not a valid newsmon link") from None
        if purpose == "feedback" and (
            not claim.story_id or claim.label not in ("relevant", "not_relevant")
        ):
            raise LinkError("this link is not a valid newsmon link")
        if purpose == "unsubscribe" and not claim.recipient:
            raise LinkError("this link is not a valid newsmon link")
        if now >= expires:
            raise LinkError("this link has expired")
        return claim
