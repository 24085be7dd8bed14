"""``kind: graphql`` against a real GraphQL API: PostGraphile 4 (pinned in tests/graphql-agency,
installed by ``make test``) in front of an agency's own PostgreSQL tables, which are shaped
nothing like the unified model (``petitions.petition``, Thai status names, a ``petition_log``).

Expected answers are read from those tables with SQL, never through PostGraphile or the gateway;
HTTP requests are counted where they arrive, by the agency's server.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.config import GatewayConfig, parse_config
from samples.serving import ThreadedServer
from sources import CaseFilter, CaseOrder, Position, SortField, SourceBadResponse, source_class
from sources.graphql import GraphQLSource
from tests.conftest import DemoData, RunningGateway, serving
from tests.postgres import create_database, drop_database, execute, run

AGENCY_DIR = Path(__file__).resolve().parents[1] / "graphql-agency"
BANGKOK = "+07:00"
COUNT = 40
STATUSES = {"รับเรื่อง": "RECEIVED", "กำลังดำเนินการ": "IN_PROGRESS", "ยุติเรื่อง": "RESOLVED"}
TOPICS = {"ถนน": "ROADS", "น้ำ": "WATER", "ไฟฟ้า": "ELECTRICITY"}
SQLITE_SOURCE = "khonkaen-office"

SCHEMA = """
CREATE SCHEMA petitions;
CREATE TABLE petitions.petition (
  id integer PRIMARY KEY,
  ref_no text NOT NULL,
  subject text NOT NULL,
  detail text NOT NULL,
  status_code text NOT NULL,
  topic text NOT NULL,
  province text,
  district text,
  filed_at timestamptz NOT NULL,
  changed_at timestamptz,
  filed_local timestamp NOT NULL  -- the same time as Bangkok's wall clock, without a zone
);
CREATE TABLE petitions.petition_log (
  id serial PRIMARY KEY,
  petition_id integer NOT NULL REFERENCES petitions.petition (id),
  logged_at timestamptz NOT NULL,
  status_code text,
  remark text
);
CREATE INDEX ON petitions.petition_log (petition_id);
"""


def _rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Deterministic cases, each filed at its own time (Bangkok days, some near midnight)."""
    statuses, topics = list(STATUSES), list(TOPICS)
    start = datetime(2026, 9, 16, 23, 30, tzinfo=UTC)  # amid the demo's newest
    cases, logs = [], []
    for n in range(1, COUNT + 1):
        filed = start + timedelta(hours=7 * n, minutes=n)
        status = statuses[n % 3]
        subject = ("ไฟดับทั้งซอย" if n % 4 == 0 else "ถนนชำรุด") + f" ครั้งที่ {n}"
        cases.append(
            (
                n,
                f"PET-{n:04d}",
                subject,
                f"รายละเอียดเรื่องที่ {n}",
                status,
                topics[n % 3],
                "40" if n % 2 else "41",
                "4001" if n % 2 else "4101",
                filed,
                filed + timedelta(days=1),
                filed.astimezone(ZoneInfo("Asia/Bangkok")).replace(tzinfo=None),
            )
        )
        for step in range(n % 3 + 1):
            logs.append((n, filed + timedelta(hours=step), statuses[step], f"บันทึก {n}.{step}"))
    return cases, logs


async def _load(dsn: str) -> None:
    await execute(dsn, SCHEMA)
    cases, logs = _rows()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table("petition", schema_name="petitions", records=cases)
        await connection.copy_records_to_table(
            "petition_log",
            schema_name="petitions",
            records=logs,
            columns=["petition_id", "logged_at", "status_code", "remark"],
        )
    finally:
        await connection.close()


@dataclass
class Agency:
    """PostGraphile on the agency's database, and that database for expected answers."""

    url: str
    dsn: str

    async def requests(self) -> int:
        """GraphQL requests the agency's server has received so far."""
        async with httpx.AsyncClient() as client:
            answer = await client.get(self.url.replace("/graphql", "/requests"))
        count: int = answer.json()["graphql"]
        return count

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


@pytest.fixture(scope="module")
def agency(postgres_admin_dsn: str) -> Iterator[Agency]:
    node = shutil.which("node")
    assert node is not None, "node is needed for the GraphQL agency (PostGraphile)"
    assert (AGENCY_DIR / "node_modules" / "postgraphile").is_dir(), (
        "PostGraphile is not installed: run `npm ci --prefix tests/graphql-agency` (make test does)"
    )
    dsn = run(create_database(postgres_admin_dsn, "cg_gql"))
    run(_load(dsn))
    server = subprocess.Popen(
        [node, str(AGENCY_DIR / "server.js"), dsn, "petitions"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()  # printed once it listens
        assert port.isdigit(), server.stderr.read() if server.stderr else "no port"
        yield Agency(f"http://127.0.0.1:{port}/graphql", dsn)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for pipe in (server.stdout, server.stderr):
            if pipe is not None:
                pipe.close()
        run(drop_database(postgres_admin_dsn, dsn))


FIELDS = "id refNo subject detail statusCode topic province district filedAt changedAt"

CONFIG = f"""
categories:
  - {{code: ROADS, name_th: ถนน, name_en: Roads}}
  - {{code: WATER, name_th: น้ำ, name_en: Water}}
  - {{code: ELECTRICITY, name_th: ไฟฟ้า, name_en: Electricity}}
sources:
  - id: petitions
    kind: graphql
    agency: {{code: PET, name_th: ศูนย์รับเรื่องราวร้องทุกข์, name_en: Petition centre}}
    url: ${{URL}}
    id_type: int
    list:
      query: |
        query Page($first: Int!, $after: Cursor, $offset: Int, $filter: PetitionFilter,
                   $orderBy: [PetitionsOrderBy!]) {{
          allPetitions(first: $first, after: $after, offset: $offset, filter: $filter,
                       orderBy: $orderBy) {{
            nodes {{ ...Petition LOGS }}
            pageInfo {{ hasNextPage endCursor }}
            totalCount
          }}
        }}
        fragment Petition on Petition {{ {FIELDS} }}
      items: allPetitions.nodes
      total: allPetitions.totalCount
      pagination:
        style: PAGING
        page_size: 50
        end_cursor: allPetitions.pageInfo.endCursor
        has_next_page: allPetitions.pageInfo.hasNextPage
      filters:
        status: statusCode.in
        province_code: province.in
        received_from: filedAt.greaterThanOrEqualTo
        received_before: filedAt.lessThan
        updated_from: changedAt.greaterThanOrEqualTo
      sort:
        received_at_desc: [FILED_AT_DESC, ID_DESC]
        received_at_asc: [FILED_AT_ASC, ID_ASC]
        updated_at_asc: [CHANGED_AT_ASC, ID_ASC]
    FETCH
    HISTORY
    fields:
      id: id
      reference_number: refNo
      title: subject
      description: detail
      status: statusCode
      category: topic
      province_code: province
      district_code: district
      received_at: filedAt
      updated_at: changedAt
    vocabulary:
      statuses: {json.dumps(STATUSES, ensure_ascii=False)}
      categories: {json.dumps(TOPICS, ensure_ascii=False)}
"""

FETCH_BY_IDS = f"""fetch:
      batch: ids
      query: |
        query Cases($ids: [Int!]) {{
          allPetitions(filter: {{id: {{in: $ids}}}}) {{ nodes {{ {FIELDS} FETCHLOGS }} }}
        }}
      items: allPetitions.nodes
      max_batch: 100"""

FETCH_BY_ALIASES = f"""fetch:
      batch: aliases
      variable: id
      query: "query Case($id: Int!) {{ petitionById(id: $id) {{ {FIELDS} FETCHLOGS }} }}"
      max_batch: 100"""

HISTORY_BY_ALIASES = """history:
      fetch:
        batch: aliases
        variable: id
        query: |
          query Log($id: Int!) {
            petitionById(id: $id) {
              petitionLogsByPetitionId(orderBy: LOGGED_AT_ASC) {
                nodes { loggedAt statusCode remark }
              }
            }
          }
        items: petitionLogsByPetitionId.nodes
        max_batch: BATCH
      fields: {at: loggedAt, status: statusCode, note: remark}"""

HISTORY_BY_IDS = """history:
      fetch:
        batch: ids
        query: |
          query Logs($ids: [Int!]) {
            allPetitionLogs(filter: {petitionId: {in: $ids}}) {
              nodes { petitionId loggedAt statusCode remark }
            }
          }
        items: allPetitionLogs.nodes
        max_batch: BATCH
      case_id: petitionId
      fields: {at: loggedAt, status: statusCode, note: remark}"""

HISTORY_EMBEDDED = """history:
      embedded: petitionLogsByPetitionId.nodes
      fields: {at: loggedAt, status: statusCode, note: remark}"""

EMBEDDED_LOGS = (
    "petitionLogsByPetitionId(orderBy: LOGGED_AT_ASC) { nodes { loggedAt statusCode remark } }"
)


def graphql_config(
    url: str,
    *,
    fetch: str = FETCH_BY_IDS,
    history: str = HISTORY_BY_ALIASES,
    batch: int = 100,
    paging: str = "relay",
    embedded_in_pages: bool = False,
) -> GatewayConfig:
    text = (
        CONFIG.replace("FETCH", fetch)
        .replace("HISTORY", history.replace("BATCH", str(batch)))
        .replace("PAGING", paging)
        .replace("FETCHLOGS", EMBEDDED_LOGS if history == HISTORY_EMBEDDED else "")
        .replace("LOGS", EMBEDDED_LOGS if embedded_in_pages else "")
    )
    return parse_config(text, {"URL": url})


def source_for(url: str, **options: Any) -> GraphQLSource:
    (settings,) = graphql_config(url, **options).sources
    source = source_class("graphql")(settings)
    assert isinstance(source, GraphQLSource)
    return source


def mixed(demo_data: DemoData, graphql: GatewayConfig) -> GatewayConfig:
    """The demo's SQLite agency and the GraphQL agency behind one gateway."""
    sqlite = next(s for s in demo_data.config.sources if s.id == SQLITE_SOURCE)
    return replace(demo_data.config, sources=(sqlite, *graphql.sources))


async def expected_refs(agency: Agency, where: str = "true", *args: Any) -> list[str]:
    """Reference numbers, newest first, straight from the agency's table."""
    rows = await agency.sql(
        f"SELECT ref_no FROM petitions.petition WHERE {where} ORDER BY filed_at DESC", *args
    )
    return [row["ref_no"] for row in rows]


CASES = """
query Cases($first: Int, $after: String, $filter: CaseFilterInput) {
  cases(first: $first, after: $after, filter: $filter) {
    edges { node { id referenceNumber receivedAt source { id } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


async def all_pages(
    gateway: RunningGateway, filter: dict[str, Any], first: int
) -> tuple[list[str], int, int]:
    """Every page's reference numbers, the pages read and the total the first page said."""
    refs: list[str] = []
    cursor, pages, total = None, 0, -1
    while True:
        body = await gateway.query(CASES, {"first": first, "after": cursor, "filter": filter})
        assert "errors" not in body, body["errors"]
        page = body["data"]["cases"]
        total = page["totalCount"] if pages == 0 else total
        pages += 1
        refs += [edge["node"]["referenceNumber"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return refs, pages, total
        cursor = page["pageInfo"]["endCursor"]


# -- through the gateway -----------------------------------------------------------------------


async def test_a_graphql_agency_appears_in_cases_next_to_an_sqlite_one(
    agency: Agency, demo_data: DemoData
) -> None:
    config = mixed(demo_data, graphql_config(agency.url))
    async with serving(config) as gateway:
        body = await gateway.query(CASES, {"first": 60})
        kinds = await gateway.query("{ sources { id kind pushedDownFilters } }")
    assert "errors" not in body, body["errors"]
    nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
    assert {node["source"]["id"] for node in nodes} == {SQLITE_SOURCE, "petitions"}
    times = [datetime.fromisoformat(node["receivedAt"]) for node in nodes]
    assert times == sorted(times, reverse=True)  # one order across both agencies
    oldest_shown = times[-1]
    newer = await expected_refs(agency, "filed_at >= $1", oldest_shown)
    assert [n["referenceNumber"] for n in nodes if n["source"]["id"] == "petitions"] == newer
    with sqlite3.connect(demo_data.sqlite_path) as db:
        (sqlite_cases,) = db.execute("SELECT count(*) FROM petition").fetchone()
    assert body["data"]["cases"]["totalCount"] == COUNT + sqlite_cases
    petitions = next(s for s in kinds["data"]["sources"] if s["id"] == "petitions")
    assert petitions["kind"] == "graphql"
    assert set(petitions["pushedDownFilters"]) == {
        "status",
        "provinceCode",
        "receivedFrom",
        "receivedBefore",
    }


async def test_filters_pushed_down_and_applied_in_the_gateway_across_pages(
    agency: Agency, demo_data: DemoData
) -> None:
    config = mixed(demo_data, graphql_config(agency.url))
    pushed = {"source": ["petitions"], "status": ["IN_PROGRESS"], "provinceCode": ["41"]}
    in_gateway = {"source": ["petitions"], "text": "ไฟดับ", "category": ["ROADS", "WATER"]}
    async with serving(config) as gateway:
        before = await agency.requests()
        refs, pages, total = await all_pages(gateway, pushed, first=3)
        pushed_requests = await agency.requests() - before
        gateway_refs, _, gateway_total = await all_pages(gateway, in_gateway, first=3)
    expected = await expected_refs(agency, "status_code = $1 AND province = '41'", "กำลังดำเนินการ")
    assert refs == expected and total == len(expected) and len(expected) > 6
    assert pages == -(-len(expected) // 3)
    # per page, one request for its cases (one more than the page, to know whether more
    # follow) and one for totalCount: the agency filtered, nothing was read to be thrown away
    assert pushed_requests == 2 * pages
    not_electricity = [t for t, c in TOPICS.items() if c != "ELECTRICITY"]
    expected = await expected_refs(
        agency, "subject LIKE '%ไฟดับ%' AND topic = ANY($1::text[])", not_electricity
    )
    assert gateway_refs == expected and gateway_total == len(expected) and expected


async def test_timelines_of_a_page_are_one_request_per_batch(
    agency: Agency, demo_data: DemoData
) -> None:
    page = """
    query Page($first: Int) {
      cases(first: $first, filter: {source: ["petitions"]}) {
        edges { node { referenceNumber timeline { at sourceStatus note } } }
      }
    }
    """
    logs = await agency.sql(
        "SELECT p.ref_no, l.logged_at, l.status_code, l.remark FROM petitions.petition_log l "
        "JOIN petitions.petition p ON p.id = l.petition_id ORDER BY l.logged_at"
    )
    expected: dict[str, list[tuple[datetime, str, str]]] = {}
    for row in logs:
        expected.setdefault(row["ref_no"], []).append(
            (row["logged_at"], row["status_code"], row["remark"])
        )
    for history, batch, requests in (
        (HISTORY_BY_ALIASES, 100, 1),  # 25 cases' logs under 25 aliases of one document
        (HISTORY_BY_IDS, 100, 1),  # one id-list argument
        (HISTORY_BY_ALIASES, 10, 3),  # max_batch 10: three batches of 10, 10 and 5
        (HISTORY_EMBEDDED, 100, 1),  # inside each case: read by fetch, once per batch
    ):
        config = mixed(demo_data, graphql_config(agency.url, history=history, batch=batch))
        async with serving(config) as gateway:
            before = await agency.requests()
            body = await gateway.query(page, {"first": 25})
            sent = await agency.requests() - before
            counted = gateway.gateway.metrics.http_requests("petitions")
        assert "errors" not in body, body["errors"]
        nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
        assert len(nodes) == 25
        for node in nodes:
            shown = [
                (datetime.fromisoformat(e["at"]), e["sourceStatus"], e["note"])
                for e in node["timeline"]
            ]
            assert shown == expected[node["referenceNumber"]], node["referenceNumber"]
        assert sent == 1 + requests, (history, batch)  # the page, then the timelines
        assert counted == sent  # complaint_graph_source_http_requests_total


async def test_timelines_carried_in_the_page_need_no_second_request(
    agency: Agency, demo_data: DemoData
) -> None:
    config = mixed(
        demo_data, graphql_config(agency.url, history=HISTORY_EMBEDDED, embedded_in_pages=True)
    )
    document = """{ cases(first: 20, filter: {source: ["petitions"]}) {
        edges { node { referenceNumber timeline { note } } } } }"""
    async with serving(config) as gateway:
        before = await agency.requests()
        body = await gateway.query(document)
        sent = await agency.requests() - before
    assert "errors" not in body, body["errors"]
    notes = {
        e["node"]["referenceNumber"]: [t["note"] for t in e["node"]["timeline"]]
        for e in body["data"]["cases"]["edges"]
    }
    first = (await expected_refs(agency))[0]
    number = int(first.split("-")[1])
    assert notes[first] == [f"บันทึก {number}.{step}" for step in range(number % 3 + 1)]
    assert sent == 1


async def test_lookup_by_id_in_one_request(agency: Agency, demo_data: DemoData) -> None:
    config = mixed(demo_data, graphql_config(agency.url, fetch=FETCH_BY_ALIASES))
    async with serving(config) as gateway:
        body = await gateway.query(CASES, {"first": 3, "filter": {"source": ["petitions"]}})
        ids = [edge["node"]["id"] for edge in body["data"]["cases"]["edges"]]
        lookup = " ".join(
            f'c{n}: case(id: "{i}") {{ referenceNumber title sourceStatus status '
            "category { code } location { province { code } } }"
            for n, i in enumerate(ids)
        )
        before = await agency.requests()
        found = await gateway.query(
            f"{{ {lookup} missing: case(id: {json.dumps(_missing(ids[0]))}) {{ title }} }}"
        )
        sent = await agency.requests() - before
    assert "errors" not in found, found["errors"]
    rows = await agency.sql("SELECT * FROM petitions.petition ORDER BY filed_at DESC LIMIT 3")
    for n, row in enumerate(rows):
        assert found["data"][f"c{n}"] == {
            "referenceNumber": row["ref_no"],
            "title": row["subject"],
            "sourceStatus": row["status_code"],
            "status": STATUSES[row["status_code"]],
            "category": {"code": TOPICS[row["topic"]]},
            "location": {"province": {"code": row["province"]}},
        }
    assert found["data"]["missing"] is None
    assert sent == 1  # four cases, one document of aliases


def _missing(global_id: str) -> str:
    """The global id of a case number the agency does not have (same source, id 9999)."""
    decoded = base64.b64decode(global_id).decode()
    prefix, _, _ = decoded.rpartition(":")
    return base64.b64encode(f"{prefix}:9999".encode()).decode()


async def test_garbage_and_schema_errors_are_errors_naming_the_source(
    agency: Agency, demo_data: DemoData
) -> None:
    async def garbage(request: Request) -> PlainTextResponse:
        return PlainTextResponse("<html>maintenance</html>", media_type="text/html")

    broken = ThreadedServer(Starlette(routes=[Route("/graphql", garbage, methods=["POST"])]))
    broken.start()
    try:
        wrong_field = graphql_config(agency.url)
        (settings,) = wrong_field.sources
        listing = settings.list.model_copy(
            update={"query": settings.list.query.replace("refNo", "referenceNo")}
        )
        for config, problem in (
            (graphql_config(f"{broken.url}/graphql"), "answered text/html"),
            (
                replace(wrong_field, sources=(settings.model_copy(update={"list": listing}),)),
                "referenceNo",
            ),
        ):
            async with serving(mixed(demo_data, config)) as gateway:
                body = await gateway.query(CASES, {"first": 5})
            (error,) = body["errors"]
            assert "petitions" in error["message"] and problem in error["message"], error
            nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
            assert len(nodes) == 5 and {n["source"]["id"] for n in nodes} == {SQLITE_SOURCE}
    finally:
        broken.stop()


# -- the source alone --------------------------------------------------------------------------


async def test_offset_paging_and_keyset_positions(agency: Agency) -> None:
    (settings,) = graphql_config(agency.url, paging="offset").sources
    listing = settings.list
    listing = listing.model_copy(
        update={
            "pagination": listing.pagination.model_copy(update={"page_size": 4}),
            "sort": None,  # PostGraphile's natural order is not by time: nothing to push
        }
    )
    source = source_class("graphql")(settings.model_copy(update={"list": listing}))
    await source.open()
    try:
        before = await agency.requests()
        newest = await source.search_cases(CaseFilter(), CaseOrder(), None, 5)
        # an order the API cannot be asked for: every page is read (40 cases, pages of 4)
        assert await agency.requests() - before == COUNT // 4 + 1
        last = newest[-1]
        after = Position(last.received_at, last.source, last.local_id)
        following = await source.search_cases(CaseFilter(), CaseOrder(), after, 5)
    finally:
        await source.close()
    refs = await expected_refs(agency)
    assert [r.reference_number for r in newest + following] == refs[:10]


async def test_check_asks_every_document(agency: Agency) -> None:
    good = source_for(agency.url, history=HISTORY_BY_IDS)
    await good.open()
    try:
        assert await good.check() == []
    finally:
        await good.close()
    bad = source_for(agency.url, fetch=FETCH_BY_ALIASES.replace("petitionById", "petitionByRef"))
    await bad.open()
    try:
        (problem,) = await bad.check()
    finally:
        await bad.close()
    assert problem.key == "fetch" and "petitionByRef" in problem.problem


async def test_changes_since_a_watermark_are_asked_of_the_agency(agency: Agency) -> None:
    """The change watcher's question (UPDATED_AT ascending after a position) goes to the
    agency as ``updated_from`` and its sort: one request, only what changed."""
    source = source_for(agency.url)
    assert source.capabilities.watches_changes
    rows = await agency.sql("SELECT changed_at FROM petitions.petition ORDER BY changed_at")
    watermark = rows[COUNT - 6]["changed_at"]
    order = CaseOrder(SortField.UPDATED_AT, descending=False)
    await source.open()
    try:
        before = await agency.requests()
        changed = await source.search_cases(
            CaseFilter(), order, Position(watermark, source.id, ""), 100
        )
        sent = await agency.requests() - before
    finally:
        await source.close()
    expected = await agency.sql(
        "SELECT ref_no FROM petitions.petition WHERE changed_at >= $1 ORDER BY changed_at",
        watermark,
    )
    assert [r.reference_number for r in changed] == [row["ref_no"] for row in expected]
    assert len(changed) == 6 and sent == 1


async def test_times_without_an_offset_are_read_in_the_configured_zone(agency: Agency) -> None:
    (settings,) = graphql_config(agency.url).sources
    query = settings.list.query.replace("filedAt changedAt", "filedAt changedAt filedLocal")
    fields = settings.fields.model_copy(update={"received_at": "filedLocal"})
    for zone, offset in (("Asia/Bangkok", timedelta(0)), ("UTC", timedelta(hours=7))):
        source = source_class("graphql")(
            settings.model_copy(
                update={
                    "timezone": zone,
                    "fields": fields,
                    "list": settings.list.model_copy(update={"query": query}),
                }
            )
        )
        assert isinstance(source, GraphQLSource)
        await source.open()
        try:
            (newest,) = await source.search_cases(CaseFilter(), CaseOrder(), None, 1)
        finally:
            await source.close()
        rows = await agency.sql(
            "SELECT filed_at FROM petitions.petition ORDER BY filed_at DESC LIMIT 1"
        )
        assert newest.received_at == rows[0]["filed_at"] + offset  # UTC: 7 hours off


async def test_a_wrong_page_info_path_is_an_error_not_one_page(agency: Agency) -> None:
    (settings,) = graphql_config(agency.url).sources
    pagination = settings.list.pagination.model_copy(
        update={"has_next_page": "allPetitions.pageInfo.hasMore"}
    )
    listing = settings.list.model_copy(update={"pagination": pagination})
    source = source_class("graphql")(settings.model_copy(update={"list": listing}))
    await source.open()
    try:
        with pytest.raises(SourceBadResponse, match="has_next_page: no boolean at") as raised:
            await source.count_cases(CaseFilter(text="ไฟดับ"))  # text: counted here, by pages
    finally:
        await source.close()
    assert raised.value.source == "petitions"
