"""The REST adapter's mapping of one agency JSON object into a record, field by field."""

from __future__ import annotations

import pytest

from sources import CanonicalStatus, CaseFilter, Channel
from sources._model import CASE_RECORD_FIELDS
from sources._settings import Vocabulary
from sources.rest._records import RecordMapper
from sources.rest._settings import CaseFields, HistoryFields
from tests.sources.every_field import EVERY_FIELD_ENTRY, every_field_record


def every_field_mapper() -> RecordMapper:
    """A mapper of every field, each from a JSON field of its own (``ITEM``)."""
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
    return RecordMapper("api", fields, vocabulary, "UTC")


ITEM = {
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


def test_every_field_of_a_record_comes_from_its_own_json_field() -> None:
    """Each JSON field's value lands in its own record field (records are built with
    positional arguments for speed: a swap of two text fields would show here)."""
    mapper = every_field_mapper()
    assert mapper.case(ITEM) == every_field_record(
        "api", media_urls=("https://example.org/a.jpg",), status_notes="the reason"
    )
    history = HistoryFields(at="when", status="to", note="text")
    entry = {"when": "2026-01-02T02:00:00Z", "to": "shut", "text": "the note"}
    assert mapper.timeline_entry(entry, history) == EVERY_FIELD_ENTRY


@pytest.mark.parametrize("field", sorted(CASE_RECORD_FIELDS))
def test_each_field_mapped_alone_is_the_whole_records_value(field: str) -> None:
    """A page read for one field (``search_cases(fields=...)``): that field and every other
    the record says it holds are the whole record's; the rest are None, not made up."""
    mapper = every_field_mapper()
    whole = mapper.case(ITEM)
    alone = mapper.case(ITEM, frozenset({field}))
    assert alone.projection is not None and field in alone.projection
    for name in CASE_RECORD_FIELDS:
        if name in alone.projection:
            assert getattr(alone, name) == getattr(whole, name), name
        else:
            assert getattr(alone, name) is None, name


def test_only_the_cases_asked_for_are_kept_by_their_id() -> None:
    """An API may answer more than it was asked; what was not asked is dropped."""
    mapper = every_field_mapper()
    items = [ITEM, {**ITEM, "id": 8}, {**ITEM, "id": 9}]
    assert mapper.by_case_id(items, ["7", "9", "10"]) == {"7": ITEM, "9": {**ITEM, "id": 9}}


def test_a_status_or_category_the_vocabulary_never_gives_matches_nothing() -> None:
    mapper = every_field_mapper()
    assert mapper.matches_nothing(CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED})))
    assert mapper.matches_nothing(CaseFilter(categories=frozenset({"WATER"})))
    assert not mapper.matches_nothing(CaseFilter(statuses=frozenset({CanonicalStatus.CLOSED})))
    assert not mapper.matches_nothing(CaseFilter(categories=frozenset({"ROADS", "WATER"})))
    assert not mapper.matches_nothing(CaseFilter())


def test_each_unmapped_value_is_one_problem_naming_its_vocabulary_key() -> None:
    mapper = every_field_mapper()
    records = [
        mapper.case(ITEM),
        mapper.case({**ITEM, "state": "limbo", "kind": "sky"}),
        mapper.case({**ITEM, "id": 8, "state": "limbo"}),
    ]
    problems = mapper.unmapped_problems(records)
    assert [(p.source, p.key, p.problem) for p in problems] == [
        ("api", "vocabulary.categories", "value 'sky' is not mapped"),
        ("api", "vocabulary.statuses", "value 'limbo' is not mapped"),
    ]
