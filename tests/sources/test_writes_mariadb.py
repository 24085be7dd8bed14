"""``kind: sql`` writes on MariaDB, against a real server (tests/mysql.py: skipped without one,
failed instead under COMPLAINT_GRAPH_REQUIRE_MYSQL): a tambon office's own Thai-style tables,
an AUTO_INCREMENT case id, a case number made by a configured pattern or by the database's
own DEFAULT (a SEQUENCE), a ``tb_status`` lookup of Thai names, a log whose times are a
TIMESTAMP, a referral table, and a NOT NULL column the graph has no value for (``defaults``).
Every count is read from the tables themselves, not only through the source."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncmy
import pytest
from sqlalchemy.engine import make_url

from gateway.config import parse_config
from samples.serving import free_port
from sources import CanonicalStatus, ReferralKind, SourceSettings, SourceUnavailable, source_class
from sources._errors import SourceBadResponse
from sources._writes import CaseWriter, NewCase, OutgoingReferral, writer_for
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

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # 12:00 in Bangkok
CASE = NewCase(
    title="ถนนลูกรังเป็นหลุมบ่อ",
    description="ถนนเข้าหมู่บ้านเป็นหลุมลึก รถจักรยานยนต์ล้ม",
    category="ROADS",
    received_at=NOW,
    sender_agency="MOI-DDC",
    sender_reference="DDC-2569-000777",
    province_code="40",
    address="หมู่ 3 ตำบลบ้านเป็ด",
    note="ส่งต่อจากศูนย์ดำรงธรรม",
)
STATUSES = {1: "รับเรื่อง", 2: "อยู่ระหว่างดำเนินการ", 3: "ดำเนินการแล้วเสร็จ", 4: "ยุติเรื่อง"}

SCHEMA = [
    "CREATE SEQUENCE complaint_no_seq START WITH 5001",
    "CREATE TABLE tb_status (status_id INT PRIMARY KEY, status_name VARCHAR(100) NOT NULL)",
    """CREATE TABLE tb_complaint (
        complaint_id INT AUTO_INCREMENT PRIMARY KEY,
        complaint_no VARCHAR(40) NOT NULL DEFAULT (CONCAT('ร', NEXTVAL(complaint_no_seq))),
        subject VARCHAR(255) NOT NULL,
        detail TEXT,
        type_code VARCHAR(4) NOT NULL,
        status_id INT NOT NULL,
        prov_code CHAR(2),
        address VARCHAR(255),
        created_date DATETIME NOT NULL,
        updated_date DATETIME NULL,
        finished_date DATETIME NULL,
        write_key VARCHAR(200) NULL UNIQUE,
        sender_ref VARCHAR(200) NULL UNIQUE,
        officer VARCHAR(50) NOT NULL
    )""",
    """CREATE TABLE tb_complaint_log (
        log_id INT AUTO_INCREMENT PRIMARY KEY,
        complaint_id INT NOT NULL,
        status_id INT NULL,
        log_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        remark TEXT
    )""",
    """CREATE TABLE tb_refer (
        refer_id INT AUTO_INCREMENT PRIMARY KEY,
        complaint_id INT NOT NULL,
        to_org VARCHAR(20) NOT NULL,
        refer_kind VARCHAR(20) NOT NULL,
        refer_date DATETIME NOT NULL,
        their_no VARCHAR(50) NULL
    )""",
]
SEED = {
    "tb_status": list(STATUSES.items()),
    "tb_complaint": [
        (
            1,
            "ร0001",
            "ท่อระบายน้ำอุดตัน",
            "น้ำท่วมขังหน้าบ้าน",
            "W",
            2,
            "40",
            None,
            datetime(2026, 11, 30, 9, 0),
            None,
            None,
            None,
            None,
            "สมชาย",
        ),
    ],
    "tb_complaint_log": [(1, 1, 1, datetime(2026, 11, 30, 9, 0), "รับแจ้งทางโทรศัพท์")],
}

WRITES = {
    "pattern": """
      case_id: database              # AUTO_INCREMENT
      reference_pattern: "ตบ-{year}-{id}"
      key_column: write_key          # UNIQUE""",
    "default": """
      case_id: max_plus_one
      sender_reference_column: sender_ref   # complaint_no from the SEQUENCE DEFAULT""",
}


def config_text(url: str, writes: str) -> str:
    statuses = ", ".join(
        f"{name}: {status.value}"
        for name, status in zip(
            STATUSES.values(),
            (
                CanonicalStatus.RECEIVED,
                CanonicalStatus.IN_PROGRESS,
                CanonicalStatus.RESOLVED,
                CanonicalStatus.CLOSED,
            ),
            strict=True,
        )
    )
    return f"""
auth: {{anonymous: {{role: inspector}}}}
categories:
  - {{code: ROADS, name_th: ถนน, name_en: Roads}}
  - {{code: WATER, name_th: น้ำ, name_en: Water}}
sources:
  - id: tambon
    kind: sql
    agency: {{code: TAMBON-BP, name_th: อบต.บ้านเป็ด, name_en: Ban Pet Tambon}}
    url: {url}
    timezone: Asia/Bangkok
    writes:{writes}
      timeline_id: database
      referral_id: database
      defaults: {{officer: complaint-graph}}
    cases:
      table: tb_complaint
      id: complaint_id
      reference_number: complaint_no
      title: subject
      description: detail
      category: type_code
      status: status_id
      received_at: created_date
      updated_at: updated_date
      closed_at: finished_date
    location: {{province_code: prov_code, address: address}}
    status_lookup: {{table: tb_status, key: status_id, label: status_name}}
    timeline:
      {{table: tb_complaint_log, case_id: complaint_id, at: log_date, status: status_id,
        note: remark, tie_breaker: log_id}}
    referrals:
      {{table: tb_refer, case_id: complaint_id, to_agency: to_org, at: refer_date,
        kind: refer_kind, their_reference: their_no, tie_breaker: refer_id}}
    vocabulary:
      statuses: {{{statuses}}}
      categories: {{R: ROADS, W: WATER}}
      agencies: {{DDC: MOI-DDC, "1111": OPM-1111}}
      referral_kinds: {{ส่งต่อ: FORWARD, ยกระดับ: ESCALATE, ส่งคืน: RETURN}}
"""


def tambon_settings(url: str, variant: str = "pattern") -> SourceSettings:
    (settings,) = parse_config(config_text(url, WRITES[variant]), {}).sources
    return settings


@pytest.fixture(scope="session")
def mysql_admin_url() -> str:
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


@pytest.fixture
def tambon_url(mysql_admin_url: str) -> Iterator[str]:
    """A fresh database per test: writes of one test never meet another's."""
    url = run(create_database(mysql_admin_url, prefix="cg_writes"))
    try:
        run(execute(url, SCHEMA, SEED))
        yield url
    finally:
        run(drop_database(mysql_admin_url, url))


@pytest.fixture(params=["pattern", "default"])
async def writer(request: pytest.FixtureRequest, tambon_url: str) -> AsyncIterator[CaseWriter]:
    made = writer_for(tambon_settings(tambon_url, request.param))
    assert made is not None
    yield made
    await made.close()


async def fetch(url: str, statement: str, *arguments: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the agency's tables, in a UTC session (TIMESTAMPs as UTC)."""
    parsed = make_url(url)
    connection = await asyncmy.connect(
        host=parsed.host, port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "", db=parsed.database, charset="utf8mb4",
    )  # fmt: skip
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SET time_zone = '+00:00'")
            await cursor.execute(statement, arguments or None)
            return list(await cursor.fetchall())
    finally:
        connection.close()


async def read_case(settings: SourceSettings, local_id: str):  # type: ignore[no-untyped-def]
    source = source_class("sql")(settings)
    try:
        cases = await source.load_cases([local_id])
        timelines = await source.load_timelines([local_id])
        return cases[local_id], list(timelines.get(local_id, ()))
    finally:
        await source.close()


async def test_a_case_is_made_once_per_key_even_concurrently(
    writer: CaseWriter, tambon_url: str
) -> None:
    together = await asyncio.gather(*(writer.create_case(CASE, "key-1") for _ in range(6)))
    again = await writer.create_case(CASE, "key-1")
    assert set(together) == {again}
    other = await writer.create_case(replace(CASE, sender_reference="DDC-2569-000778"), "key-2")
    assert other != again
    rows = await fetch(
        tambon_url, "SELECT complaint_id, officer FROM tb_complaint WHERE complaint_id > 1"
    )
    assert sorted(r[0] for r in rows) == sorted(int(i) for i in (again, other))
    assert {r[1] for r in rows} == {"complaint-graph"}  # the configured default
    logs = await fetch(
        tambon_url, "SELECT COUNT(*) FROM tb_complaint_log WHERE complaint_id = %s", int(again)
    )
    assert logs == [(1,)]  # one first timeline row, not one per send

    record, timeline = await read_case(writer.settings, again)
    assert record.title == CASE.title and record.description == CASE.description
    assert record.category == "ROADS" and record.status == CanonicalStatus.RECEIVED
    assert record.source_status == "รับเรื่อง"
    assert record.location.province_code == "40" and record.location.address == CASE.address
    assert record.received_at == NOW
    assert [(e.at, e.note) for e in timeline] == [(NOW, CASE.note)]


async def test_the_case_number_by_pattern_or_by_the_database_default(tambon_url: str) -> None:
    numbers = {}
    for variant in ("default", "pattern"):
        writer = writer_for(tambon_settings(tambon_url, variant))
        assert writer is not None
        try:
            local_id = await writer.create_case(CASE, f"n-{variant}")
        finally:
            await writer.close()
        (row,) = await fetch(
            tambon_url,
            "SELECT complaint_no FROM tb_complaint WHERE complaint_id = %s",
            int(local_id),
        )
        numbers[variant] = (local_id, row[0])
    pattern_id, pattern_number = numbers["pattern"]
    assert pattern_number == f"ตบ-2026-{pattern_id}"
    assert numbers["default"][1] == "ร5001"  # the SEQUENCE's first value


async def test_the_status_is_written_as_the_lookup_tables_key_with_a_note_once(
    writer: CaseWriter, tambon_url: str
) -> None:
    await writer.set_status("1", CanonicalStatus.RESOLVED, "ลอกท่อแล้ว", NOW, "s-1")
    await writer.set_status("1", CanonicalStatus.RESOLVED, "ลอกท่อแล้ว", NOW, "s-1")
    (row,) = await fetch(
        tambon_url,
        "SELECT status_id, updated_date, finished_date FROM tb_complaint WHERE complaint_id = 1",
    )
    assert row == (3, datetime(2026, 12, 7, 12, 0), datetime(2026, 12, 7, 12, 0))  # Bangkok
    logs = await fetch(
        tambon_url,
        "SELECT status_id, log_date, remark FROM tb_complaint_log"
        " WHERE complaint_id = 1 ORDER BY log_id",
    )
    assert logs[1:] == [(3, datetime(2026, 12, 7, 5, 0), "ลอกท่อแล้ว")]  # TIMESTAMP, read in UTC
    record, _ = await read_case(writer.settings, "1")
    assert record.status == CanonicalStatus.RESOLVED and record.source_status == "ดำเนินการแล้วเสร็จ"


async def test_a_note_keeps_the_status_and_is_added_once(
    writer: CaseWriter, tambon_url: str
) -> None:
    await writer.add_note("1", "โทรแจ้งผู้ร้องแล้ว", NOW, "n-1")
    await writer.add_note("1", "โทรแจ้งผู้ร้องแล้ว", NOW, "n-1")
    logs = await fetch(
        tambon_url,
        "SELECT status_id, remark FROM tb_complaint_log WHERE complaint_id = 1 ORDER BY log_id",
    )
    assert logs == [(1, "รับแจ้งทางโทรศัพท์"), (2, "โทรแจ้งผู้ร้องแล้ว")]  # the case's status: 2
    (row,) = await fetch(tambon_url, "SELECT status_id FROM tb_complaint WHERE complaint_id = 1")
    assert row == (2,)


async def test_a_referral_is_recorded_once_in_the_agencys_words(
    writer: CaseWriter, tambon_url: str
) -> None:
    referral = OutgoingReferral("OPM-1111", ReferralKind.ESCALATE, "PMOC-W00009", NOW)
    await writer.record_referral("1", referral, "r-1")
    await writer.record_referral("1", referral, "r-1")
    rows = await fetch(tambon_url, "SELECT to_org, refer_kind, refer_date, their_no FROM tb_refer")
    assert rows == [("1111", "ยกระดับ", datetime(2026, 12, 7, 12, 0), "PMOC-W00009")]
    source = source_class("sql")(writer.settings)
    try:
        (found,) = (await source.load_referrals(["1"]))["1"]
    finally:
        await source.close()
    assert found.to_agency == "OPM-1111" and found.their_reference == "PMOC-W00009"


async def test_a_refused_step_leaves_nothing_behind_and_is_not_retried(
    tambon_url: str,
) -> None:
    """One transaction: the timeline row refused (its table lacks a column's value) takes the
    new case row with it; and MariaDB's OperationalError for a refusal is a refusal (the
    dialect reads its error number), not an agency that is down."""
    await execute(tambon_url, ["ALTER TABLE tb_complaint_log ADD officer VARCHAR(50) NOT NULL"])
    writer = writer_for(tambon_settings(tambon_url))
    assert writer is not None
    try:
        with pytest.raises(SourceBadResponse, match="1364"):
            await writer.create_case(CASE, "refused")
    finally:
        await writer.close()
    assert await fetch(tambon_url, "SELECT COUNT(*) FROM tb_complaint") == [(1,)]


async def test_a_server_that_is_not_there_is_unavailable(tambon_url: str) -> None:
    url = make_url(tambon_url).set(port=free_port()).render_as_string(hide_password=False)
    writer = writer_for(tambon_settings(url))
    assert writer is not None
    try:
        with pytest.raises(SourceUnavailable):
            await writer.create_case(CASE, "down")
    finally:
        await writer.close()
