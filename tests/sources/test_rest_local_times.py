"""``kind: rest`` over an API that writes Bangkok times without an offset, and embeds each
case's history in its list: ``timezone`` reads and sends its times as it means them, and a
page with timelines costs one HTTP request (``history.in_list``), counted at the server and in
``complaint_graph_source_http_requests_total``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import ConfigError, GatewayConfig, parse_config
from samples.serving import ThreadedServer
from sources import CaseFilter, CaseOrder, source_class
from sources._model import TIMELINE
from sources.rest import RestSource
from tests.conftest import serving

BANGKOK = ZoneInfo("Asia/Bangkok")
LATE = "B000"
"""Received at 23:30 on 30 September in Bangkok: 16:30 UTC, the same day; read as UTC, the
next day in Bangkok."""
TOKYO = "B001"
"""Received at a time written with its own offset (+09:00), which it keeps."""


def _case(number: int) -> dict[str, Any]:
    if number == 0:
        received = "2026-09-30T23:30:00"
    elif number == 1:
        received = "2026-10-01T06:00:00+09:00"  # 04:00 in Bangkok
    else:
        local = datetime(2026, 9, 1, 9) + timedelta(hours=5 * number)
        received = local.isoformat()
    start = datetime.fromisoformat(received)
    return {
        "code": f"B{number:03d}",
        "subject": f"เรื่องที่ {number}",
        "state": "new" if number % 2 else "done",
        "kind": "R",
        "received": received,
        "history": [
            {"when": start.isoformat(), "state": "new", "remark": "รับเรื่อง"},
            {"when": (start + timedelta(hours=1)).isoformat(), "state": "done", "remark": None},
        ],
    }


CASES = [_case(n) for n in range(150)]


def _local(text: str) -> datetime:
    """A time as this API compares them: local to Bangkok, without an offset."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is None else moment.astimezone(BANGKOK).replace(tzinfo=None)


class LocalTimesAgency:
    """Lists cases newest first by offset, with their history inside when asked
    (``expand=history``); filters by received
    time in local times only (an offset in a parameter is refused, as such APIs do); one case
    per id, or several by ``?ids=a;b``. Counts every HTTP request it receives."""

    def __init__(self) -> None:
        self.requests = 0
        self.sent: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/cases", self.listing),
                Route("/cases/batch", self.batch),
                Route("/cases/{code}", self.one),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)

    async def listing(self, request: Request) -> Response:
        q = request.query_params
        self.sent.append(dict(q))
        try:
            since = datetime.fromisoformat(q["from"]) if "from" in q else None
            before = datetime.fromisoformat(q["to"]) if "to" in q else None
        except ValueError:
            return JSONResponse({"error": "not a time"}, status_code=400)
        if any(bound is not None and bound.tzinfo is not None for bound in (since, before)):
            return JSONResponse({"error": "times are local, without an offset"}, status_code=400)
        found = [
            case
            for case in sorted(CASES, key=lambda c: _local(c["received"]), reverse=True)
            if (since is None or _local(case["received"]) >= since)
            and (before is None or _local(case["received"]) < before)
        ]
        start, size = int(q.get("offset", "0")), int(q.get("limit", "20"))
        page = found[start : start + size]
        if q.get("expand") != "history":  # the history only when asked for
            page = [{k: v for k, v in case.items() if k != "history"} for case in page]
        return JSONResponse({"data": page})

    async def one(self, request: Request) -> Response:
        found = [c for c in CASES if c["code"] == request.path_params["code"]]
        return JSONResponse(found[0]) if found else JSONResponse({}, status_code=404)

    async def batch(self, request: Request) -> Response:
        wanted = set(request.query_params["ids"].split(";"))
        return JSONResponse({"data": [c for c in CASES if c["code"] in wanted]})


SOURCE = """
  - id: bkk
    kind: rest
    agency: {code: BKK, name_th: หน่วยงานเวลาท้องถิ่น, name_en: Local times agency}
    base_url: ${URL}
    TIMEZONE
    list:
      path: /cases
      items: data
      pagination: {style: offset, page_size: 200}
      natural_order: received_at_desc
      filters: {received_from: from, received_before: to}
    FETCH
    history: {embedded: history, IN_LIST fields: {at: when, status: state, note: remark}}
    fields:
      id: code
      reference_number: code
      title: subject
      description: subject
      category: kind
      status: state
      received_at: received
    vocabulary:
      statuses: {new: RECEIVED, done: RESOLVED}
      categories: {R: ROADS}
"""
HEADER = "categories: [{code: ROADS, name_th: ถนน, name_en: Roads}]\nsources:"
PER_ID = 'fetch: {path: "/cases/{id}"}'
BATCH = "fetch: {path: /cases/batch, ids_param: ids, ids_separator: ;, items: data}"


def source_text(
    url: str, *, timezone: str | None = "Asia/Bangkok", in_list: bool = True, fetch: str = PER_ID
) -> str:
    return (
        SOURCE.replace("${URL}", url)
        .replace("TIMEZONE", f"timezone: {timezone}" if timezone else "")
        .replace("IN_LIST", "in_list: true, list_params: {expand: history}," if in_list else "")
        .replace("FETCH", fetch)
    )


def rest_source(url: str, **options: Any) -> RestSource:
    text = HEADER + source_text(url, **options)
    (settings,) = parse_config(text, {}).sources
    source = source_class("rest")(settings)
    assert isinstance(source, RestSource)
    return source


@pytest.fixture
def agency() -> Iterator[tuple[LocalTimesAgency, str]]:
    app = LocalTimesAgency()
    server = ThreadedServer(app)
    server.start()
    yield app, server.url
    server.stop()


@pytest.fixture
async def bkk(agency: tuple[LocalTimesAgency, str]) -> AsyncIterator[RestSource]:
    source = rest_source(agency[1])
    yield source
    await source.close()


def bangkok(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BANGKOK)


async def test_naive_times_are_read_in_the_configured_zone(bkk: RestSource) -> None:
    found = await bkk.load_cases([LATE, TOKYO])
    assert found[LATE].received_at == datetime(2026, 9, 30, 16, 30, tzinfo=UTC)
    assert found[TOKYO].received_at == datetime(2026, 9, 30, 21, 0, tzinfo=UTC)
    timeline = (await bkk.load_timelines([LATE]))[LATE]
    assert [entry.at for entry in timeline] == [
        datetime(2026, 9, 30, 16, 30, tzinfo=UTC),
        datetime(2026, 9, 30, 17, 30, tzinfo=UTC),
    ]


async def test_without_a_timezone_naive_times_are_utc(agency: tuple[LocalTimesAgency, str]) -> None:
    source = rest_source(agency[1], timezone=None)
    try:
        found = await source.load_cases([LATE, TOKYO])
    finally:
        await source.close()
    assert found[LATE].received_at == datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
    assert found[TOKYO].received_at == datetime(2026, 9, 30, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("received_from", "received_before", "included"),
    [
        (bangkok(2026, 10, 1), None, False),  # the day after, in Bangkok
        (bangkok(2026, 9, 30), bangkok(2026, 10, 1), True),  # its own Bangkok day
        (bangkok(2026, 9, 30, 23, 30), bangkok(2026, 9, 30, 23, 31), True),
        (None, bangkok(2026, 9, 30, 23, 30), False),  # the bound before is exclusive
        (datetime(2026, 9, 30, 16, 30, tzinfo=UTC), None, True),  # a bound given in UTC
    ],
)
async def test_received_bounds_at_the_bangkok_day_boundary(
    bkk: RestSource,
    agency: tuple[LocalTimesAgency, str],
    received_from: datetime | None,
    received_before: datetime | None,
    included: bool,
) -> None:
    where = CaseFilter(received_from=received_from, received_before=received_before)
    found = {record.local_id for record in await bkk.search_cases(where, CaseOrder(), None, 200)}
    assert (LATE in found) is included
    expected = {
        case["code"]
        for case in CASES
        if (received_from is None or _local(case["received"]) >= _naive(received_from))
        and (received_before is None or _local(case["received"]) < _naive(received_before))
    }
    assert found == expected
    sent = agency[0].sent[-1]
    if received_from is not None:
        assert sent["from"] == _naive(received_from).isoformat()  # pushed down, local


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(BANGKOK).replace(tzinfo=None)


async def test_times_sent_with_their_offset_when_asked(
    agency: tuple[LocalTimesAgency, str],
) -> None:
    """``list.filters.time_offset``: the bound in the zone, with its offset (this API refuses
    it, which shows what was sent)."""
    text = source_text(agency[1]).replace(
        "filters: {received_from: from,", "filters: {time_offset: true, received_from: from,"
    )
    (settings,) = parse_config(HEADER + text, {}).sources
    source = source_class("rest")(settings)
    try:
        with pytest.raises(Exception, match="HTTP 400"):
            await source.search_cases(
                CaseFilter(received_from=datetime(2026, 9, 30, 17, tzinfo=UTC)),
                CaseOrder(),
                None,
                10,
            )
    finally:
        await source.close()
    assert agency[0].sent[-1]["from"] == "2026-10-01T00:00:00+07:00"


def test_an_unknown_zone_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(HEADER + source_text("http://x", timezone="Asia/Bankok"), {})
    assert any("timezone" in p and "Asia/Bangkok" in p for p in raised.value.problems)


def test_in_list_needs_embedded_history() -> None:
    text = source_text("http://x").replace(
        "history: {embedded: history, in_list: true,",
        "history: {path: '/cases/{id}/log', in_list: true,",
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(HEADER + text, {})
    assert any("in_list needs embedded" in p for p in raised.value.problems)
    text = source_text("http://x", in_list=False).replace(
        "history: {embedded: history,", "history: {embedded: history, list_params: {a: b},"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(HEADER + text, {})
    assert any("set in_list: true" in p for p in raised.value.problems)


# -- requests per page --------------------------------------------------------------------

PAGE = """
query Page($first: Int) {
  cases(first: $first) { edges { node { referenceNumber timeline { at status note } } } }
}
"""


def gateway_config(url: str, key_store: Path, **options: Any) -> GatewayConfig:
    text = (
        f"auth: {{anonymous: {{role: analyst}}, key_store: 'sqlite+aiosqlite:///{key_store}'}}\n"
        + HEADER
        + source_text(url, **options)
    )
    return parse_config(text, {})


def scraped(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def page_costs(
    url: str, key_store: Path, agency: LocalTimesAgency, first: int, **options: Any
) -> tuple[int, float, list[dict[str, Any]]]:
    """A page of ``first`` cases with their timelines: the HTTP requests the API received,
    those /metrics counted, and the page's edges."""
    async with serving(gateway_config(url, key_store, **options)) as gateway:
        before = agency.requests
        body = await gateway.query(PAGE, {"first": first})
        received = agency.requests - before
        text = (await gateway.client.get("/metrics")).text
    assert "errors" not in body, body["errors"]
    counted = scraped(text, "complaint_graph_source_http_requests_total", source="bkk")
    return received, counted, body["data"]["cases"]["edges"]


@pytest.mark.parametrize("first", [10, 100])
async def test_a_page_with_timelines_listed_in_it_is_one_request(
    agency: tuple[LocalTimesAgency, str], tmp_path: Path, first: int
) -> None:
    app, url = agency
    carried = await _costs(app, url, tmp_path, first, in_list=True)
    asked = await _costs(app, url, tmp_path, first, in_list=False)
    assert carried[:2] == (1, 1)
    assert asked[:2] == (1 + first, 1 + first)  # the page, then each case through fetch
    assert carried[2] == asked[2]  # the same answer either way
    edges = carried[2]
    assert len(edges) == first
    assert all(len(edge["node"]["timeline"]) == 2 for edge in edges)


async def test_a_batch_fetch_reads_the_timelines_in_one_request(
    agency: tuple[LocalTimesAgency, str], tmp_path: Path
) -> None:
    app, url = agency
    received, counted, edges = await _costs(app, url, tmp_path, 100, in_list=False, fetch=BATCH)
    assert (received, counted) == (2, 2)  # the page, then one batch of its hundred ids
    assert all(len(edge["node"]["timeline"]) == 2 for edge in edges)


async def test_a_carried_timeline_is_in_the_configured_zone(
    agency: tuple[LocalTimesAgency, str], tmp_path: Path
) -> None:
    app, url = agency
    _, _, edges = await _costs(app, url, tmp_path, 150, in_list=True)
    late = next(e["node"] for e in edges if e["node"]["referenceNumber"] == LATE)
    assert [datetime.fromisoformat(entry["at"]) for entry in late["timeline"]] == [
        datetime(2026, 9, 30, 16, 30, tzinfo=UTC),
        datetime(2026, 9, 30, 17, 30, tzinfo=UTC),
    ]
    assert [entry["note"] for entry in late["timeline"]] == ["รับเรื่อง", None]


async def _costs(
    app: LocalTimesAgency, url: str, tmp_path: Path, first: int, **options: Any
) -> tuple[int, float, list[dict[str, Any]]]:
    return await page_costs(url, tmp_path / "keys.sqlite", app, first, **options)


async def test_check_reports_listed_cases_without_their_history(
    agency: tuple[LocalTimesAgency, str],
) -> None:
    right = rest_source(agency[1])
    text = source_text(agency[1]).replace(
        "history: {embedded: history,", "history: {embedded: log,"
    )
    (settings,) = parse_config(HEADER + text, {}).sources
    wrong = source_class("rest")(settings)
    try:
        assert await right.check() == []
        (problem,) = await wrong.check()
    finally:
        await right.close()
        await wrong.close()
    assert problem.key == "history.in_list"
    assert "50 of 50 listed cases" in problem.problem and "'log'" in problem.problem


async def test_only_a_page_asked_with_its_timelines_asks_the_list_to_embed_them(
    bkk: RestSource, agency: tuple[LocalTimesAgency, str]
) -> None:
    titles = frozenset({"title"})
    plain = await bkk.search_cases(CaseFilter(), CaseOrder(), None, 5, titles)
    assert "expand" not in agency[0].sent[-1]
    assert all(record.timeline is None for record in plain)
    carried = await bkk.search_cases(CaseFilter(), CaseOrder(), None, 5, titles | {TIMELINE})
    assert agency[0].sent[-1]["expand"] == "history"
    loaded = await bkk.load_timelines([record.local_id for record in carried])
    assert {r.local_id: r.timeline for r in carried} == {
        local_id: tuple(entries) for local_id, entries in loaded.items()
    }
    assert len(carried) == 5
