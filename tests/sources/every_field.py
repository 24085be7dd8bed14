"""The record a fully mapped test case must become, whatever the source kind: every field a
distinct value, so that a value landing in another field (records are built with positional
arguments for speed) shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sources import CanonicalStatus, CaseRecord, Channel, Location, TimelineEntry


def at(day: int) -> datetime:
    """Day ``day`` of January 2026 at ``day`` o'clock, UTC: each time field its own."""
    return datetime(2026, 1, day, day, 0, tzinfo=UTC)


def every_field_record(source: str, **more: Any) -> CaseRecord:
    """The case: native status ``shut``, category ``road``, channel ``phone``; received on
    day 1, updated 2, due 3, closed 4; ``more`` for fields only some kinds map."""
    return CaseRecord(
        source=source,
        local_id="7",
        reference_number="REF-7",
        title="the title",
        description="the body",
        channel=Channel.PHONE,
        category="ROADS",
        source_category="road",
        status=CanonicalStatus.CLOSED,
        source_status="shut",
        received_at=at(1),
        updated_at=at(2),
        due_at=at(3),
        closed_at=at(4),
        location=Location(
            province_code="40",
            district_code="4001",
            subdistrict_code="400101",
            address="the place",
            latitude=16.4,
            longitude=102.8,
        ),
        responsible="the owner",
        **more,
    )


EVERY_FIELD_ENTRY = TimelineEntry(
    at=at(2), status=CanonicalStatus.CLOSED, source_status="shut", note="the note"
)
"""Its one timeline entry."""
