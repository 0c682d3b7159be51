"""What the outbound guard's audit hook costs: `.venv/bin/python -m bench.outbound_guard`.

An audit hook cannot be removed, so each case runs in a fresh interpreter:

- ``event``: an audited call that is not a socket event (``sys._getframe``, which logging
  makes on every record), without a hook, with a hook that does nothing (the floor any
  Python audit hook pays), with the guard's hook, and with it inside a scope;
- ``check``: the hook's work on one ``socket.connect`` event inside a scope that allows
  it (parse the address, classify it, walk the scopes), called directly: a real connect
  to loopback costs tens of microseconds more and varies too much to show it.

Figures are the median of ``ROUNDS`` rounds, in nanoseconds.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from core.fetch import GuardPolicy, outbound_guard
from core.fetch.outbound_guard import _audit, install

#: Rounds per case; the median is reported.
ROUNDS = 5
#: Audited calls per round.
EVENTS = 1_000_000
#: Checks per round.
CHECKS = 100_000
#: Loopback allowed, so the connect case measures the check, not a refusal.
POLICY = GuardPolicy.from_allowlist(["127.0.0.1"])


def _events() -> float:
    getframe = sys._getframe
    started = time.perf_counter_ns()
    for _ in range(EVENTS):
        getframe()
    return (time.perf_counter_ns() - started) / EVENTS


def _checks() -> float:
    sock = socket.socket()
    args = (sock, ("127.0.0.1", 443))
    started = time.perf_counter_ns()
    for _ in range(CHECKS):
        _audit("socket.connect", args)
    elapsed = time.perf_counter_ns() - started
    sock.close()
    return elapsed / CHECKS


def run_case(case: str) -> float:
    """One round of ``case`` in this interpreter."""
    kind, _, mode = case.partition(":")
    if mode in ("installed", "scope"):
        install()
    elif mode == "trivial":
        sys.addaudithook(lambda event, args: None)  # the floor any Python hook pays
    measure = _events if kind == "event" else _checks
    if mode == "scope":
        with outbound_guard(POLICY):
            return measure()
    return measure()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", help="run one round of one case (internal)")
    args = parser.parse_args()
    if args.case:
        print(run_case(args.case))
        return
    cases = [
        "event:none",
        "event:trivial",
        "event:installed",
        "event:scope",
        "check:scope",
    ]
    for case in cases:
        rounds = [
            float(
                subprocess.run(
                    [sys.executable, "-m", "bench.outbound_guard", "--case", case],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(ROUNDS)
        ]
        print(f"{case:18} {statistics.median(rounds):9.1f} ns per event")


if __name__ == "__main__":
    main()
