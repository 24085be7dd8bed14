"""``/export.csv``: cases and caseStats queries as UTF-8 CSV with a BOM, paged and streamed."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any

from tests.conftest import DemoData, RunningGateway, running
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    all_cases,
)
from tests.resolvers.test_stats import rest_source_down

CASES = """
query Export($filter: CaseFilterInput, $first: Int) {
  cases(filter: $filter, first: $first) {
    totalCount
    edges { node {
      id referenceNumber title status receivedAt isOverdue photoUrls
      location { province { code nameTh } }
      ...Agency
    } }
  }
}
fragment Agency on Case { owningAgency { code nameTh } }
"""

CASE_COLUMNS = [
    "id",
    "referenceNumber",
    "title",
    "status",
    "receivedAt",
    "isOverdue",
    "photoUrls",
    "location.province.code",
    "location.province.nameTh",
    "owningAgency.code",
    "owningAgency.nameTh",
]

STATS = """
query($filter: CaseFilterInput) {
  caseStats(groupBy: [PROVINCE, RECEIVED_MONTH], filter: $filter) {
    buckets {
      key { code label yearBE monthTh }
      count overdue
      resolutionHours { median p90 }
    }
    total { count overdue resolutionHours { median p90 } }
  }
}
"""


def parse_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def graphql_pages(
    gateway: RunningGateway, filter: dict[str, Any], first: int
) -> list[dict[str, Any]]:
    """The same query through /graphql, page after page: what the CSV must equal."""
    paged = CASES.replace("$first: Int)", "$first: Int, $after: String)")
    paged = paged.replace("first: $first)", "first: $first, after: $after)")
    paged = paged.replace("totalCount", "pageInfo { hasNextPage endCursor }")
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gateway.query(paged, {"filter": filter, "first": first, "after": after})
        assert "errors" not in body
        page = body["data"]["cases"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def node_row(node: dict[str, Any]) -> list[str]:
    province = node["location"]["province"] or {}
    return [
        text(node["id"]),
        text(node["referenceNumber"]),
        text(node["title"]),
        text(node["status"]),
        text(node["receivedAt"]),
        text(node["isOverdue"]),
        text(node["photoUrls"]),
        text(province.get("code")),
        text(province.get("nameTh")),
        text(node["owningAgency"]["code"]),
        text(node["owningAgency"]["nameTh"]),
    ]


async def test_a_multi_page_cases_export_has_every_row_once_in_order(
    gateway: RunningGateway,
) -> None:
    filter = {"receivedFrom": "2026-03-01T00:00:00+07:00"}
    before = {s: gateway.round_trips(s, "search_cases") for s in ALL_SOURCES}
    response = await gateway.client.post(
        "/export.csv", json={"query": CASES, "variables": {"filter": filter, "first": 97}}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = parse_csv(response.content)
    pages = {s: gateway.round_trips(s, "search_cases") - before[s] for s in ALL_SOURCES}
    assert rows[0] == CASE_COLUMNS
    expected = await graphql_pages(gateway, filter, 97)
    assert rows[1:] == [node_row(node) for node in expected]
    ids = [row[0] for row in rows[1:]]
    assert len(ids) == len(set(ids)) > 97 * 5  # many pages, no duplicates
    truth = [e for e in all_cases() if e.case.received_at.isoformat() >= "2026-02-28T17:00:00"]
    assert len(ids) == len(truth)  # no gaps
    # paged with the cursor: every source was asked once per page, not once in all
    assert all(count >= len(ids) // 97 for count in pages.values()), pages
    # Thai text arrives intact
    assert any(
        row[CASE_COLUMNS.index("owningAgency.nameTh")] == "ศูนย์ดำรงธรรม กระทรวงมหาดไทย"
        for row in rows
    )


async def test_a_stats_export_has_one_group_of_columns_per_dimension(
    gateway: RunningGateway,
) -> None:
    filter = {"source": [POSTGRES_SOURCE], "provinceCode": ["10", "40", "50"]}
    response = await gateway.client.get(
        "/export.csv", params={"query": STATS, "variables": json.dumps({"filter": filter})}
    )
    assert response.status_code == 200, response.text
    rows = parse_csv(response.content)
    assert rows[0] == [
        "key.PROVINCE.code",
        "key.PROVINCE.label",
        "key.PROVINCE.yearBE",
        "key.PROVINCE.monthTh",
        "key.RECEIVED_MONTH.code",
        "key.RECEIVED_MONTH.label",
        "key.RECEIVED_MONTH.yearBE",
        "key.RECEIVED_MONTH.monthTh",
        "count",
        "overdue",
        "resolutionHours.median",
        "resolutionHours.p90",
    ]
    body = await gateway.query(STATS, {"filter": filter})
    stats = body["data"]["caseStats"]
    expected = []
    for bucket in [*stats["buckets"], {**stats["total"], "key": []}]:
        keys = [
            text(bucket["key"][i][name]) if bucket["key"] else ""
            for i in range(2)
            for name in ("code", "label", "yearBE", "monthTh")
        ]
        durations = bucket["resolutionHours"] or {}
        expected.append(
            [
                *keys,
                text(bucket["count"]),
                text(bucket["overdue"]),
                text(durations.get("median")),
                text(durations.get("p90")),
            ]
        )
    assert rows[1:] == expected
    assert rows[1][1] == "กรุงเทพมหานคร"
    assert {row[7] for row in rows[1:-1]} >= {"มกราคม", "ธันวาคม"}
    assert rows[-1][:8] == [""] * 8 and rows[-1][8] == text(stats["total"]["count"])


async def test_what_cannot_be_exported_is_refused_with_a_reason(gateway: RunningGateway) -> None:
    for request, reason in [
        ({"query": "{ agencies { code } }"}, "cases"),
        ({"query": "{ cases(first: 1) { totalCount } }"}, "edges"),
        ({"query": "{ cases(first: 1) { edges { node { id } } "}, "parse"),
        ({"query": STATS, "variables": "[1]"}, "variables"),
        ({}, "query"),
    ]:
        response = await gateway.client.post("/export.csv", data=request)
        assert response.status_code == 400, request
        assert reason in response.json()["errors"][0]["message"], response.text
    response = await gateway.client.post(
        "/export.csv", json={"query": "{ cases(first: 1) { edges { node { nope } } } }"}
    )
    assert response.status_code == 400
    response = await gateway.client.post(
        "/export.csv", json={"query": "{ cases(first: 100000) { edges { node { id } } } }"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_failing_source_refuses_the_export_rather_than_shortening_it(
    demo_data: DemoData,
) -> None:
    broken = await running(rest_source_down(demo_data))
    try:
        response = await broken.client.post(
            "/export.csv", json={"query": "{ cases { edges { node { id } } } }"}
        )
        assert response.status_code == 502
        (error,) = response.json()["errors"]
        assert error["extensions"]["source"] == REST_SOURCE
    finally:
        await broken.client.aclose()
        await broken.gateway.stop()


async def test_a_bounded_scan_warning_travels_in_a_header(demo_data: DemoData) -> None:
    sources = [
        s.model_copy(update={"stats_scan_limit": 120, "stats": None})
        if s.id == OPEN311_SOURCE
        else s
        for s in demo_data.config.sources
    ]
    bounded = await running(replace(demo_data.config, sources=tuple(sources)))
    try:
        response = await bounded.client.post(
            "/export.csv",
            json={"query": "{ caseStats(groupBy: [SOURCE]) { buckets { key { code } count } } }"},
        )
        assert response.status_code == 200, response.text
        (warning,) = json.loads(response.headers["x-complaint-graph-warnings"])
        assert warning["source"] == OPEN311_SOURCE and "120" in warning["message"]
        rows = parse_csv(response.content)
        assert [OPEN311_SOURCE, "120"] in rows
    finally:
        await bounded.client.aclose()
        await bounded.gateway.stop()
