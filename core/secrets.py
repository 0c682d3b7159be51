"""Channel secrets encrypted at rest (masking for display is :mod:`core.masking`).

Secrets are sealed with AES-256-GCM. The associated data is ``organizationId|channelId``
(:func:`channel_aad`), so a ciphertext copied into another organization's or channel's row
fails to decrypt; Fernet was not used because it has no associated data. The envelope is
text: ``v1.<kid>.<nonce>.<ciphertext>`` (base64url, no padding), where ``kid`` is a short
hash of the key that sealed it, so during a rotation overlap old rows stay readable and
:meth:`Keyring.needs_rotation` finds the rows still sealed with an old key.

Keys come from ``NEWSMON_ENCRYPTION_KEYS``, comma-separated, newest first
(:func:`parse_keys`). Error messages never contain plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError, NewsmonError, ValidationError

#: The setting :func:`parse_keys` reads; named in its errors.
KEYS_SETTING = "NEWSMON_ENCRYPTION_KEYS"
#: Envelope format version, the first dot-separated field.
ENVELOPE_VERSION = "v1"
#: AES-256 key size in bytes.
KEY_BYTES = 32
#: GCM nonce size in bytes (96 bits, the size GCM is designed for), random per secret.
NONCE_BYTES = 12
#: GCM authentication tag size in bytes, appended to the ciphertext.
TAG_BYTES = 16
#: Bytes of SHA-256 kept as a key id (8 base64url characters; collisions are checked).
KID_BYTES = 6
#: Domain separation so a kid is not a bare hash of the key.
_KID_CONTEXT = b"newsmon-secrets-kid:"

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


class SecretsError(NewsmonError):
    """A secret could not be sealed or opened: malformed envelope, unknown key, failed
    authentication (wrong key, tampered, or bound to another organization/channel)."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decode base64url without padding; raise ValueError on anything else."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    # The decoder ignores stray trailing bits; refuse them so each value has one spelling.
    if _b64encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def key_id(key: bytes) -> str:
    """Return the short id recorded in envelopes sealed with ``key``."""
    return _b64encode(hashlib.sha256(_KID_CONTEXT + key).digest()[:KID_BYTES])


def generate_key_string() -> str:
    """Return a new random key as base64url, ready for ``NEWSMON_ENCRYPTION_KEYS``."""
    return _b64encode(os.urandom(KEY_BYTES))


def channel_aad(organization_id: str, channel_id: str) -> bytes:
    """Associated data binding a secret to ``organizationId|channelId``."""
    if "|" in organization_id or "|" in channel_id:
        raise ValidationError("ids must not contain '|'", field="channelId")
    return f"{organization_id}|{channel_id}".encode()


class Keyring:
    """The encryption keys, newest first: seals with the newest, opens with any.

    Parameters:
      keys: base64url (unpadded) 32-byte keys, newest first; at least one.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretsError("no encryption key given")
        self._ciphers: dict[str, AESGCM] = {}
        self._raw: dict[str, bytes] = {}
        self._order: list[str] = []
        for position, text in enumerate(keys, start=1):
            try:
                raw = _b64decode(text.strip())
            except ValueError:
                raw = b""
            if len(raw) != KEY_BYTES:
                raise SecretsError(
                    f"key {position} of {len(keys)} is not {KEY_BYTES} bytes of base64url"
                )
            kid = key_id(raw)
            if kid in self._ciphers:
                raise SecretsError(f"key {position} of {len(keys)} repeats an earlier key")
            self._ciphers[kid] = AESGCM(raw)
            self._raw[kid] = raw
            self._order.append(kid)

    def __repr__(self) -> str:
        return f"Keyring(kids={self._order!r})"

    @property
    def newest_kid(self) -> str:
        """Id of the key new secrets are sealed with."""
        return self._order[0]

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of all keys, newest first."""
        return tuple(self._order)

    def derive(self, purpose: bytes) -> tuple[bytes, ...]:
        """One key per encryption key, newest first, derived for ``purpose`` (HKDF-SHA256):
        signing keys that share the encryption keys' rotation but never their bytes."""
        return tuple(
            HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
                self._raw[kid]
            )
            for kid in self._order
        )

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        """Seal ``plaintext`` with the newest key and return the envelope."""
        kid = self.newest_kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext.encode("utf-8"), aad)
        return f"{ENVELOPE_VERSION}.{kid}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def decrypt(self, envelope: str, aad: bytes) -> str:
        """Open an envelope sealed for ``aad`` with any key of the ring."""
        kid, nonce, sealed = _split_envelope(envelope)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretsError(f"secret was sealed with key {kid}, which is not configured")
        try:
            return cipher.decrypt(nonce, sealed, aad).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise SecretsError(
                "secret failed authentication (tampered, or bound to another organization "
                "or channel)"
            ) from None

    def needs_rotation(self, envelope: str) -> bool:
        """Say whether ``envelope`` was sealed with a key other than the newest."""
        return _split_envelope(envelope)[0] != self.newest_kid

    def rotate(self, envelope: str, aad: bytes) -> str:
        """Return ``envelope`` sealed with the newest key (unchanged if it already is).

        The envelope is always opened first, so a bad row raises instead of passing through.
        """
        plaintext = self.decrypt(envelope, aad)
        if not self.needs_rotation(envelope):
            return envelope
        return self.encrypt(plaintext, aad)


def _split_envelope(envelope: str) -> tuple[str, bytes, bytes]:
    parts = envelope.split(".")
    if len(parts) != 4 or parts[0] != ENVELOPE_VERSION:
        raise SecretsError(f"secret envelope is malformed (expected {ENVELOPE_VERSION}.kid.n.c)")
    _, kid, nonce_text, sealed_text = parts
    try:
        nonce, sealed = _b64decode(nonce_text), _b64decode(sealed_text)
    except ValueError:
        raise SecretsError("secret envelope is malformed (bad base64url)") from None
    if not _B64URL_RE.fullmatch(kid) or len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
        raise SecretsError("secret envelope is malformed (bad kid, nonce or length)")
    return kid, nonce, sealed


def is_envelope(value: str) -> bool:
    """Cheap check that ``value`` has the shape of a sealed secret."""
    try:
        _split_envelope(value)
    except SecretsError:
        return False
    return True


def parse_keys(value: str) -> Keyring:
    """Build the keyring from ``NEWSMON_ENCRYPTION_KEYS`` (comma-separated, newest first)."""
    entries = [entry.strip() for entry in value.split(",")]
    if not any(entries):
        raise ConfigError(
            KEYS_SETTING, "no key given; create one with `newsmon secrets generate-key`"
        )
    if not all(entries):
        raise ConfigError(KEYS_SETTING, "empty entry between commas")
    try:
        return Keyring(entries)
    except SecretsError as exc:
        raise ConfigError(KEYS_SETTING, str(exc)) from None


def _map_fields(
    config: Mapping[str, object], fields: Collection[str], change: Callable[[str, object], object]
) -> dict[str, object]:
    """Return a copy of ``config`` with ``change(name, value)`` applied to the named fields
    that are present and not None."""
    changed = dict(config)
    for name in fields:
        value = changed.get(name)
        if value is not None:
            changed[name] = change(name, value)
    return changed


def seal_fields(
    config: Mapping[str, object], fields: Collection[str], keyring: Keyring, aad: bytes
) -> dict[str, object]:
    """Return a copy of ``config`` with the named string fields sealed (missing/None kept)."""

    def seal(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise ValidationError("must be a string", field=name)
        return keyring.encrypt(value, aad)

    return _map_fields(config, fields, seal)


def open_fields(
    config: Mapping[str, object], fields: Collection[str], keyring: Keyring, aad: bytes
) -> dict[str, object]:
    """Return a copy of ``config`` with the named sealed fields opened (missing/None kept)."""

    def open_(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise SecretsError(f"sealed field {name} is not a string")
        return keyring.decrypt(value, aad)

    return _map_fields(config, fields, open_)
