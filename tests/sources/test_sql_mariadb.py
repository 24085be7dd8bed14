"""An agency on MariaDB, added by configuration alone, against a real server.

Its own Thai-style tables: ``tb_complaint`` (no channel, no due date), a ``tb_status`` lookup
of Thai status names, a ``tb_complaint_log``, naive Bangkok times (DATETIME; the log's are a
TIMESTAMP, written by a Bangkok session as the agency's own software would). The database is
made fresh for the run and dropped after; every expected answer is computed here from the rows
inserted, not read back through the code under test. Times sit on both sides of Bangkok's and
UTC's day and month boundaries, where a bucket taken in the wrong zone differs.
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ConfigError, GatewayConfig, parse_config
from sources import (
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    Channel,
    Dimension,
    Position,
    SortField,
    SourceQueryFailed,
    SourceUnavailable,
    source_class,
)
from sources._changes import changes_after, position_of
from sources._stats import RESOLVED_STATUSES
from sources.sql import SqlSource
from tests.conftest import serving
from tests.mysql import (
    REQUIRE_VARIABLE,
    URL_VARIABLE,
    create_database,
    drop_database,
    execute,
    required,
    server_url,
)
from tests.postgres import run

BANGKOK = ZoneInfo("Asia/Bangkok")

STATUSES = {1: "รับเรื่อง", 2: "อยู่ระหว่างดำเนินการ", 3: "ดำเนินการแล้วเสร็จ", 4: "ยุติเรื่อง"}
CANONICAL = {
    1: CanonicalStatus.RECEIVED,
    2: CanonicalStatus.IN_PROGRESS,
    3: CanonicalStatus.RESOLVED,
    4: CanonicalStatus.CLOSED,
}
PROVINCES = ("10", "40", "50")
TYPES = {"R": "ROADS", "W": "WATER"}

BOUNDARIES = [
    datetime(2026, 1, 31, 23, 30),  # January in both zones
    datetime(2026, 2, 1, 0, 30),  # February in Bangkok, still 31 January in UTC
    datetime(2026, 2, 1, 6, 59),  # the same
    datetime(2026, 2, 1, 7, 0),  # February in both
    datetime(2026, 3, 1, 6, 59),  # March in Bangkok, 28 February in UTC
    datetime(2026, 2, 10, 3, 0),  # 10 February in Bangkok, the 9th in UTC
    datetime(2026, 2, 10, 3, 0),  # the same moment twice: ties broken by id
]

SCHEMA = [
    """CREATE TABLE tb_status (status_id INT PRIMARY KEY, status_name VARCHAR(100) NOT NULL)""",
    """CREATE TABLE tb_complaint (
        complaint_id INT PRIMARY KEY,
        complaint_no VARCHAR(20) NOT NULL,
        subject VARCHAR(255) NOT NULL,
        detail TEXT,
        type_code VARCHAR(4) NOT NULL,
        status_id INT NOT NULL,
        prov_code CHAR(2),
        created_date DATETIME NOT NULL,
        updated_date DATETIME NULL,
        finished_date DATETIME NULL,
        KEY by_created (created_date, complaint_id)
    )""",
    """CREATE TABLE tb_complaint_log (
        log_id INT PRIMARY KEY,
        complaint_id INT NOT NULL,
        status_id INT NULL,
        log_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        remark TEXT,
        KEY by_case (complaint_id, log_date)
    )""",
    """CREATE VIEW v_complaint AS SELECT complaint_id, complaint_no, subject, detail, type_code,
        status_id, prov_code, created_date, updated_date, finished_date FROM tb_complaint""",
]


@dataclass(frozen=True)
class Case:
    id: int
    subject: str
    type_code: str
    status_id: int
    province: str
    created: datetime  # naive, Bangkok
    updated: datetime | None

    @property
    def received_utc(self) -> datetime:
        return self.created.replace(tzinfo=BANGKOK).astimezone(UTC)

    @property
    def updated_utc(self) -> datetime:
        return (self.updated or self.created).replace(tzinfo=BANGKOK).astimezone(UTC)


@dataclass(frozen=True)
class Entry:
    id: int
    case_id: int
    status_id: int | None
    at: datetime  # naive, Bangkok
    remark: str | None


def make_agency(seed: int = 2110, count: int = 61) -> tuple[list[Case], list[Entry]]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1)
    cases: list[Case] = []
    entries: list[Entry] = []
    for number in range(1, count + 1):
        if number <= len(BOUNDARIES):
            created = BOUNDARIES[number - 1]
        else:
            created = start + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
        status = rng.choice(list(STATUSES))
        updated = created + timedelta(hours=rng.randrange(1, 400)) if rng.random() < 0.7 else None
        subject = rng.choice(["ถนนชำรุด", "น้ำประปาไม่ไหล", "ไฟฟ้าดับ", "ท่อระบายน้ำอุดตัน"])
        case = Case(
            number,
            f"{subject} {number}",
            rng.choice(list(TYPES)),
            status,
            rng.choice(PROVINCES),
            created,
            updated,
        )
        cases.append(case)
        at = created
        for step in range(rng.randrange(1, 4)):
            entries.append(
                Entry(
                    len(entries) + 1,
                    number,
                    rng.choice([None, *STATUSES]) if step else 1,
                    at,
                    rng.choice([None, "รับแจ้งทางโทรศัพท์", "ส่งเจ้าหน้าที่ลงพื้นที่"]),
                )
            )
            if rng.random() < 0.8:  # else the next entry shares this one's time
                at += timedelta(hours=rng.randrange(1, 48))
    return cases, entries


CASES, ENTRIES = make_agency()


def rows(cases: list[Case], entries: list[Entry]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "tb_status": list(STATUSES.items()),
        "tb_complaint": [
            (
                c.id,
                f"ร{c.id:05d}",
                c.subject,
                f"รายละเอียดเรื่องที่ {c.id}",
                c.type_code,
                c.status_id,
                c.province,
                c.created,
                c.updated,
                c.updated if c.status_id == 3 else None,
            )
            for c in cases
        ],
        "tb_complaint_log": [(e.id, e.case_id, e.status_id, e.at, e.remark) for e in entries],
    }


def config_text(url: str, table: str = "tb_complaint", extra: str = "") -> str:
    statuses = ", ".join(f"{name}: {CANONICAL[key].value}" for key, name in STATUSES.items())
    return f"""
auth: {{anonymous: {{role: analyst}}}}  # callers without a key see every case (tests only)
categories:
  - {{code: ROADS, name_th: ถนน, name_en: Roads}}
  - {{code: WATER, name_th: น้ำ, name_en: Water}}
sources:
  - id: tambon
    kind: sql
    agency: {{code: TAMBON, name_th: องค์การบริหารส่วนตำบลตัวอย่าง, name_en: Example Tambon}}
    url: {url}
    timezone: Asia/Bangkok
    cases:
      table: {table}
      id: complaint_id
      reference_number: complaint_no
      title: subject
      description: detail
      category: type_code
      status: status_id
      received_at: created_date
      updated_at: updated_date
      closed_at: finished_date
    location: {{province_code: prov_code}}
    status_lookup: {{table: tb_status, key: status_id, label: status_name}}
    timeline:
      {{table: tb_complaint_log, case_id: complaint_id, at: log_date, status: status_id,
        note: remark, tie_breaker: log_id}}
    vocabulary:
      statuses: {{{statuses}}}
      categories: {{R: ROADS, W: WATER}}
{extra}"""


def config(url: str, table: str = "tb_complaint", extra: str = "") -> GatewayConfig:
    return parse_config(config_text(url, table, extra), {})


@pytest.fixture(scope="session")
def mysql_admin_url() -> str:
    """The MariaDB/MySQL server; skipped with the reason when none answers, failed instead
    when COMPLAINT_GRAPH_REQUIRE_MYSQL is set (CI)."""
    url = server_url()
    if url is None:
        reason = (
            f"no MySQL/MariaDB server: set {URL_VARIABLE} to its SQLAlchemy URL "
            "or run one on 127.0.0.1:3306 (root, empty password)"
        )
        if required():
            pytest.fail(f"{reason}; {REQUIRE_VARIABLE} is set, so this is a failure")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def agency_url(mysql_admin_url: str) -> Iterator[str]:
    """The agency's database, made and filled for this run, dropped after."""
    url = run(create_database(mysql_admin_url))
    try:
        run(execute(url, SCHEMA, rows(CASES, ENTRIES)))
        yield url
    finally:
        run(drop_database(mysql_admin_url, url))


async def open_source(settings_config: GatewayConfig) -> SqlSource:
    (settings,) = settings_config.sources
    source = source_class("sql")(settings)
    assert isinstance(source, SqlSource)
    return source


@pytest.fixture
async def tambon(agency_url: str) -> AsyncIterator[SqlSource]:
    source = await open_source(config(agency_url))
    yield source
    await source.close()


# -- listing, lookup labels, filters --------------------------------------------------------------


async def test_cases_carry_the_thai_status_names_of_the_lookup_table(tambon: SqlSource) -> None:
    found = await tambon.load_cases([str(c.id) for c in CASES])
    assert set(found) == {str(c.id) for c in CASES}
    for case in CASES:
        record = found[str(case.id)]
        assert record.source_status == STATUSES[case.status_id]
        assert record.status is CANONICAL[case.status_id]
        assert record.received_at == case.received_utc
        assert record.category == TYPES[case.type_code]
        assert record.channel is None  # the agency keeps no channel
        assert record.location.province_code == case.province
    assert found["2"].received_at == datetime(2026, 1, 31, 17, 30, tzinfo=UTC)


async def test_filters_are_answered_by_the_database(tambon: SqlSource) -> None:
    def count(predicate: Any) -> int:
        return sum(1 for case in CASES if predicate(case))

    resolved = CaseFilter(statuses=frozenset({CanonicalStatus.RESOLVED}))
    assert await tambon.count_cases(resolved) == count(lambda c: c.status_id == 3)
    khon_kaen = CaseFilter(province_codes=frozenset({"40"}))
    assert await tambon.count_cases(khon_kaen) == count(lambda c: c.province == "40")
    text = CaseFilter(text="ไฟฟ้า")
    assert await tambon.count_cases(text) == count(lambda c: "ไฟฟ้า" in c.subject)
    february = CaseFilter(
        received_from=datetime(2026, 2, 1, tzinfo=BANGKOK),
        received_before=datetime(2026, 3, 1, tzinfo=BANGKOK),
    )
    assert await tambon.count_cases(february) == count(lambda c: c.created.month == 2)
    assert count(lambda c: c.created.month == 2) != count(lambda c: c.received_utc.month == 2)


@pytest.mark.parametrize(
    ("field", "descending"),
    [(SortField.RECEIVED_AT, True), (SortField.RECEIVED_AT, False), (SortField.UPDATED_AT, False)],
)
async def test_keyset_pages_walk_every_case_once_in_order(
    tambon: SqlSource, field: SortField, descending: bool
) -> None:
    def key(case: Case) -> tuple[datetime, int]:
        moment = case.received_utc if field is SortField.RECEIVED_AT else case.updated_utc
        return moment, case.id

    expected = [str(c.id) for c in sorted(CASES, key=key, reverse=descending)]
    order = CaseOrder(field=field, descending=descending)
    seen: list[str] = []
    after = None
    while True:
        page = await tambon.search_cases(CaseFilter(), order, after, 7)
        seen += [record.local_id for record in page]
        if len(page) < 7:
            break
        last = page[-1]
        value = last.received_at if field is SortField.RECEIVED_AT else last.updated_at
        after = Position(value, last.source, last.local_id)
    assert seen == expected


async def test_timelines_in_order_with_the_lookup_s_names(tambon: SqlSource) -> None:
    ids = [str(c.id) for c in CASES[:20]]
    timelines = await tambon.load_timelines(ids)
    for case in CASES[:20]:
        logged = sorted((e for e in ENTRIES if e.case_id == case.id), key=lambda e: (e.at, e.id))
        got = timelines[str(case.id)]
        assert [e.at for e in got] == [e.at.replace(tzinfo=BANGKOK).astimezone(UTC) for e in logged]
        assert [e.source_status for e in got] == [
            STATUSES[e.status_id] if e.status_id is not None else None for e in logged
        ]
        assert [e.status for e in got] == [
            CANONICAL[e.status_id] if e.status_id is not None else None for e in logged
        ]
        assert [e.note for e in got] == [e.remark for e in logged]


async def test_a_view_serves_in_place_of_a_table(agency_url: str) -> None:
    source = await open_source(config(agency_url, table="v_complaint"))
    try:
        assert await source.check() == []
        assert await source.count_cases(CaseFilter()) == len(CASES)
        record = (await source.load_cases(["5"]))["5"]
        assert record.source_status == STATUSES[CASES[4].status_id]
    finally:
        await source.close()


# -- fields the agency does not keep --------------------------------------------------------------


async def test_a_constant_channel_and_no_description(agency_url: str) -> None:
    text = config_text(agency_url).replace("description: detail", "channel: {value: PHONE}")
    (settings,) = parse_config(text, {}).sources
    source = source_class("sql")(settings)
    assert isinstance(source, SqlSource)
    try:
        record = (await source.load_cases(["1"]))["1"]
        assert record.channel is Channel.PHONE
        assert record.description == ""
        assert await source.check() == []
        stats = await source.case_stats(CaseFilter(), [Dimension.CHANNEL], datetime.now(UTC))
        assert {key: b.count for key, b in stats.buckets.items()} == {("PHONE",): len(CASES)}
        assert await source.count_cases(CaseFilter(text="รายละเอียด")) == 0  # no description
    finally:
        await source.close()


# -- change detection -----------------------------------------------------------------------------


async def test_changes_are_found_past_an_updated_at_watermark(mysql_admin_url: str) -> None:
    """Its own database: this test changes a row."""
    url = await create_database(mysql_admin_url)
    try:
        await execute(url, SCHEMA, rows(CASES, ENTRIES))
        source = await open_source(config(url))
        try:
            seen = []
            position = None
            while batch := await changes_after(source, position, 10):
                seen += [r.local_id for r in batch]
                position = position_of(batch[-1])
            in_order = sorted(CASES, key=lambda c: (c.updated_utc, c.id))
            assert seen == [str(c.id) for c in in_order]
            assert await changes_after(source, position, 10) == []
            later = max(c.updated or c.created for c in CASES) + timedelta(minutes=1)
            await execute(
                url, [f"UPDATE tb_complaint SET updated_date = '{later}' WHERE complaint_id = 9"]
            )
            (changed,) = await changes_after(source, position, 10)
            assert changed.local_id == "9"
            assert changed.updated_at == later.replace(tzinfo=BANGKOK).astimezone(UTC)
        finally:
            await source.close()
    finally:
        await drop_database(mysql_admin_url, url)


# -- statistics through the graph -----------------------------------------------------------------

STATS = """
query Stats($groupBy: [StatsDimension!]!) {
  caseStats(groupBy: $groupBy) {
    buckets { key { dimension code date } count resolved }
  }
}
"""


def bucket_counts(body: dict[str, Any]) -> dict[tuple[str | None, ...], tuple[int, int]]:
    assert "errors" not in body, body.get("errors")
    found = {}
    for bucket in body["data"]["caseStats"]["buckets"]:
        key = tuple(part["code"] or part["date"] for part in bucket["key"])
        found[key] = (bucket["count"], bucket["resolved"])
    return found


def expected_counts(*keys: Any) -> dict[tuple[str, ...], tuple[int, int]]:
    counts: Counter[tuple[str, ...]] = Counter()
    resolved: Counter[tuple[str, ...]] = Counter()
    for case in CASES:
        key = tuple(k(case) for k in keys)
        counts[key] += 1
        resolved[key] += CANONICAL[case.status_id] in RESOLVED_STATUSES
    return {key: (counts[key], resolved[key]) for key in counts}


def month(case: Case) -> str:
    return case.created.date().replace(day=1).isoformat()  # created is Bangkok time


def day(case: Case) -> str:
    return case.created.date().isoformat()


def week(case: Case) -> str:
    local: date = case.created.date()
    return (local - timedelta(days=local.weekday())).isoformat()


async def test_case_stats_by_province_and_bangkok_month_day_and_week(agency_url: str) -> None:
    async with serving(config(agency_url)) as gateway:
        body = await gateway.query(STATS, {"groupBy": ["PROVINCE", "RECEIVED_MONTH"]})
        assert bucket_counts(body) == expected_counts(lambda c: c.province, month)
        body = await gateway.query(STATS, {"groupBy": ["RECEIVED_DAY"]})
        assert bucket_counts(body) == expected_counts(day)
        body = await gateway.query(STATS, {"groupBy": ["RECEIVED_WEEK", "STATUS"]})
        status = {key: CANONICAL[key].value for key in STATUSES}
        assert bucket_counts(body) == expected_counts(week, lambda c: status[c.status_id])
    utc_months = Counter(c.received_utc.date().replace(day=1).isoformat() for c in CASES)
    assert utc_months != Counter(month(c) for c in CASES)  # the boundaries do tell


DURATIONS = """
query Stats($groupBy: [StatsDimension!]!) {
  caseStats(groupBy: $groupBy) {
    buckets { key { code } count open overdue resolutionHours { count mean } }
  }
}
"""


async def test_case_stats_durations_and_open_cases_by_province(agency_url: str) -> None:
    """Hours from received to closed (TIMESTAMPDIFF on MariaDB) for the resolved cases with a
    closing time; every open case is past its 15 days by now (received in 2026's first
    months)."""
    async with serving(config(agency_url)) as gateway:
        body = await gateway.query(DURATIONS, {"groupBy": ["PROVINCE"]})
    assert "errors" not in body, body.get("errors")
    found = {b["key"][0]["code"]: b for b in body["data"]["caseStats"]["buckets"]}
    assert set(found) == set(PROVINCES)
    for province in PROVINCES:
        cases = [c for c in CASES if c.province == province]
        closed = [
            (c.updated - c.created).total_seconds() / 3600
            for c in cases
            if c.status_id == 3 and c.updated is not None  # finished_date is set for these
        ]
        still_open = sum(1 for c in cases if not CANONICAL[c.status_id].is_finished)
        bucket = found[province]
        assert bucket["count"] == len(cases)
        assert (bucket["open"], bucket["overdue"]) == (still_open, still_open)
        assert bucket["resolutionHours"]["count"] == len(closed)
        mean = bucket["resolutionHours"]["mean"]  # the graph rounds it to 3 places
        assert mean == pytest.approx(sum(closed) / len(closed), abs=0.0005)


# -- statements the database refuses --------------------------------------------------------------

SPEAKS_POSTGRESQL = "    dialect: postgresql\n"


async def test_check_runs_every_statement_kind_and_names_what_is_refused(
    agency_url: str,
) -> None:
    """Taken for PostgreSQL, the source's statistics use date_trunc and date_part, which
    MariaDB lacks:
    check finds it before serving, naming the statement and the database's reason."""
    source = await open_source(config(agency_url, extra=SPEAKS_POSTGRESQL))
    try:
        problems = await source.check()
    finally:
        await source.close()
    assert problems, "check found nothing wrong"
    refused = {problem.problem for problem in problems}
    assert any(
        "statistics statement was refused" in p
        and re.search(r"FUNCTION \S+\.date_(trunc|part) does not exist", p)
        for p in refused
    ), refused
    assert all(problem.key == "dialect" for problem in problems)


async def test_a_refused_statement_is_source_query_failed_and_not_retried(
    agency_url: str,
) -> None:
    async with serving(config(agency_url, extra=SPEAKS_POSTGRESQL)) as gateway:
        body = await gateway.query(STATS, {"groupBy": ["RECEIVED_MONTH"]})
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "SOURCE_QUERY_FAILED"
        assert error["extensions"]["source"] == "tambon"
        assert "OperationalError 1305" in error["message"]
        assert gateway.round_trips("tambon", "case_stats") == 1  # sent once: not retried
        again = await gateway.query("{ cases(first: 3) { totalCount } }")
        assert again["data"]["cases"]["totalCount"] == len(CASES), again  # circuit still closed


async def test_a_refused_statement_is_told_apart_from_a_server_that_is_not_there(
    agency_url: str,
) -> None:
    source = await open_source(config(agency_url, extra=SPEAKS_POSTGRESQL))
    gone = await open_source(config("mysql+asyncmy://root@127.0.0.1:1/nowhere"))
    try:
        with pytest.raises(SourceQueryFailed, match=r"refused the query \(OperationalError 1305"):
            await source.case_stats(CaseFilter(), [], datetime.now(UTC))
        with pytest.raises(SourceUnavailable, match="unreachable"):
            await gone.count_cases(CaseFilter())
    finally:
        await source.close()
        await gone.close()


# -- the driver -----------------------------------------------------------------------------------


async def test_a_missing_driver_names_the_install_not_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without asyncmy installed (hidden here), check says which extra installs it."""
    monkeypatch.setitem(sys.modules, "asyncmy", None)
    source = await open_source(config("mysql+asyncmy://root@127.0.0.1:3306/test"))
    (problem,) = await source.check()
    assert problem.key == "url"
    assert "not installed" in problem.problem and "asyncmy" in problem.problem
    assert "pip install 'complaint-graph[mysql]'" in problem.fix
    assert "check the URL" not in problem.fix


def test_a_constant_channel_must_be_a_channel() -> None:
    text = config_text("mysql+asyncmy://root@127.0.0.1:3306/test")
    with pytest.raises(ConfigError, match="'TELEPHONE' is not a channel; use one of: "):
        parse_config(text.replace("description: detail", "channel: {value: TELEPHONE}"), {})


async def test_a_source_without_referrals_carries_none_on_mariadb_too(tambon: SqlSource) -> None:
    """No referrals mapped: a page and a batch of cases read with them carry none (a NULL
    column MySQL's SQL takes), the timelines are left to the loader (no ``array_agg`` of rows)."""
    asked = frozenset({"title", "timeline", "referrals"})
    found = await tambon.search_cases(CaseFilter(), CaseOrder(), None, 5, asked)
    assert len(found) == 5
    assert {(r.timeline, r.referrals) for r in found} == {(None, ())}
    cases = await tambon.load_cases_carrying([r.local_id for r in found], asked)
    assert {(r.timeline, r.referrals) for r in cases.values()} == {(None, ())}
    assert await tambon.load_referrals(list(cases)) == {}
