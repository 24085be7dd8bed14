"""``caseStats``: buckets computed in every source, merged, against the generated ground truth."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from gateway.config import GatewayConfig
from tests.conftest import DemoData, RunningGateway, running
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
    Expected,
    all_cases,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
FINISHED = {"REJECTED", "RESOLVED", "CLOSED", "DUPLICATE", "CANCELLED"}
RESOLVED = {"RESOLVED", "CLOSED"}
FIGURES = ("count", "open", "overdue", "resolved")
RELATIVE_ERROR = 2 ** (1 / 8) - 1  # what the schema description promises (9.1 %)
AGENCIES = {
    POSTGRES_SOURCE: "MOI-DDC",
    SQLITE_SOURCE: "KKN-PO",
    REST_SOURCE: "OPM-1111",
    OPEN311_SOURCE: "BMA-TRAFFY",
}

STATS = """
query Stats($groupBy: [StatsDimension!]!, $filter: CaseFilterInput) {
  caseStats(groupBy: $groupBy, filter: $filter) {
    asOf groupBy
    total { ...Figures }
    buckets { ...Figures }
  }
}
fragment Figures on StatsBucket {
  key { dimension code label nameTh nameEn date yearBE monthTh }
  count open overdue resolved
  resolutionHours { count mean median p90 }
  openAgeHours { count mean median p90 }
}
"""


async def stats(
    gateway: RunningGateway, group_by: list[str], filter: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gateway.query(STATS, {"groupBy": group_by, "filter": filter})
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]["caseStats"]
    return result


def closed_at(expected: Expected) -> datetime | None:
    """What the graph can know: the Open311 platform publishes no closing time."""
    return None if expected.source == OPEN311_SOURCE else expected.case.closed_at


def hours(span: timedelta) -> float:
    return span.total_seconds() / 3600


def month_of(moment: datetime) -> str:
    return moment.astimezone(BANGKOK).date().replace(day=1).isoformat()


def day_of(moment: datetime) -> str:
    return moment.astimezone(BANGKOK).date().isoformat()


def week_of(moment: datetime) -> str:
    day = moment.astimezone(BANGKOK).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def truth(
    key: Callable[[Expected], tuple[str | None, ...]],
    as_of: datetime,
    cases: Iterable[Expected] | None = None,
) -> dict[tuple[str | None, ...], Counter[str]]:
    found: dict[tuple[str | None, ...], Counter[str]] = {}
    for expected in all_cases() if cases is None else cases:
        case = expected.case
        figures = found.setdefault(key(expected), Counter())
        figures["count"] += 1
        if case.status not in FINISHED:
            figures["open"] += 1
            figures["overdue"] += case.due_at < as_of
        elif case.status in RESOLVED:
            figures["resolved"] += 1
    return found


def figures_of(buckets: list[dict[str, Any]]) -> dict[tuple[str | None, ...], Counter[str]]:
    return {
        tuple(value["code"] for value in bucket["key"]): Counter(
            {name: bucket[name] for name in FIGURES if bucket[name]}
        )
        for bucket in buckets
    }


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def assert_within_bound(estimate: float, exact: float) -> None:
    if exact < 1:
        assert abs(estimate - exact) <= 0.5, (estimate, exact)
    else:
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact + 1e-6, (estimate, exact)


async def test_counts_by_source_category_and_month_equal_the_ground_truth(
    gateway: RunningGateway,
) -> None:
    result = await stats(gateway, ["SOURCE", "CATEGORY", "RECEIVED_MONTH"])
    as_of = datetime.fromisoformat(result["asOf"])
    expected = truth(lambda e: (e.source, e.case.category, month_of(e.case.received_at)), as_of)
    assert figures_of(result["buckets"]) == expected
    total = result["total"]
    assert total["count"] == len(all_cases())
    assert total["key"] == []
    assert total["open"] == sum(f["open"] for f in expected.values())
    assert total["overdue"] == sum(f["overdue"] for f in expected.values())


async def test_days_and_weeks_follow_the_bangkok_calendar_in_every_source(
    gateway: RunningGateway,
) -> None:
    days = await stats(gateway, ["RECEIVED_DAY", "SOURCE"])
    as_of = datetime.fromisoformat(days["asOf"])
    counts = {key: f["count"] for key, f in figures_of(days["buckets"]).items()}
    expected = truth(lambda e: (day_of(e.case.received_at), e.source), as_of)
    assert counts == {key: f["count"] for key, f in expected.items()}
    # cases received in the evening UTC belong to the next Bangkok day: the test has some
    assert any(
        e.case.received_at.date() != e.case.received_at.astimezone(BANGKOK).date()
        for e in all_cases()
        if e.source == SQLITE_SOURCE
    )
    weeks = await stats(gateway, ["RECEIVED_WEEK"])
    counts = {key: f["count"] for key, f in figures_of(weeks["buckets"]).items()}
    expected = truth(lambda e: (week_of(e.case.received_at),), as_of)
    assert counts == {key: f["count"] for key, f in expected.items()}
    assert all(date.fromisoformat(b["key"][0]["date"]).weekday() == 0 for b in weeks["buckets"])


async def test_time_keys_carry_buddhist_era_years_and_thai_month_names(
    gateway: RunningGateway,
) -> None:
    result = await stats(gateway, ["RECEIVED_MONTH"], {"source": [POSTGRES_SOURCE]})
    keys = {b["key"][0]["code"]: b["key"][0] for b in result["buckets"]}
    january = keys["2026-01-01"]
    assert january["yearBE"] == 2569
    assert january["monthTh"] == "มกราคม"
    assert january["label"] == "มกราคม 2569"
    assert january["date"] == "2026-01-01"
    assert keys["2025-12-01"]["monthTh"] == "ธันวาคม"
    assert keys["2025-12-01"]["yearBE"] == 2568


async def test_keys_are_labelled_from_the_directory_and_geothai(gateway: RunningGateway) -> None:
    result = await stats(gateway, ["PROVINCE", "AGENCY", "CATEGORY"], {"provinceCode": ["40"]})
    province, agency, category = result["buckets"][0]["key"]
    assert (province["code"], province["nameTh"], province["nameEn"]) == (
        "40",
        "ขอนแก่น",
        "Khon Kaen",
    )
    assert agency["code"] in AGENCIES.values() and agency["nameEn"]
    assert category["nameTh"] and category["nameEn"]
    as_of = datetime.fromisoformat(result["asOf"])
    expected = truth(
        lambda e: (e.case.province_code, AGENCIES[e.source], e.case.category),
        as_of,
        [e for e in all_cases() if e.case.province_code == "40"],
    )
    assert figures_of(result["buckets"]) == expected


async def test_filter_is_the_same_as_for_cases(gateway: RunningGateway) -> None:
    filter = {
        "category": ["LAND_DISPUTE", "ROADS"],
        "status": ["IN_PROGRESS", "RESOLVED", "CLOSED"],
        "receivedFrom": "2026-01-01T00:00:00+07:00",
        "receivedBefore": "2026-07-01T00:00:00+07:00",
    }
    result = await stats(gateway, ["STATUS"], filter)
    page = await gateway.query(
        "query($f: CaseFilterInput) { cases(filter: $f, first: 0) { totalCount } }", {"f": filter}
    )
    assert result["total"]["count"] == page["data"]["cases"]["totalCount"] > 0
    statuses = {b["key"][0]["code"]: b["count"] for b in result["buckets"]}
    assert set(statuses) == {"IN_PROGRESS", "RESOLVED", "CLOSED"}
    assert {b["key"][0]["code"]: b["key"][0]["nameEn"] for b in result["buckets"]}[
        "IN_PROGRESS"
    ] == "In progress"


async def test_merged_percentiles_are_within_the_stated_bound_of_the_exact_ones(
    gateway: RunningGateway,
) -> None:
    result = await stats(gateway, [])
    as_of = datetime.fromisoformat(result["asOf"])
    resolution = [
        hours(closed - e.case.received_at)
        for e in all_cases()
        if e.case.status in RESOLVED and (closed := closed_at(e)) is not None
    ]
    ages = [hours(as_of - e.case.received_at) for e in all_cases() if e.case.status not in FINISHED]
    for measured, exact in (
        (result["total"]["resolutionHours"], resolution),
        (result["total"]["openAgeHours"], ages),
    ):
        assert measured["count"] == len(exact)
        assert math.isclose(measured["mean"], sum(exact) / len(exact), rel_tol=1e-4)
        assert_within_bound(measured["median"], nearest_rank(exact, 0.5))
        assert_within_bound(measured["p90"], nearest_rank(exact, 0.9))
    # every source contributed to the merged histogram
    per_source = await stats(gateway, ["SOURCE"])
    counts = {
        b["key"][0]["code"]: (b["resolutionHours"] or {}).get("count", 0)
        for b in per_source["buckets"]
    }
    assert all(counts[s] > 0 for s in (POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE))
    assert sum(counts.values()) == len(resolution)


async def test_one_round_trip_per_source_whatever_the_grouping(gateway: RunningGateway) -> None:
    for group_by in (["PROVINCE", "RECEIVED_MONTH"], ["REFERRED_TO", "STATUS"], []):
        before = {s: gateway.round_trips(s) for s in ALL_SOURCES}
        await stats(gateway, group_by)
        after = {s: gateway.round_trips(s) - before[s] for s in ALL_SOURCES}
        assert after == dict.fromkeys(ALL_SOURCES, 1), group_by
        assert all(gateway.round_trips(s, "case_stats") >= 1 for s in ALL_SOURCES)


async def test_a_source_not_matching_the_filter_is_not_asked(gateway: RunningGateway) -> None:
    before = {s: gateway.round_trips(s) for s in ALL_SOURCES}
    await stats(gateway, ["SOURCE"], {"agency": ["KKN-PO"]})
    after = {s: gateway.round_trips(s) - before[s] for s in ALL_SOURCES}
    assert after == {POSTGRES_SOURCE: 0, SQLITE_SOURCE: 1, REST_SOURCE: 0, OPEN311_SOURCE: 0}


REFERRALS = """
query($after: String, $source: [String!]) {
  cases(first: 500, after: $after, filter: {source: $source}) {
    edges { node { referrals { toAgency { code } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def referral_targets(gateway: RunningGateway, source: str) -> list[set[str]]:
    targets: list[set[str]] = []
    after = None
    while True:
        body = await gateway.query(REFERRALS, {"after": after, "source": [source]})
        assert "errors" not in body
        page = body["data"]["cases"]
        for edge in page["edges"]:
            targets.append({r["toAgency"]["code"] for r in edge["node"]["referrals"]})
        if not page["pageInfo"]["hasNextPage"]:
            return targets
        after = page["pageInfo"]["endCursor"]


async def assert_referral_buckets(gateway: RunningGateway, source: str) -> list[set[str]]:
    targets = await referral_targets(gateway, source)
    expected: Counter[str | None] = Counter()
    for agencies in targets:
        expected.update(agencies or {None})
    result = await stats(gateway, ["REFERRED_TO"], {"source": [source]})
    counts = Counter({b["key"][0]["code"]: b["count"] for b in result["buckets"]})
    assert counts == expected, source
    assert result["total"]["count"] == len(targets)  # each case once in the total
    return targets


async def test_referral_targets_are_counted_from_every_kind_of_source(
    gateway: RunningGateway, demo_data: DemoData
) -> None:
    scanning = await running(without_stats_endpoints(demo_data))
    try:
        for source in (REST_SOURCE, OPEN311_SOURCE):
            for answering in (gateway, scanning):  # their stats endpoints, then a scan
                targets = await assert_referral_buckets(answering, source)
                assert any(targets) and not all(targets)
    finally:
        await scanning.client.aclose()
        await scanning.gateway.stop()


async def test_scans_and_statistics_endpoints_give_the_same_figures(
    gateway: RunningGateway, demo_data: DemoData
) -> None:
    scanning = await running(without_stats_endpoints(demo_data))
    try:
        filter = {"source": [REST_SOURCE, OPEN311_SOURCE]}
        group_by = ["SOURCE", "PROVINCE", "CATEGORY", "RECEIVED_WEEK"]
        asked = await stats(gateway, group_by, filter)
        scanned = await stats(scanning, group_by, filter)
        assert figures_of(asked["buckets"]) == figures_of(scanned["buckets"])
        channels = await stats(gateway, ["CHANNEL", "STATUS"], filter)
        assert figures_of(channels["buckets"]) == figures_of(
            (await stats(scanning, ["CHANNEL", "STATUS"], filter))["buckets"]
        )
    finally:
        await scanning.client.aclose()
        await scanning.gateway.stop()


async def test_a_case_referred_to_two_agencies_counts_in_both_buckets(
    gateway: RunningGateway, demo_data: DemoData
) -> None:
    # Case 15 goes to the 1111 service; hand it to the city platform too, and twice more to
    # the 1111 service, which must not count it twice there.
    connection = await asyncpg.connect(demo_data.postgres_dsn)
    extra = [(10_000_001, "BMA-TF"), (10_000_002, "OPM1111")]
    try:
        await connection.executemany(
            "INSERT INTO complaint_referrals (id, complaint_id, to_org, referred_at, kind_code)"
            " VALUES ($1, 15, $2, now(), 'FWD')",
            extra,
        )
        targets = await assert_referral_buckets(gateway, POSTGRES_SOURCE)
        assert {"OPM-1111", "BMA-TRAFFY"} in targets
        result = await stats(gateway, ["REFERRED_TO"], {"source": [POSTGRES_SOURCE]})
        counts = {b["key"][0]["code"]: b["count"] for b in result["buckets"]}
        assert sum(counts.values()) == result["total"]["count"] + 1
    finally:
        await connection.execute(
            "DELETE FROM complaint_referrals WHERE id = ANY($1::bigint[])", [i for i, _ in extra]
        )
        await connection.close()


def rest_source_down(demo_data: DemoData) -> GatewayConfig:
    """The demo configuration with the 1111 API pointed at a port nothing listens on."""
    sources = [
        s.model_copy(update={"base_url": "http://127.0.0.1:9/api"}) if s.id == REST_SOURCE else s
        for s in demo_data.config.sources
    ]
    return replace(demo_data.config, sources=tuple(sources))


async def test_a_failing_source_is_named_and_the_rest_still_arrives(
    demo_data: DemoData,
) -> None:
    broken = await running(rest_source_down(demo_data))
    try:
        body = await broken.query(STATS, {"groupBy": ["SOURCE"]})
        (error,) = body["errors"]
        assert error["extensions"]["source"] == REST_SOURCE
        assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        assert error["path"] == ["caseStats"]
        codes = {b["key"][0]["code"] for b in body["data"]["caseStats"]["buckets"]}
        assert codes == {POSTGRES_SOURCE, SQLITE_SOURCE, OPEN311_SOURCE}
    finally:
        await broken.client.aclose()
        await broken.gateway.stop()


async def test_a_bounded_scan_says_so_in_extensions(demo_data: DemoData) -> None:
    bounded = await running(with_scan_limit(demo_data, OPEN311_SOURCE, 150))
    try:
        body = await bounded.query(STATS, {"groupBy": ["SOURCE"]})
        assert "errors" not in body
        counts = {b["key"][0]["code"]: b["count"] for b in body["data"]["caseStats"]["buckets"]}
        assert counts[OPEN311_SOURCE] == 150
        (warning,) = body["extensions"]["warnings"]
        assert warning["source"] == OPEN311_SOURCE
        assert "150" in warning["message"]
    finally:
        await bounded.client.aclose()
        await bounded.gateway.stop()


def with_scan_limit(
    demo_data: DemoData, source: str, limit: int, *, endpoint: bool = False
) -> GatewayConfig:
    """``source`` scanning at most ``limit`` cases; without its statistics endpoint unless
    ``endpoint``."""
    changes: dict[str, Any] = {"stats_scan_limit": limit}
    if not endpoint:
        changes["stats"] = None
    sources = [
        s.model_copy(update=changes) if s.id == source else s for s in demo_data.config.sources
    ]
    return replace(demo_data.config, sources=tuple(sources))


def without_stats_endpoints(demo_data: DemoData) -> GatewayConfig:
    sources = [
        s.model_copy(update={"stats": None}) if hasattr(s, "stats") else s
        for s in demo_data.config.sources
    ]
    return replace(demo_data.config, sources=tuple(sources))


async def test_the_1111_service_answers_from_its_own_statistics_endpoint(
    demo_data: DemoData,
) -> None:
    # a scan could read 5 cases: the full figures come from the agency's endpoint
    gateway = await running(with_scan_limit(demo_data, REST_SOURCE, 5, endpoint=True))
    try:
        filter = {"source": [REST_SOURCE]}
        body = await gateway.query(
            STATS, {"groupBy": ["CATEGORY", "RECEIVED_MONTH", "STATUS"], "filter": filter}
        )
        assert "errors" not in body and "extensions" not in body
        result = body["data"]["caseStats"]
        as_of = datetime.fromisoformat(result["asOf"])
        mine = [e for e in all_cases() if e.source == REST_SOURCE]
        expected = truth(
            lambda e: (e.case.category, month_of(e.case.received_at), e.case.status),
            as_of,
            mine,
        )
        assert figures_of(result["buckets"]) == expected
        resolution = [
            hours(e.case.closed_at - e.case.received_at)
            for e in mine
            if e.case.status in RESOLVED and e.case.closed_at is not None
        ]
        measured = result["total"]["resolutionHours"]
        assert measured["count"] == len(resolution)
        assert_within_bound(measured["median"], nearest_rank(resolution, 0.5))
        assert math.isclose(measured["mean"], sum(resolution) / len(resolution), rel_tol=1e-4)
        # a filter the API cannot apply (district): the gateway scans, within its bound
        district, cases = Counter(e.case.district_code for e in mine).most_common(1)[0]
        assert cases > 5
        body = await gateway.query(
            STATS, {"groupBy": [], "filter": {**filter, "districtCode": [district]}}
        )
        (warning,) = body["extensions"]["warnings"]
        assert warning["source"] == REST_SOURCE
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()


async def test_bad_group_by_is_a_user_error(gateway: RunningGateway) -> None:
    body = await gateway.query(STATS, {"groupBy": ["SOURCE", "SOURCE"]})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gateway.query(STATS, {"groupBy": ["NOPE"]})
    assert "errors" in body and "data" not in body
