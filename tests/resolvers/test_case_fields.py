"""Every field of every case, from all four agencies, against the data they were built from."""

from __future__ import annotations

import base64
import inspect
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import geothai
from strawberry import relay

from resolvers.batched import batch_resolver
from resolvers.case import Case
from resolvers.connection import CaseEdge
from samples import links, provincial
from samples.generator import SyntheticCase
from sources import CanonicalStatus, CaseOrder
from tests.conftest import RunningGateway
from tests.resolvers.expected import (
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
    all_cases,
)
from tests.sources.every_field import at, every_field_record

FIELDS = """
query Fields($after: String) {
  cases(first: 200, after: $after) {
    edges { node {
      id referenceNumber title description channel status sourceStatus
      category { code } sourceCategory
      receivedAt updatedAt dueAt closedAt isOverdue
      location {
        province { code nameTh nameEn } district { code nameTh nameEn }
        subdistrict { code nameTh nameEn } address latitude longitude
      }
      owningAgency { code } source { id }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

AGENCIES = {
    POSTGRES_SOURCE: "MOI-DDC",
    SQLITE_SOURCE: "KKN-PO",
    REST_SOURCE: "OPM-1111",
    OPEN311_SOURCE: "BMA-TRAFFY",
}


def local_id(source: str, case: SyntheticCase) -> str:
    return {
        POSTGRES_SOURCE: links.damrongdhama_id,
        SQLITE_SOURCE: lambda n: provincial.petition_no(case),
        REST_SOURCE: links.pmoc_id,
        OPEN311_SOURCE: links.traffy_id,
    }[source](case.number)


def area(code: str) -> dict[str, str]:
    level = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}
    found = level[len(code)](code)
    assert found is not None and found.name_th and found.name_en, code
    return {"code": code, "nameTh": found.name_th, "nameEn": found.name_en}


def utc(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


async def every_case(gateway: RunningGateway) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gateway.query(FIELDS, {"after": after})
        assert "errors" not in body, body["errors"][:3]
        connection = body["data"]["cases"]
        nodes.extend(edge["node"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


async def test_every_field_of_every_case_is_what_its_agency_holds(
    gateway: RunningGateway,
) -> None:
    before = datetime.now(UTC)
    nodes = await every_case(gateway)
    after = datetime.now(UTC)
    vocabularies = {s.id: s.vocabulary for s in gateway.gateway.config.sources}
    expected = {(e.source, local_id(e.source, e.case)): e.case for e in all_cases()}
    assert len(nodes) == len(expected)
    seen = set()
    for node in nodes:
        source = node["source"]["id"]
        key = base64.b64decode(node["id"]).decode().removeprefix("Case:")
        _, _, local = key.partition(":")
        case = expected[(source, local)]
        seen.add((source, local))
        vocabulary = vocabularies[source]
        assert (node["title"], node["description"]) == (case.title, case.description), key
        assert node["channel"] == case.channel, key
        assert node["status"] == case.status, key
        assert vocabulary.statuses[node["sourceStatus"]] == case.status, key
        assert node["category"] == {"code": case.category}, key
        assert vocabulary.categories[node["sourceCategory"]] == case.category, key
        assert node["receivedAt"] == utc(case.received_at), key
        assert node["updatedAt"] == utc(case.updated_at), key
        assert node["dueAt"] == utc(case.due_at), key
        # GeoReport v2 has no closing time: the city platform's cases have none in the graph
        closed = None if source == OPEN311_SOURCE else utc(case.closed_at)
        assert node["closedAt"] == closed, key
        finished = CanonicalStatus(case.status).is_finished
        if not before <= case.due_at <= after:  # not due during the test itself
            assert node["isOverdue"] == (not finished and case.due_at < before), key
        assert node["location"] == {
            "province": area(case.province_code),
            "district": area(case.district_code),
            "subdistrict": area(case.subdistrict_code),
            "address": case.address,
            "latitude": case.latitude,
            "longitude": case.longitude,
        }, key
        assert node["owningAgency"] == {"code": AGENCIES[source]}, key
    assert seen == set(expected)
    # names known without geothai: the provincial office is in Khon Kaen (DOPA 40)
    khon_kaen = {
        n["location"]["province"]["nameEn"] for n in nodes if n["source"]["id"] == SQLITE_SOURCE
    }
    assert khon_kaen == {"Khon Kaen"}
    assert {n["isOverdue"] for n in nodes} == {True, False}
    assert any(n["closedAt"] is None for n in nodes) and any(n["closedAt"] for n in nodes)


def test_a_case_made_from_its_record_is_the_one_its_constructor_makes() -> None:
    """``Case.of`` sets the instance's fields at once rather than through the generated
    ``__init__``; it must set every field, to the values the constructor would."""
    record = every_field_record("damrongdhama")
    directory = object()  # held, never read here
    made = Case.of(record, directory)  # type: ignore[arg-type]
    built = Case(
        key="damrongdhama:7",
        reference_number="REF-7",
        title="the title",
        description="the body",
        source_status="shut",
        received_at=at(1),
        updated_at=at(2),
        due_at=at(3),
        closed_at=at(4),
        record=record,
        directory=directory,  # type: ignore[arg-type]
    )
    assert made == built
    assert vars(made) == vars(built)
    assert set(vars(made)) == set(inspect.signature(Case).parameters)  # what __init__ sets
    assert isinstance(made, Case) and made.record is record and made.directory is directory


def test_an_edge_made_at_once_is_the_one_its_constructor_makes() -> None:
    """``CaseEdge.of`` sets the instance's dict rather than calling the generated
    ``__init__``; it must set what that sets, to the same values."""
    case = Case.of(every_field_record("damrongdhama"), object())  # type: ignore[arg-type]
    order = CaseOrder()
    made = CaseEdge.of(case, order)
    built = CaseEdge(node=case, order=order)
    assert made == built
    assert vars(made) == vars(built)
    assert set(vars(made)) == set(inspect.signature(CaseEdge).parameters)
    assert made.node is case and made.order is order


def test_case_ids_of_a_column_are_each_cases_global_id() -> None:
    """``Case.id`` for a column encodes the keys together: each must be relay's id."""
    keys = ["damrongdhama:1", "provincial-kk:ผู้ร้อง-9", "x:" + "y" * 200, "a:"]
    cases = [Case.of(replace(every_field_record("damrongdhama"), local_id=k), None) for k in keys]  # type: ignore[arg-type]
    expected = [str(relay.GlobalID("Case", case.key)) for case in cases]
    assert batch_resolver("Case", "id")(cases, None) == expected  # type: ignore[misc]
    assert batch_resolver("Case", "id")([], None) == []  # type: ignore[misc]
