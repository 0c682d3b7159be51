"""Ids: ULID-shaped, and sorted in the order one process made them."""

from __future__ import annotations

import threading

from core.ids import ID_LENGTH, new_id


def test_ids_made_in_one_millisecond_still_sort_in_the_order_they_were_made() -> None:
    made = [new_id() for _ in range(5000)]  # many per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(i) == ID_LENGTH and i.isalnum() and i.isupper() for i in made)


def test_ids_of_concurrent_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(m,)) for m in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for m in made for i in m]
    assert len(set(every)) == len(every)
    assert all(m == sorted(m) for m in made)
