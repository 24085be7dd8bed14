"""The REST adapter's mapping of one agency JSON object into a record, field by field."""

from __future__ import annotations

from sources import CanonicalStatus, Channel
from sources._settings import Vocabulary
from sources.rest._records import RecordMapper
from sources.rest._settings import CaseFields, HistoryFields
from tests.sources.every_field import EVERY_FIELD_ENTRY, every_field_record


def test_every_field_of_a_record_comes_from_its_own_json_field() -> None:
    """Each JSON field's value lands in its own record field (records are built with
    positional arguments for speed: a swap of two text fields would show here)."""
    fields = CaseFields(
        id="id",
        reference_number="ref",
        title="head",
        description="body",
        channel="via",
        category="kind",
        status="state",
        received_at="times.received",
        updated_at="times.changed",
        due_at="times.due",
        closed_at="times.closed",
        province_code="area.p",
        district_code="area.d",
        subdistrict_code="area.s",
        address="area.place",
        latitude="area.lat",
        longitude="area.lng",
        responsible="owner",
        media_urls="photos",
        status_notes="why",
    )
    vocabulary = Vocabulary(
        statuses={"shut": CanonicalStatus.CLOSED},
        categories={"road": "ROADS"},
        channels={"phone": Channel.PHONE},
    )
    mapper = RecordMapper("api", fields, vocabulary, "UTC")
    item = {
        "id": 7,
        "ref": "REF-7",
        "head": "the title",
        "body": "the body",
        "via": "phone",
        "kind": "road",
        "state": "shut",
        "times": {
            "received": "2026-01-01T01:00:00Z",
            "changed": "2026-01-02T02:00:00Z",
            "due": "2026-01-03T03:00:00Z",
            "closed": "2026-01-04T04:00:00Z",
        },
        "area": {
            "p": "40",
            "d": "4001",
            "s": "400101",
            "place": "the place",
            "lat": 16.4,
            "lng": 102.8,
        },
        "owner": "the owner",
        "photos": ["https://example.org/a.jpg"],
        "why": "the reason",
    }

    assert mapper.case(item) == every_field_record(
        "api", media_urls=("https://example.org/a.jpg",), status_notes="the reason"
    )
    history = HistoryFields(at="when", status="to", note="text")
    entry = {"when": "2026-01-02T02:00:00Z", "to": "shut", "text": "the note"}
    assert mapper.timeline_entry(entry, history) == EVERY_FIELD_ENTRY
