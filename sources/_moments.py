"""Moments a client sends (a filter's bounds, a cursor's position, ``since``): accepted only
when every agency can hold them.

Python's ``datetime`` ends at years 1 and 9999, so ``0001-01-01T00:00:00+14:00`` parses but
has no UTC value, and ``9999-12-31T23:59:59-12:00`` parses but overflows as soon as a source
converts it to UTC or to its own zone (OverflowError, then INTERNAL_SERVER_ERROR). A moment
must have a time zone offset and lie, in UTC, at least a day inside those ends, so that any
agency's zone can represent it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def moment_problem(name: str, value: datetime) -> str | None:
    """Why ``value``, sent as ``name``, cannot be used; None when it can."""
    if value.tzinfo is None or value.utcoffset() is None:
        return f"{name} needs a time zone offset, e.g. +07:00"
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        return (
            f"{name} is out of range: give a moment between "
            f"{EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"
        )
    return None
