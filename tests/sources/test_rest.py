"""The REST adapter's configurable parts against a small agency API served for real on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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
    """Paging by cursor, offset or page number, one call per id (counting how many are in
    flight at once), a batch endpoint, per-case history; remembers what it was sent."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.pages: list[dict[str, str]] = []
        self.batches: list[list[str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.hold_pairs = False  # hold each one-id call until a second one is in flight
        self._pair: asyncio.Event | None = None
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
        q = request.query_params
        self.pages.append(dict(q))
        newest = sorted(CASES, key=lambda c: c["at"], reverse=True)
        size = int(q.get("n", "10"))
        if "skip" in q:  # offset style
            start = int(q["skip"])
        elif "p" in q:  # page style, pages numbered from 0
            start = int(q["p"]) * size
        else:  # cursor style: the cursor is opaque to clients, an offset here
            start = int(q.get("after") or 0)
        page = newest[start : start + size]
        more = start + size < len(newest)
        return JSONResponse({"page": page, "next": str(start + size) if more else None})

    async def batch(self, request: Request) -> Response:
        refs = (await request.json())["refs"]
        self.batches.append(refs)
        wanted = set(refs)
        return JSONResponse({"found": [c for c in CASES if c["ref"] in wanted]})

    async def one(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            # Held until a second request is in flight (or 5 s pass): a client that sends
            # them one at a time is slow here, and one that sends them all at once is seen.
            if self._pair is None:
                self._pair = asyncio.Event()
            if self.in_flight >= 2:
                self._pair.set()
            if self.hold_pairs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._pair.wait(), 5)
            found = [c for c in CASES if c["ref"] == request.path_params["ref"]]
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._pair = None
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


PAGINATIONS = {
    "cursor": "{style: cursor, cursor_param: after, limit_param: n, next_cursor: next, "
    "page_size: 10}",
    "offset": "{style: offset, offset_param: skip, limit_param: n, page_size: 10}",
    "page": "{style: page, page_param: p, first_page: 0, limit_param: n, page_size: 10}",
}


@pytest.mark.parametrize("style", sorted(PAGINATIONS))
async def test_every_pagination_style_reaches_every_case_in_order(
    tiny: tuple[TinyAgency, ThreadedServer], style: str
) -> None:
    text = CONFIG.replace("AUTH", "").replace(
        "{style: cursor, cursor_param: after, limit_param: n, next_cursor: next, page_size: 10}",
        PAGINATIONS[style],
    )
    (settings,) = parse_config(text, {"URL": tiny[1].url}).sources
    source = source_class("rest")(settings)
    try:
        found = await source.search_cases(CaseFilter(), CaseOrder(), None, 100)
    finally:
        await source.close()
    assert [record.local_id for record in found] == [f"C{n:03d}" for n in range(25, 0, -1)]
    asked = [{k: v for k, v in page.items() if k != "n"} for page in tiny[0].pages]
    assert (
        asked
        == {
            "cursor": [{}, {"after": "10"}, {"after": "20"}],
            "offset": [{"skip": "0"}, {"skip": "10"}, {"skip": "20"}],
            "page": [{"p": "0"}, {"p": "1"}, {"p": "2"}],
        }[style]
    )


async def test_one_call_per_id_keeps_to_its_concurrency(
    tiny: tuple[TinyAgency, ThreadedServer],
) -> None:
    text = CONFIG.replace("AUTH", "").replace(
        'fetch: {path: "/items/{id}", concurrency: 4}',
        'fetch: {path: "/items/{id}", concurrency: 2}',
    )
    (settings,) = parse_config(text, {"URL": tiny[1].url}).sources
    source = source_class("rest")(settings)
    wanted = [f"C{n:03d}" for n in range(1, 9)]
    tiny[0].hold_pairs = True
    try:
        found = await source.load_cases(wanted)
    finally:
        await source.close()
    assert sorted(found) == wanted
    assert tiny[0].most_in_flight == 2  # concurrent, and never more than configured


async def test_a_batch_goes_in_chunks_of_max_batch(
    tiny: tuple[TinyAgency, ThreadedServer],
) -> None:
    text = CONFIG.replace("AUTH", "").replace(
        'fetch: {path: "/items/{id}", concurrency: 4}',
        "fetch: {path: /items/batch, ids_param: refs, method: POST, items: found, max_batch: 3}",
    )
    (settings,) = parse_config(text, {"URL": tiny[1].url}).sources
    source = source_class("rest")(settings)
    wanted = [f"C{n:03d}" for n in range(1, 9)]
    try:
        found = await source.load_cases(wanted)
    finally:
        await source.close()
    assert sorted(found) == wanted
    assert sorted(tiny[0].batches) == [wanted[0:3], wanted[3:6], wanted[6:8]]


@pytest.mark.parametrize(
    ("reference", "encoding"),
    [("A-1", "utf-16"), (2**70, "utf-8"), (-(2**63) - 1, "utf-8"), (2**64 - 1, "utf-8")],
)
async def test_json_that_orjson_refuses_or_misreads_is_read_exactly(
    reference: str | int, encoding: str
) -> None:
    """Bodies are decoded with orjson; what it refuses (UTF-16) or would read as a float
    (integers past 64 bits) is decoded by httpx instead: read exactly, not "not JSON"."""
    page = {"page": [{**CASES[0], "ref": reference}], "next": None}

    async def items(request: Request) -> Response:
        body = json.dumps(page, ensure_ascii=False).encode(encoding)
        return Response(body, media_type=f"application/json; charset={encoding}")

    server = ThreadedServer(Starlette(routes=[Route("/items", items)]))
    server.start()
    source = await source_with(server.url, "")
    try:
        (found,) = await source.search_cases(CaseFilter(), CaseOrder(), None, 10)
    finally:
        await source.close()
        server.stop()
    assert (found.local_id, found.title) == (str(reference), CASES[0]["head"])
