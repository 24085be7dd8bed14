"""``kind: graphql`` over another complaint-graph: a gateway that reads a second gateway's
``cases`` (Relay edges, its canonical vocabulary, timelines inside each case) as one agency.

The upstream gateway serves the demo's SQLite agency under uvicorn on a loopback port; what the
downstream gateway answers is compared with what the upstream one answers to the same query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.app import create_app
from gateway.config import EventSettings, GatewayConfig, parse_config
from samples.serving import ThreadedServer
from sources import CanonicalStatus, Channel
from tests.conftest import DemoData, RunningGateway, serving

SQLITE_SOURCE = "khonkaen-office"

CASE_FIELDS = """id referenceNumber title description status channel sourceStatus
  category { code } receivedAt updatedAt dueAt closedAt
  location { province { code } district { code } }"""
TIMELINE = "timeline { at status sourceStatus note }"


@pytest.fixture(scope="module")
def upstream(demo_data: DemoData) -> Iterator[str]:
    """The upstream gateway: the demo's SQLite agency alone, served for real."""
    sqlite = next(s for s in demo_data.config.sources if s.id == SQLITE_SOURCE)
    config = replace(demo_data.config, sources=(sqlite,), events=EventSettings(enabled=False))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield f"{server.url}/graphql"
    server.stop()


def downstream_config(demo_data: DemoData, url: str) -> GatewayConfig:
    categories = [
        {"code": c.code, "name_th": c.name_th, "name_en": c.name_en}
        for c in demo_data.config.categories
    ]
    source = {
        "id": "upstream",
        "kind": "graphql",
        "agency": {"code": "UP", "name_th": "เครือข่ายต้นทาง", "name_en": "Upstream graph"},
        "url": url,
        "list": {
            "query": (
                "query Page($first: Int!, $after: String, $filter: CaseFilterInput,"
                " $orderBy: CaseOrderInput) {"
                " cases(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {"
                f" edges {{ node {{ {CASE_FIELDS} {TIMELINE} }} }}"
                " pageInfo { hasNextPage endCursor } totalCount } }"
            ),
            "items": "cases.edges",
            "node": "node",
            "total": "cases.totalCount",
            "pagination": {
                "style": "relay",
                "page_size": 20,
                "end_cursor": "cases.pageInfo.endCursor",
                "has_next_page": "cases.pageInfo.hasNextPage",
            },
            "filters": {
                "status": "status",
                "category": "category",
                "province_code": "provinceCode",
                "district_code": "districtCode",
                "received_from": "receivedFrom",
                "received_before": "receivedBefore",
                "text": "text",
            },
            "sort": {
                "received_at_desc": {"field": "RECEIVED_AT", "direction": "DESC"},
                "received_at_asc": {"field": "RECEIVED_AT", "direction": "ASC"},
                "updated_at_asc": {"field": "UPDATED_AT", "direction": "ASC"},
            },
        },
        "fetch": {
            "batch": "aliases",
            "variable": "id",
            "query": f"query One($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} {TIMELINE} }} }}",
        },
        "history": {
            "embedded": "timeline",
            "fields": {"at": "at", "status": "status", "note": "note"},
        },
        "fields": {
            "id": "id",
            "reference_number": "referenceNumber",
            "title": "title",
            "description": "description",
            "status": "status",
            "channel": "channel",
            "category": "category.code",
            "received_at": "receivedAt",
            "updated_at": "updatedAt",
            "due_at": "dueAt",
            "closed_at": "closedAt",
            "province_code": "location.province.code",
            "district_code": "location.district.code",
        },
        "vocabulary": {
            "statuses": {s.value: s.value for s in CanonicalStatus},
            "channels": {c.value: c.value for c in Channel},
            "categories": {c["code"]: c["code"] for c in categories},
        },
    }
    auth = {"key_store": demo_data.config.auth.key_store, "anonymous": {"role": "inspector"}}
    document = {"categories": categories, "auth": auth, "sources": [source]}
    return parse_config(json.dumps(document, ensure_ascii=False), {})


# Compared without sourceStatus: the downstream maps the upstream's canonical status, which
# then is its "own label" too (the upstream's Thai labels are the upstream's to show).
PAGE = """
query Page($first: Int, $after: String, $filter: CaseFilterInput) {
  cases(first: $first, after: $after, filter: $filter) {
    edges { node { referenceNumber title status category { code } receivedAt dueAt
      location { district { code } } timeline { at status note } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


async def pages(gateway: RunningGateway, filter: dict[str, Any]) -> tuple[list[Any], int]:
    nodes: list[Any] = []
    cursor, total = None, -1
    while True:
        body = await gateway.query(PAGE, {"first": 7, "after": cursor, "filter": filter})
        assert "errors" not in body, body["errors"]
        page = body["data"]["cases"]
        total = page["totalCount"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, total
        cursor = page["pageInfo"]["endCursor"]


async def test_another_complaint_graph_is_an_agency(demo_data: DemoData, upstream: str) -> None:
    filters: list[dict[str, Any]] = [
        {"status": ["IN_PROGRESS", "RECEIVED"], "receivedFrom": "2026-06-01T00:00:00+07:00"},
        {"text": "น้ำ", "receivedBefore": "2026-01-01T00:00:00+07:00"},
    ]
    upstream_config = replace(
        demo_data.config,
        sources=tuple(s for s in demo_data.config.sources if s.id == SQLITE_SOURCE),
    )
    for filter in filters:
        async with serving(upstream_config) as direct:
            expected, expected_total = await pages(direct, filter)
        async with serving(downstream_config(demo_data, upstream)) as gateway:
            found, total = await pages(gateway, filter)
        assert len(expected) > 7  # more than one page
        assert found == expected and total == expected_total
