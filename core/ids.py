"""Text primary keys: time-ordered, URL-safe, unique without coordination."""

from __future__ import annotations

import secrets
import threading
import time

#: Crockford base32 alphabet (no I, L, O, U), as ULID uses.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Characters of an id: 10 for the millisecond timestamp, 16 for 80 random bits.
ID_LENGTH = 26
_RANDOM_BITS = 80

_lock = threading.Lock()
_last = 0  # the last id made in this process, as a number


def new_id() -> str:
    """A ULID-shaped id: sorts by creation time, so cursors over ids follow time order.

    Monotonic within a process (as ULID's monotonic mode): an id made in the same
    millisecond as the one before (or after the clock stepped back) is that one plus one,
    so a process's ids sort in the order it made them.
    """
    global _last  # noqa: PLW0603 (the process's one sequence)
    fresh = (time.time_ns() // 1_000_000) << _RANDOM_BITS | secrets.randbits(_RANDOM_BITS)
    with _lock:
        if fresh >> _RANDOM_BITS <= _last >> _RANDOM_BITS:
            fresh = _last + 1
        _last = fresh
    value = fresh
    chars = []
    for _ in range(ID_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
