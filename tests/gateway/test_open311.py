"""The federated cases served as Open311 GeoReport v2, valid against the official schemas.

The standard filters are tested item by item in test_open311_conformance.py."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from gateway.config import GatewayConfig
from tests.conftest import DemoData, RunningGateway, running
from tests.resolvers.expected import ALL_SOURCES, POSTGRES_SOURCE

SCHEMAS = Path(__file__).parent / "georeport_v2"


def validator(name: str) -> Draft7Validator:
    resources = [
        (path.name, DRAFT7.create_resource(json.loads(path.read_text())))
        for path in SCHEMAS.glob("*.json")
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft7Validator(
        json.loads((SCHEMAS / name).read_text()),
        registry=registry,
        format_checker=Draft7Validator.FORMAT_CHECKER,  # date-time and uri, see the extras
    )


def assert_valid(name: str, document: Any) -> None:
    errors = list(validator(name).iter_errors(document))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


async def get(gateway: RunningGateway, path: str, **params: str) -> Any:
    response = await gateway.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_services_are_the_unified_categories(gateway: RunningGateway) -> None:
    services = await get(gateway, "/open311/v2/services.json")
    assert_valid("services.json", services)
    categories = await gateway.query("{ categories { code } }")
    assert [s["service_code"] for s in services] == [
        c["code"] for c in categories["data"]["categories"]
    ]


async def test_requests_come_from_every_agency_newest_first(gateway: RunningGateway) -> None:
    requests = await get(gateway, "/open311/v2/requests.json", page_size="1000")
    assert_valid("requests.json", requests)
    assert len(requests) == 1000
    times = [datetime.fromisoformat(r["requested_datetime"]) for r in requests]
    assert times == sorted(times, reverse=True)
    agencies = {r["agency_responsible"] for r in requests}
    assert len(agencies) == len(ALL_SOURCES)


async def test_one_request_by_the_graphs_id(gateway: RunningGateway) -> None:
    page = await gateway.query("{ cases(first: 3) { edges { node { id referenceNumber } } } }")
    nodes = [edge["node"] for edge in page["data"]["cases"]["edges"]]
    single = await get(gateway, f"/open311/v2/requests/{nodes[0]['id']}.json")
    assert_valid("requests.json", single)
    assert single[0]["service_request_id"] == nodes[0]["id"]
    listed = await get(
        gateway, "/open311/v2/requests.json", service_request_id=",".join(n["id"] for n in nodes)
    )
    assert [r["service_request_id"] for r in listed] == [n["id"] for n in nodes]


async def test_unknown_ids_and_bad_parameters_are_clear_errors(gateway: RunningGateway) -> None:
    missing = await gateway.client.get("/open311/v2/requests/bm9wZQ==.json")
    assert missing.status_code == 404
    assert missing.json()[0]["code"] == 404
    for params in ({"status": "pending"}, {"page_size": "5000"}, {"start_date": "yesterday"}):
        bad = await gateway.client.get("/open311/v2/requests.json", params=params)
        assert bad.status_code == 400, params
        assert bad.json()[0]["description"]


async def test_a_failed_source_is_named_in_a_header(demo_data: DemoData) -> None:
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    dead = pg.model_copy(update={"url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    others = tuple(s for s in demo_data.config.sources if s.id != POSTGRES_SOURCE)
    gateway = await running(
        GatewayConfig(
            demo_data.config.categories,
            (dead, *others),
            demo_data.config.limits,
            auth=demo_data.config.auth,
        )
    )
    try:
        response = await gateway.client.get("/open311/v2/requests.json")
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    assert response.status_code == 200
    assert response.headers["X-Complaint-Graph-Failed-Sources"] == POSTGRES_SOURCE
    assert len(response.json()) == 100
