"""The Open311 adapter against a minimal, strict GeoReport v2 server served for real on loopback.

The server is what a plain city installation offers: only open/closed statuses, ``status_notes``,
``expected_datetime``, lat/long, the ``notes`` extension on some requests, no paging extension,
and a ``jurisdiction_id`` it requires on every call (HTTP 400 without it, as the spec says).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import parse_config
from samples.serving import ThreadedServer
from sources import CanonicalStatus, CaseFilter, CaseOrder, Channel, source_class
from sources.open311 import Open311Source
from tests.conftest import DemoData, running

# Characters that break a hand-built query string: '&', a space, Thai text.
JURISDICTION = "bangkok&city 1/กทม"

REQUESTS: list[dict[str, Any]] = [
    {
        "service_request_id": "REQ-3",
        "status": "open",
        "status_notes": None,
        "service_name": "Streetlight out",
        "service_code": "streetlight",
        "description": "ไฟถนนดับทั้งซอย",
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": "2026-03-03T20:00:00+07:00",
        "updated_datetime": "2026-03-03T20:00:00+07:00",
        "expected_datetime": None,
        "address": "ซอยสุขุมวิท 50",
        "address_id": None,
        "zipcode": None,
        "lat": 13.705,
        "long": 100.601,
        "media_url": None,
    },
    {
        "service_request_id": "REQ-2",
        "status": "closed",
        "status_notes": "ซ่อมหลอดไฟแล้ว",
        "service_name": "Streetlight out",
        "service_code": "streetlight",
        "description": "เสาไฟล้ม",
        "agency_responsible": "การไฟฟ้านครหลวง",
        "service_notice": None,
        "requested_datetime": "2026-03-02T10:30:00+07:00",
        "updated_datetime": "2026-03-04T16:00:00+07:00",
        "expected_datetime": None,
        "address": "ถนนพระราม 4",
        "address_id": None,
        "zipcode": "10110",
        "lat": 13.7248,
        "long": 100.5491,
        "media_url": "https://photos.city.example/REQ-2.jpg",
    },
    {
        "service_request_id": "REQ-1",
        "status": "open",
        "status_notes": "ส่งช่างออกตรวจแล้ว รอวัสดุ",
        "service_name": "Pothole",
        "service_code": "pothole",
        "description": "หลุมบ่อกลางถนน",
        "agency_responsible": "สำนักการโยธา",
        "service_notice": None,
        "requested_datetime": "2026-03-01T09:00:00+07:00",
        "updated_datetime": "2026-03-02T11:15:00+07:00",
        "expected_datetime": "2026-03-08T17:00:00+07:00",
        "address": "ถนนสีลม",
        "address_id": None,
        "zipcode": "10500",
        "lat": 13.7291,
        "long": 100.5347,
        "media_url": "https://photos.city.example/REQ-1.jpg",
        "notes": [
            {"datetime": "2026-03-01T09:00:00+07:00", "description": "รับเรื่อง"},
            {"datetime": "2026-03-02T11:15:00+07:00", "description": "ส่งช่างออกตรวจ"},
        ],
    },
]


class CityHall:
    """A GeoReport v2 server that refuses any call without the right jurisdiction_id."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/open311/v2/services.json", self.services),
                Route("/open311/v2/requests.json", self.requests),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        self.queries.append(dict(request.query_params))
        if request.query_params.get("jurisdiction_id") != JURISDICTION:
            return JSONResponse(
                [{"code": 400, "description": "jurisdiction_id required"}], status_code=400
            )
        return None

    async def services(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        return JSONResponse(
            [
                {"service_code": code, "service_name": name, "metadata": False, "type": "realtime"}
                for code, name in (("pothole", "Pothole"), ("streetlight", "Streetlight out"))
            ]
        )

    async def requests(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        q = request.query_params
        found = REQUESTS
        if q.get("service_request_id"):
            wanted = q["service_request_id"].split(",")
            found = [r for r in found if r["service_request_id"] in wanted]
        if q.get("service_code"):
            codes = q["service_code"].split(",")
            found = [r for r in found if r["service_code"] in codes]
        if q.get("start_date"):
            since = datetime.fromisoformat(q["start_date"])
            found = [r for r in found if datetime.fromisoformat(r["requested_datetime"]) >= since]
        return JSONResponse(found)


CONFIG = """
categories:
  - {code: ROADS, name_th: ถนน, name_en: Roads}
  - {code: ELECTRICITY, name_th: ไฟฟ้า, name_en: Electricity}
sources:
  - id: city-hall
    kind: open311
    agency: {code: CITY-HALL, name_th: ศาลาว่าการเมือง, name_en: City hall}
    base_url: ${URL}/open311/v2
    jurisdiction_id: ${JURISDICTION}
    page_size: null
    vocabulary:
      statuses: {open: IN_PROGRESS, closed: RESOLVED}
      categories: {pothole: ROADS, streetlight: ELECTRICITY}
"""


@pytest.fixture
def city_hall() -> Iterator[tuple[CityHall, ThreadedServer]]:
    hall = CityHall()
    server = ThreadedServer(hall.app)
    server.start()
    yield hall, server
    server.stop()


def settings_for(url: str) -> Any:
    (settings,) = parse_config(CONFIG, {"URL": url, "JURISDICTION": JURISDICTION}).sources
    return settings


@pytest.fixture
async def city(city_hall: tuple[CityHall, ThreadedServer]) -> AsyncIterator[Open311Source]:
    source = source_class("open311")(settings_for(city_hall[1].url))
    assert isinstance(source, Open311Source)
    yield source
    await source.close()


async def test_jurisdiction_id_goes_encoded_with_every_request(
    city: Open311Source, city_hall: tuple[CityHall, ThreadedServer]
) -> None:
    assert await city.check() == []
    await city.search_cases(CaseFilter(), CaseOrder(), None, 10)
    await city.load_cases(["REQ-1"])
    await city.load_timelines(["REQ-1"])
    hall = city_hall[0]
    assert len(hall.queries) >= 5  # services and a page (check), a page, a batch, a batch
    assert {query.get("jurisdiction_id") for query in hall.queries} == {JURISDICTION}


async def test_plain_open_closed_server_maps_every_standard_field(city: Open311Source) -> None:
    found = await city.load_cases(["REQ-1", "REQ-2", "nope"])
    assert set(found) == {"REQ-1", "REQ-2"}
    open_case, closed_case = found["REQ-1"], found["REQ-2"]
    assert (open_case.status, open_case.source_status) == (CanonicalStatus.IN_PROGRESS, "open")
    assert (closed_case.status, closed_case.source_status) == (CanonicalStatus.RESOLVED, "closed")
    assert open_case.status_notes == "ส่งช่างออกตรวจแล้ว รอวัสดุ"
    assert closed_case.status_notes == "ซ่อมหลอดไฟแล้ว"
    assert open_case.due_at == datetime.fromisoformat("2026-03-08T17:00:00+07:00")
    assert open_case.received_at == datetime.fromisoformat("2026-03-01T09:00:00+07:00")
    assert open_case.updated_at == datetime.fromisoformat("2026-03-02T11:15:00+07:00")
    assert (open_case.location.latitude, open_case.location.longitude) == (13.7291, 100.5347)
    assert open_case.location.address == "ถนนสีลม"
    assert (open_case.category, open_case.source_category) == ("ROADS", "pothole")
    assert open_case.title == open_case.description == "หลุมบ่อกลางถนน"  # no title extension
    assert open_case.channel is Channel.OTHER  # no channel extension
    assert open_case.responsible == "สำนักการโยธา"
    assert open_case.media_urls == ("https://photos.city.example/REQ-1.jpg",)


async def test_notes_extension_is_the_timeline_where_present(city: Open311Source) -> None:
    timelines = await city.load_timelines(["REQ-1", "REQ-2"])
    assert [(entry.at, entry.note, entry.status) for entry in timelines["REQ-1"]] == [
        (datetime.fromisoformat("2026-03-01T09:00:00+07:00"), "รับเรื่อง", None),
        (datetime.fromisoformat("2026-03-02T11:15:00+07:00"), "ส่งช่างออกตรวจ", None),
    ]
    assert list(timelines.get("REQ-2", ())) == []  # no notes list: empty, not a bad response


async def test_service_code_is_pushed_down_and_newest_come_first(
    city: Open311Source, city_hall: tuple[CityHall, ThreadedServer]
) -> None:
    where = CaseFilter(categories=frozenset({"ELECTRICITY"}))
    found = await city.search_cases(where, CaseOrder(), None, 10)
    assert [record.local_id for record in found] == ["REQ-3", "REQ-2"]
    assert city_hall[0].queries[-1]["service_code"] == "streetlight"
    assert await city.count_cases(where) == 2


async def test_status_notes_reach_the_graph(
    demo_data: DemoData, city_hall: tuple[CityHall, ThreadedServer]
) -> None:
    config = replace(demo_data.config, sources=(settings_for(city_hall[1].url),))
    gateway = await running(config)
    try:
        before = len(city_hall[0].queries)
        body = await gateway.query(
            "{ cases(first: 5) { edges { node { referenceNumber status sourceStatus statusNotes"
            " dueAt timeline { note } } } } }"
        )
        # one page of requests.json, carrying the notes: none read again by id
        assert len(city_hall[0].queries) - before == 1
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    assert "errors" not in body
    nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
    assert [
        (n["referenceNumber"], n["status"], n["sourceStatus"], n["statusNotes"]) for n in nodes
    ] == [
        ("REQ-3", "IN_PROGRESS", "open", None),
        ("REQ-2", "RESOLVED", "closed", "ซ่อมหลอดไฟแล้ว"),
        ("REQ-1", "IN_PROGRESS", "open", "ส่งช่างออกตรวจแล้ว รอวัสดุ"),
    ]
    assert nodes[2]["dueAt"] == "2026-03-08T10:00:00+00:00"  # expected_datetime, in UTC
    assert [entry["note"] for entry in nodes[2]["timeline"]] == ["รับเรื่อง", "ส่งช่างออกตรวจ"]
    assert nodes[1]["timeline"] == []
