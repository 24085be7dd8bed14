"""One contract, every kind: the same fixture agency answers the same questions the same way
from PostgreSQL, SQLite, MariaDB, a JSON API, an Open311 server and a GraphQL API.

Expected answers come from tests/contract/agency.py (plain Python over the fixture lists).
What a kind cannot map (Open311 has no personal data) is stated by its ``Traits``: the test
then asserts the kind answers nothing for it, never skips.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from sources import (
    AgencyAccess,
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    CaseRecord,
    Dimension,
    SortField,
)
from sources._query import PUBLIC_FILTER_NAMES
from sources._stats import RESOLVED_STATUSES, period_start
from tests.contract.agency import (
    AGENCIES,
    AGENCY,
    BANGKOK,
    BY_ID,
    CASES,
    CATEGORIES,
    CHANNELS,
    NOW,
    REFERRAL_KINDS,
    SOURCE,
    STATUSES,
    Case,
    matches,
    ordered,
    position,
)
from tests.contract.conftest import Backend

ORDERS = [
    CaseOrder(SortField.RECEIVED_AT, descending=True),
    CaseOrder(SortField.RECEIVED_AT, descending=False),
    CaseOrder(SortField.UPDATED_AT, descending=True),
    CaseOrder(SortField.UPDATED_AT, descending=False),
]

FEBRUARY = datetime(2026, 2, 1, tzinfo=BANGKOK)
"""Midnight in Bangkok: 17:00 UTC the day before, where a bound taken in UTC misplaces cases."""

FILTERS: dict[str, CaseFilter] = {
    "none": CaseFilter(),
    "statuses": CaseFilter(
        statuses=frozenset({CanonicalStatus.IN_PROGRESS, CanonicalStatus.RESOLVED})
    ),
    "categories": CaseFilter(categories=frozenset({"WATER"})),
    "province_codes": CaseFilter(province_codes=frozenset({"40"})),
    "district_codes": CaseFilter(district_codes=frozenset({"1001", "4002"})),
    "received_from": CaseFilter(received_from=FEBRUARY),
    "received_before": CaseFilter(received_before=FEBRUARY),
    "received_window": CaseFilter(
        received_from=FEBRUARY, received_before=FEBRUARY + timedelta(days=9, hours=3)
    ),
    "text_in_title": CaseFilter(text="ไฟฟ้าดับ"),
    "text_in_description": CaseFilter(text="เรื่องที่ 1017"),
    "overdue": CaseFilter(overdue=True, as_of=NOW),
    "not_overdue": CaseFilter(overdue=False, as_of=NOW),
    "unknown_category": CaseFilter(categories=frozenset({"NOWHERE"})),
    "combined": CaseFilter(
        statuses=frozenset({CanonicalStatus.RECEIVED, CanonicalStatus.IN_PROGRESS}),
        categories=frozenset({"ROADS", "ELECTRICITY"}),
        received_from=datetime(2026, 1, 20, tzinfo=BANGKOK),
        text="หมู่",
    ),
}

ROLES: dict[str, AgencyAccess] = {
    "owner": AgencyAccess(AGENCY),
    "referred_to": AgencyAccess("BMA"),
    "referred_by_own_systems": AgencyAccess(
        "DOH", frozenset({(SOURCE, "1005"), (SOURCE, "1020"), ("elsewhere", "1001")})
    ),
    "stranger": AgencyAccess("NOBODY"),
}


def view(record: CaseRecord, fields: frozenset[str] | None = None) -> dict[str, Any]:
    """What a record says of the unified fields the contract compares (``fields``: these)."""
    names = COMPARED if fields is None else COMPARED & fields
    return {
        name: getattr(record.location, name)
        if name in ("province_code", "district_code")
        else getattr(record, name)
        for name in names
    }


COMPARED = frozenset(
    {
        "local_id",
        "reference_number",
        "title",
        "description",
        "channel",
        "category",
        "status",
        "source_status",
        "received_at",
        "updated_at",
        "due_at",
        "closed_at",
        "province_code",
        "district_code",
    }
)


def expected_view(case: Case, backend: Backend, fields: frozenset[str] | None = None) -> Any:
    traits, closed = backend.traits, case.closed
    values = {
        "local_id": case.local_id,
        "reference_number": case.reference if traits.own_reference else case.local_id,
        "title": case.title,
        "description": case.description,
        "channel": CHANNELS[case.channel],
        "category": CATEGORIES[case.category],
        "status": STATUSES[case.status],
        "source_status": case.status,
        "received_at": case.received_at,
        "updated_at": case.updated_at,
        "due_at": case.due_at,
        "closed_at": closed.replace(tzinfo=BANGKOK) if traits.closed_at and closed else None,
        "province_code": case.province,
        "district_code": case.district,
    }
    return {k: v for k, v in values.items() if fields is None or k in fields}


def expected_ids(backend: Backend, where: CaseFilter, order: CaseOrder = ORDERS[0]) -> list[str]:
    return ordered(where, order, referrals=backend.traits.referrals)


async def every_page(
    backend: Backend, where: CaseFilter, order: CaseOrder, size: int
) -> list[list[str]]:
    """The pages of ``size`` a client walks with keyset cursors, until a short page."""
    pages: list[list[str]] = []
    after = None
    while True:
        found = await backend.source.search_cases(where, order, after, size)
        pages.append([record.local_id for record in found])
        if len(found) < size:
            return pages
        after = position(found[-1].local_id, order)


# -- load by ids --------------------------------------------------------------------------------


async def test_cases_load_by_id_with_every_field(backend: Backend) -> None:
    wanted = [case.local_id for case in CASES] + ["9999"]
    found = await backend.source.load_cases(wanted)
    assert set(found) == {case.local_id for case in CASES}  # an unknown id is absent
    for case in CASES:
        assert view(found[case.local_id]) == expected_view(case, backend), case.local_id


async def test_cases_load_by_their_own_case_number(backend: Backend) -> None:
    cases = CASES[3:7]
    numbers = [expected_view(c, backend)["reference_number"] for c in cases]
    found = await backend.source.load_cases_by_reference([*numbers, "ร.9999"])
    assert {n: r.local_id for n, r in found.items()} == {
        n: c.local_id for n, c in zip(numbers, cases, strict=True)
    }


# -- filters, orders, pages ---------------------------------------------------------------------


@pytest.mark.parametrize("name", FILTERS)
async def test_every_filter_counts_and_lists_the_same_cases(backend: Backend, name: str) -> None:
    where = FILTERS[name]
    expected = expected_ids(backend, where)
    assert await backend.source.count_cases(where) == len(expected)
    found = await backend.source.search_cases(where, ORDERS[0], None, 100)
    assert [r.local_id for r in found] == expected
    for record in found:
        assert view(record) == expected_view(BY_ID[record.local_id], backend)


def test_the_filters_tell_kinds_apart() -> None:
    """Each filter keeps some cases and drops others, so none passes by matching everything."""
    for name, where in FILTERS.items():
        kept = sum(1 for case in CASES if matches(case, where))
        if name == "none":
            assert kept == len(CASES)
        elif name == "unknown_category":
            assert kept == 0
        else:
            assert 0 < kept < len(CASES), name


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: f"{o.field.value}-{o.descending}")
@pytest.mark.parametrize("size", [3, 5])
async def test_keyset_pages_walk_every_case_once_in_order_across_ties(
    backend: Backend, order: CaseOrder, size: int
) -> None:
    pages = await every_page(backend, CaseFilter(), order, size)
    expected = expected_ids(backend, CaseFilter(), order)
    assert [i for page in pages for i in page] == expected
    assert all(len(page) == size for page in pages[:-1])


@pytest.mark.parametrize("order", ORDERS[:2], ids=lambda o: f"{o.field.value}-{o.descending}")
async def test_keyset_pages_of_a_filter_applied_after_fetching(
    backend: Backend, order: CaseOrder
) -> None:
    where = CaseFilter(categories=frozenset({"ROADS", "WATER"}), text="หมู่")
    pages = await every_page(backend, where, order, 4)
    assert [i for page in pages for i in page] == expected_ids(backend, where, order)


async def test_a_page_after_a_tied_position_starts_at_the_next_id(backend: Backend) -> None:
    order = ORDERS[0]
    tied = [c.local_id for c in CASES if c.received == datetime(2026, 2, 10, 3, 0)]
    assert len(tied) == 3
    expected = expected_ids(backend, CaseFilter(), order)
    after = position(tied[1], order)  # descending: 1007, 1006, 1005
    found = await backend.source.search_cases(CaseFilter(), order, after, 4)
    start = expected.index(tied[1]) + 1
    assert [r.local_id for r in found] == expected[start : start + 4]


# -- projection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [frozenset({"title", "status"}), frozenset({"reference_number", "due_at", "province_code"})],
    ids=["title-status", "reference-due-province"],
)
async def test_a_page_read_for_some_fields_holds_them_right(
    backend: Backend, fields: frozenset[str]
) -> None:
    asked = frozenset(f.removesuffix("_code") if f.endswith("_code") else f for f in fields)
    read = asked - {"province"} | ({"location"} if "province_code" in fields else set())
    found = await backend.source.search_cases(CaseFilter(), ORDERS[0], None, 10, read)
    assert [r.local_id for r in found] == expected_ids(backend, CaseFilter())[:10]
    for record in found:
        assert record.projection is None or read <= record.projection
        assert view(record, fields) == expected_view(BY_ID[record.local_id], backend, fields)


# -- related rows -------------------------------------------------------------------------------


async def test_timelines_oldest_first_with_tied_entries_in_order(backend: Backend) -> None:
    ids = [case.local_id for case in CASES]
    found = await backend.source.load_timelines([*ids, "9999"])
    if not backend.traits.timelines:
        assert not any(found.values())
        return
    assert set(found) == set(ids)
    for case in CASES:
        entries = [(e.at, e.status, e.source_status, e.note) for e in found[case.local_id]]
        assert entries == [
            (
                e.at.replace(tzinfo=BANGKOK),
                STATUSES[e.status] if e.status else None,
                e.status,
                e.note,
            )
            for e in case.timeline
        ], case.local_id


async def test_referrals_where_the_kind_maps_them(backend: Backend) -> None:
    found = await backend.source.load_referrals([case.local_id for case in CASES])
    if not backend.traits.referrals:
        assert found == {}
        return
    expected = {
        case.local_id: [
            (
                AGENCIES[r.to],
                r.at.replace(tzinfo=BANGKOK),
                REFERRAL_KINDS[r.kind],
                r.status,
                r.their_reference,
            )
            for r in case.referrals
        ]
        for case in CASES
        if case.referrals
    }
    assert {
        local_id: [(r.to_agency, r.at, r.kind, r.status, r.their_reference) for r in records]
        for local_id, records in found.items()
        if records
    } == expected


async def test_complainants_where_the_kind_maps_them(backend: Backend) -> None:
    # the kind says so itself: a citizen's cases are found where personal data is mapped
    assert backend.source.capabilities.finds_complainants == backend.traits.complainants
    ids = [case.local_id for case in CASES]
    found = await backend.source.load_complainants(ids)
    twice = BY_ID["1010"].person.citizen_key
    by_key = await backend.source.cases_by_complainant([twice])
    if not backend.traits.complainants:
        assert found == {} and by_key == {}
        return
    assert {
        i: (c.name, c.citizen_id, c.phone, c.is_anonymous, c.is_confidential, c.citizen_key)
        for i, c in found.items()
    } == {
        c.local_id: (
            c.person.name,
            c.person.citizen_id,
            c.person.phone,
            c.person.anonymous,
            c.person.confidential,
            c.person.citizen_key,
        )
        for c in CASES
    }
    assert sorted(r.local_id for r in by_key[twice]) == ["1010", "1014"]
    hidden = [c.person.citizen_key for c in CASES if c.person.anonymous or c.person.confidential]
    assert await backend.source.cases_by_complainant(hidden) == {}


# -- statistics ---------------------------------------------------------------------------------


def expected_buckets(
    backend: Backend, where: CaseFilter, dimensions: tuple[Dimension, ...]
) -> dict[tuple[str | None, ...], tuple[int, int, int, int]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for case in CASES:
        if not matches(case, where, referrals=backend.traits.referrals):
            continue
        referred = case.referrals if backend.traits.referrals else ()
        targets: list[str | None] = [AGENCIES[r.to] for r in referred] or [None]
        keys: list[tuple[str | None, ...]] = [()]
        for dimension in dimensions:
            values = targets if dimension is Dimension.REFERRED_TO else [_value(case, dimension)]
            keys = [(*key, value) for key in keys for value in values]
        status = STATUSES[case.status]
        figures = (
            1,
            int(not status.is_finished),
            int(case.is_overdue(NOW)),
            int(status in RESOLVED_STATUSES),
        )
        for key in keys:
            for n, figure in enumerate(figures):
                counts[(key, n)] += figure
    keys_seen = {key for key, _ in counts}
    return {
        key: (counts[key, 0], counts[key, 1], counts[key, 2], counts[key, 3]) for key in keys_seen
    }


def _value(case: Case, dimension: Dimension) -> str:
    if dimension in (Dimension.RECEIVED_DAY, Dimension.RECEIVED_WEEK, Dimension.RECEIVED_MONTH):
        return period_start(case.received_at, dimension).isoformat()
    return {
        Dimension.PROVINCE: case.province,
        Dimension.DISTRICT: case.district,
        Dimension.AGENCY: AGENCY,
        Dimension.SOURCE: SOURCE,
        Dimension.CATEGORY: CATEGORIES[case.category],
        Dimension.STATUS: STATUSES[case.status].value,
        Dimension.CHANNEL: CHANNELS[case.channel].value,
    }[dimension]


@pytest.mark.parametrize(
    "dimensions",
    [
        (Dimension.PROVINCE, Dimension.STATUS),
        (Dimension.RECEIVED_DAY,),
        (Dimension.RECEIVED_MONTH, Dimension.CATEGORY),
        (Dimension.RECEIVED_WEEK, Dimension.DISTRICT, Dimension.CHANNEL),
        (Dimension.REFERRED_TO, Dimension.AGENCY),
    ],
    ids=lambda d: "-".join(x.value for x in d),
)
@pytest.mark.parametrize("where", ["none", "received_from", "combined"])
async def test_statistics_by_every_dimension(
    backend: Backend, dimensions: tuple[Dimension, ...], where: str
) -> None:
    stats = await backend.source.case_stats(FILTERS[where], dimensions, NOW)
    found = {
        key: (b.count, b.open, b.overdue, b.resolved) for key, b in stats.buckets.items() if b.count
    }
    expected = expected_buckets(backend, FILTERS[where], dimensions)
    assert found == expected
    total = sum(1 for c in CASES if matches(c, FILTERS[where]))
    assert stats.total.count == total


# -- row-level access ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_sees_its_cases_in_counts_searches_and_pages(
    backend: Backend, role: str
) -> None:
    for name in ("none", "statuses"):
        where = CaseFilter(statuses=FILTERS[name].statuses, access=ROLES[role], as_of=NOW)
        expected = expected_ids(backend, where)
        assert await backend.source.count_cases(where) == len(expected)
        pages = await every_page(backend, where, ORDERS[0], 3)
        assert [i for page in pages for i in page] == expected
    seen = expected_ids(backend, CaseFilter(access=ROLES[role]))
    if role == "owner":
        assert len(seen) == len(CASES)
    elif role == "stranger":
        assert seen == []
    elif role == "referred_by_own_systems":
        assert seen == ["1005", "1020"]


# -- capabilities -------------------------------------------------------------------------------


async def test_pushed_down_filters_are_named_as_the_filter_input_names_them(
    backend: Backend,
) -> None:
    """``sources { pushedDownFilters }`` speaks the filter input's language for every kind."""
    assert backend.source.capabilities.pushed_down_filters <= set(PUBLIC_FILTER_NAMES.values())
