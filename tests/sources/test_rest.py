"""The REST adapter's configurable parts against a small agency API served for real on loopback."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import parse_config
from samples.serving import ThreadedServer
from sources import CanonicalStatus, CaseFilter, CaseOrder, source_class
from sources.rest import RestSource

CASES = [
    {
        "ref": f"C{n:03d}",
        "head": f"เรื่องที่ {n}",
        "body": "ไฟดับ" if n % 2 else "ถนนพัง",
        "state": "open" if n % 3 else "done",
        "kind": "R",
        "at": f"2026-01-{n:02d}T08:00:00+07:00",
        "log": [{"when": f"2026-01-{n:02d}T08:00:00+07:00", "what": "รับเรื่อง"}],
    }
    for n in range(1, 26)
]


class TinyAgency:
    """Cursor paging, one call per id, per-case history; remembers the headers it was sent."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/items", self.items),
                Route("/items/batch", self.batch, methods=["POST"]),
                Route("/items/{ref}", self.one),
                Route("/items/{ref}/log", self.log),
            ]
        )

    async def items(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        newest = sorted(CASES, key=lambda c: c["at"], reverse=True)
        start = int(request.query_params.get("after") or 0)
        size = int(request.query_params.get("n", "10"))
        page = newest[start : start + size]
        more = start + size < len(newest)
        return JSONResponse({"page": page, "next": str(start + size) if more else None})

    async def batch(self, request: Request) -> Response:
        wanted = set((await request.json())["refs"])
        return JSONResponse({"found": [c for c in CASES if c["ref"] in wanted]})

    async def one(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        found = [c for c in CASES if c["ref"] == request.path_params["ref"]]
        return JSONResponse(found[0]) if found else JSONResponse({}, status_code=404)

    async def log(self, request: Request) -> Response:
        found = [c for c in CASES if c["ref"] == request.path_params["ref"]]
        return JSONResponse(found[0]["log"]) if found else JSONResponse({}, status_code=404)


CONFIG = """
categories: [{code: ROADS, name_th: ถนน, name_en: Roads}]
sources:
  - id: tiny
    kind: rest
    agency: {code: TINY, name_th: หน่วยงานเล็ก, name_en: Tiny agency}
    base_url: ${URL}
    AUTH
    list:
      path: /items
      items: page
      pagination:
        {style: cursor, cursor_param: after, limit_param: n, next_cursor: next, page_size: 10}
      natural_order: received_at_desc
    fetch: {path: "/items/{id}", concurrency: 4}
    history: {path: "/items/{id}/log", fields: {at: when, note: what}}
    fields:
      id: ref
      reference_number: ref
      title: head
      description: body
      category: kind
      status: state
      received_at: at
    vocabulary:
      statuses: {open: RECEIVED, done: RESOLVED}
      categories: {R: ROADS}
"""


@pytest.fixture
def tiny() -> Iterator[tuple[TinyAgency, ThreadedServer]]:
    agency = TinyAgency()
    server = ThreadedServer(agency.app)
    server.start()
    yield agency, server
    server.stop()


async def source_with(url: str, auth: str) -> RestSource:
    text = CONFIG.replace("AUTH", auth)
    (settings,) = parse_config(text, {"URL": url}).sources
    source = source_class("rest")(settings)
    assert isinstance(source, RestSource)
    return source


@pytest.fixture
async def bearer(tiny: tuple[TinyAgency, ThreadedServer]) -> AsyncIterator[RestSource]:
    source = await source_with(tiny[1].url, "auth: {type: bearer, token: t0ken}")
    yield source
    await source.close()


async def test_cursor_paging_reaches_every_case_in_order(bearer: RestSource) -> None:
    found = await bearer.search_cases(CaseFilter(), CaseOrder(), None, 100)
    assert [record.local_id for record in found] == [f"C{n:03d}" for n in range(25, 0, -1)]


async def test_filters_without_parameters_are_applied_after_fetching(bearer: RestSource) -> None:
    where = CaseFilter(text="ไฟดับ", statuses=frozenset({CanonicalStatus.RESOLVED}))
    found = await bearer.search_cases(where, CaseOrder(), None, 100)
    expected = [c["ref"] for c in CASES if c["body"] == "ไฟดับ" and c["state"] == "done"]
    assert sorted(r.local_id for r in found) == sorted(expected)
    assert await bearer.count_cases(where) == len(expected)


async def test_one_call_per_id_and_per_case_history(bearer: RestSource) -> None:
    found = await bearer.load_cases(["C003", "C007", "nope"])
    assert set(found) == {"C003", "C007"}
    timelines = await bearer.load_timelines(["C003", "nope"])
    assert [entry.note for entry in timelines["C003"]] == ["รับเรื่อง"]
    assert "nope" not in timelines


async def test_bearer_token_is_sent(
    bearer: RestSource, tiny: tuple[TinyAgency, ThreadedServer]
) -> None:
    await bearer.load_cases(["C001"])
    assert tiny[0].headers[-1]["authorization"] == "Bearer t0ken"


async def test_basic_auth_and_headers_are_sent(tiny: tuple[TinyAgency, ThreadedServer]) -> None:
    source = await source_with(
        tiny[1].url,
        'auth: {type: basic, username: ddc, password: "s3cret"}\n    headers: {X-Client: cg}',
    )
    try:
        await source.load_cases(["C001"])
    finally:
        await source.close()
    sent: dict[str, Any] = tiny[0].headers[-1]
    assert sent["authorization"] == "Basic " + base64.b64encode(b"ddc:s3cret").decode()
    assert sent["x-client"] == "cg"


async def test_batch_fetch_with_a_json_body(tiny: tuple[TinyAgency, ThreadedServer]) -> None:
    text = CONFIG.replace("AUTH", "").replace(
        'fetch: {path: "/items/{id}", concurrency: 4}',
        "fetch: {path: /items/batch, ids_param: refs, method: POST, items: found}",
    )
    (settings,) = parse_config(text, {"URL": tiny[1].url}).sources
    source = source_class("rest")(settings)
    try:
        found = await source.load_cases(["C002", "C004", "nope"])
    finally:
        await source.close()
    assert set(found) == {"C002", "C004"}
    assert found["C004"].title == "เรื่องที่ 4"
