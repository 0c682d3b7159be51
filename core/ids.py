"""Text primary keys: time-ordered, URL-safe, unique without coordination."""

from __future__ import annotations

import secrets
import time

#: Crockford base32 alphabet (no I, L, O, U), as ULID uses.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Characters of an id: 10 for the millisecond timestamp, 16 for 80 random bits.
ID_LENGTH = 26


def new_id() -> str:
    """A ULID-shaped id: sorts by creation time, so cursors over ids follow time order."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(ID_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
