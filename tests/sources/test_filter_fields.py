"""``CaseFilter.record_fields`` names every record field ``matches`` reads: a page read for
some fields (``search_cases(fields=...)``) adds them where a source re-checks the filter."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from sources import CanonicalStatus, CaseFilter, CaseRecord
from tests.sources.every_field import every_field_record

IDENTITY = {"source", "local_id"}

MATCHING = [
    CaseFilter(sources=frozenset({"full"})),
    CaseFilter(statuses=frozenset({CanonicalStatus.CLOSED})),
    CaseFilter(categories=frozenset({"ROADS"})),
    CaseFilter(province_codes=frozenset({"40"})),
    CaseFilter(district_codes=frozenset({"4001"})),
    CaseFilter(received_from=datetime(2026, 1, 1, tzinfo=UTC)),
    CaseFilter(received_before=datetime(2026, 2, 1, tzinfo=UTC)),
    CaseFilter(text="TITLE"),
    CaseFilter(text="body"),
    CaseFilter(overdue=False, as_of=datetime(2026, 6, 1, tzinfo=UTC)),
    CaseFilter(
        statuses=frozenset({CanonicalStatus.CLOSED}),
        text="the",
        province_codes=frozenset({"40"}),
    ),
]
"""Filters the every-field record passes, each condition on its own and some together."""


def projected(record: CaseRecord, fields: frozenset[str]) -> CaseRecord:
    """``record`` as a page read for ``fields`` holds it: every other field None."""
    others = {
        f.name: None
        for f in dataclasses.fields(CaseRecord)
        if f.name not in fields | IDENTITY and f.name != "projection"
    }
    return dataclasses.replace(record, **others, projection=fields | IDENTITY)


@pytest.mark.parametrize("where", MATCHING)
def test_a_record_holding_only_the_filters_fields_matches_as_the_whole_one(
    where: CaseFilter,
) -> None:
    whole = every_field_record("full")
    assert where.matches(whole)
    assert where.matches(projected(whole, where.record_fields()))


def test_no_condition_reads_no_field() -> None:
    assert CaseFilter().record_fields() == frozenset()
    assert CaseFilter().matches(projected(every_field_record("full"), frozenset()))


def test_overdue_reads_the_status_too() -> None:
    """An open case past its due time (the every-field one is closed: not overdue)."""
    late = dataclasses.replace(every_field_record("full"), status=CanonicalStatus.RECEIVED)
    where = CaseFilter(overdue=True, as_of=datetime(2026, 6, 1, tzinfo=UTC))
    assert where.matches(late)
    assert where.matches(projected(late, where.record_fields()))
