"""Over the real graph and agencies, the list executor answers exactly as graphql-core's
item-by-item completion does (tests/resolvers/test_execution.py has the error cases in small)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from resolvers import build_schema
from resolvers.batched import batched_fields
from resolvers.execution import PlainFieldExecutor
from resolvers.list_execution import ListExecutor
from samples.serving import ThreadedServer
from tests.conftest import DemoData, RunningGateway, serving
from tests.resolvers.expected import REST_SOURCE
from tests.resolvers.test_partial_results import UnknownStatus, with_source

UNKNOWN_TITLE = "หัวเรื่อง"
"""The title of the one case UnknownStatus answers with."""

DOCUMENTS = [
    # the benchmark's dashboard page (bench/documents.py), across all four agencies
    """{ cases(first: 60) { edges { cursor node {
        id referenceNumber title status receivedAt
        category { code nameTh } owningAgency { code }
        timeline { at status sourceStatus note }
    } } } }""",
    # every kind of field: plain, self-only resolvers, info, async, nested lists
    """{ cases(first: 40, filter: {status: [FORWARDED, IN_PROGRESS, RESOLVED]}) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node {
          __typename id channel isOverdue dueAt photoUrls sourceCategory
          location { province { code nameEn } district { code } address latitude }
          source { id } owningAgency { code nameTh }
          referrals { at kind status receivingReference toAgency { code } }
          referredFrom { fromAgency { code } }
          relatedCases { id timeline { at } owningAgency { code } }
          complainant { name phone }
          timeline { at status note }
        } }
    } }""",
    # the same field under two names, fragments, and a case asked for twice
    """fragment Short on Case { id t1: timeline { at } t2: timeline { status } }
    { cases(first: 25) { edges { node { ...Short timeline { at } } } } }""",
]


def _errors(body: dict[str, Any]) -> list[str]:
    """Errors without the per-request id, in a fixed order (the spec gives them none)."""
    found = []
    for error in body.get("errors", []):
        extensions = {k: v for k, v in error.get("extensions", {}).items() if k != "requestId"}
        found.append(repr({**error, "extensions": extensions}))
    return sorted(found)


async def _both_ways(
    gateway: RunningGateway, document: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer of the list executor, then of graphql-core's completion, one item at a time."""
    schema = build_schema()
    assert schema.execution_context_class is ListExecutor
    listed = await gateway.query(document)
    with monkeypatch.context() as patch:
        patch.setattr(schema, "execution_context_class", PlainFieldExecutor)
        itemised = await gateway.query(document)
    return listed, itemised


def test_batched_fields_exist_without_arguments() -> None:
    types = build_schema()._schema.type_map
    ours = [(t, f) for t, f in batched_fields() if t in types]  # tests register their own
    assert ours == [("Case", "id"), ("Case", "timeline")]
    for type_name, field_name in ours:
        field = types[type_name].fields[field_name]  # type: ignore[attr-defined]
        assert not field.args


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_pages_equal_item_by_item_completion(
    gateway: RunningGateway, document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed, itemised = await _both_ways(gateway, document, monkeypatch)
    assert listed["data"] == itemised["data"]
    assert _errors(listed) == _errors(itemised)
    edges = listed["data"]["cases"]["edges"]
    assert len(edges) >= 25
    assert any(edge["node"]["timeline"] for edge in edges)


@pytest.fixture
async def odd_agency(demo_data: DemoData) -> AsyncIterator[RunningGateway]:
    """The demo agencies, with the 1111 service answering garbage for timelines and unknown
    statuses (tests/resolvers/test_partial_results.py)."""
    server = ThreadedServer(UnknownStatus())
    server.start()
    try:
        config = with_source(demo_data.config, REST_SOURCE, base_url=server.url)
        async with serving(config) as started:
            yield started
    finally:
        server.stop()


async def test_source_errors_equal_item_by_item_completion(
    odd_agency: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = """{ cases(first: 30, filter: {source: ["pmoc-1111", "damrongdhama"]}) {
        edges { node { id status title timeline { at status } } }
    } }"""
    listed, itemised = await _both_ways(odd_agency, document, monkeypatch)
    assert listed["data"] == itemised["data"]
    assert _errors(listed) == _errors(itemised)
    # the 1111 service's one case: an unmapped status (null) and a garbled timeline (null,
    # not the page: the relation is nullable), each with an error naming the source
    edges = listed["data"]["cases"]["edges"]
    assert len(edges) == 30
    (odd,) = [e["node"] for e in edges if e["node"]["title"] == UNKNOWN_TITLE]
    assert odd["status"] is None
    assert odd["timeline"] is None
    assert all(e["node"]["timeline"] for e in edges if e["node"] is not odd)
    codes = {(tuple(e["path"][-1:]), e["extensions"]["code"]) for e in listed["errors"]}
    assert codes == {(("status",), "SOURCE_BAD_RESPONSE"), (("timeline",), "SOURCE_BAD_RESPONSE")}
    assert {e["extensions"]["source"] for e in listed["errors"]} == {REST_SOURCE}
