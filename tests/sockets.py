"""Counting this machine's TCP connections to a port, from /proc/net/tcp: how the tests see a
connection leak (a pool that keeps sockets open, or leaves them in CLOSE-WAIT) from outside."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}
_GONE = {"TIME_WAIT", "CLOSE", "LISTEN"}
"""States of a socket its owner has closed (or a listener): not held by a client."""


def open_to(port: int) -> Counter[str]:
    """Client sockets still open towards ``port`` on loopback, by state (CLOSE_WAIT is one the
    server closed and the client has not)."""
    found: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            remote, state = fields[2], STATES.get(fields[3], fields[3])
            if int(remote.rsplit(":", 1)[1], 16) == port and state not in _GONE:
                found[state] += 1
                if int(fields[4].split(":")[1], 16):  # bytes received, never read
                    found[f"{state}_UNREAD"] += 1
    return found
