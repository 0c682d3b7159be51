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

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from itsdangerous import BadSignature, Signer

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
#: Longest token accepted (a real one is about 140 characters).
MAX_TOKEN_CHARS = 1000

Purpose = Literal["feedback", "unsubscribe"]
Label = Literal["relevant", "not_relevant"]
#: A label as one letter in a token, and back.
LABEL_CODES: dict[str, str] = {"relevant": "r", "not_relevant": "n"}
LABELS = {code: label for label, code in LABEL_CODES.items()}


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


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


class DigestLinks:
    """Makes and checks the signed links of digests.

    A token is its fields joined by ``.`` (ids are URL-safe; a recipient's address is
    base64url) and an HMAC-SHA256 signature: compact, because a 50-story email carries
    100 of them and mail clients clip long messages (Gmail past 102 KB).

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
        self._signers: dict[str, Signer] = {
            purpose: Signer(ordered, salt=f"newsmon-digest-{purpose}", digest_method=hashlib.sha256)
            for purpose in ("feedback", "unsubscribe")
        }

    def _token(self, purpose: Purpose, fields: Sequence[str], expires: datetime) -> str:
        payload = ".".join([*fields, format(int(expires.timestamp()), "x")])
        return self._signers[purpose].sign(payload).decode("ascii")

    def _url(self, path: str, token: str) -> str:
        return f"{self.base_url}{path}?{urlencode({'t': token})}"

    def feedback_token(
        self,
        organization_id: str,
        channel_id: str,
        story_id: str,
        label: Label,
        *,
        now: datetime,
    ) -> str:
        """The token recording ``label`` for the story, from this channel's digest (what
        a feedback link and a Slack feedback button carry)."""
        fields = [organization_id, channel_id, story_id, LABEL_CODES[label]]
        return self._token("feedback", fields, now + FEEDBACK_LINK_TTL)

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
        token = self.feedback_token(organization_id, channel_id, story_id, label, now=now)
        return self.link_of(token)

    def link_of(self, feedback_token: str) -> str:
        """The feedback link carrying a :meth:`feedback_token`."""
        return self._url(FEEDBACK_PATH, feedback_token)

    def unsubscribe_url(
        self, organization_id: str, channel_id: str, recipient: str, *, now: datetime
    ) -> str:
        """The link removing ``recipient`` from the channel's list."""
        fields = [organization_id, channel_id, _b64(recipient)]
        token = self._token("unsubscribe", fields, now + UNSUBSCRIBE_LINK_TTL)
        return self._url(UNSUBSCRIBE_PATH, token)

    def verify(self, token: str, purpose: Purpose, *, now: datetime) -> LinkClaim:
        """The claim of a genuine, unexpired token of ``purpose``; else :class:`LinkError`."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise LinkError("this link is incomplete or not a newsmon link")
        try:
            payload = self._signers[purpose].unsign(token).decode("ascii")
        except BadSignature:
            raise LinkError("this link is not a valid newsmon link") from None
        fields = payload.split(".")
        try:
            expires = datetime.fromtimestamp(int(fields[-1], 16), tz=now.tzinfo)
            if purpose == "feedback":
                organization_id, channel_id, story_id, code, _ = fields
                claim = LinkClaim(
                    purpose,
                    organization_id,
                    channel_id,
                    expires,
                    _token_hash(token),
                    story_id=story_id,
                    label=LABELS[code],
                )
            else:
                organization_id, channel_id, recipient, _ = fields
                claim = LinkClaim(
                    purpose,
                    organization_id,
                    channel_id,
                    expires,
                    _token_hash(token),
                    recipient=_unb64(recipient),
                )
        except (KeyError, ValueError, UnicodeDecodeError):  # signed by us: a bug or old layout
            raise LinkError("this link is not a valid newsmon link") from None
        if now >= expires:
            raise LinkError("this link has expired")
        return claim


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()
