"""``status_lookup`` on PostgreSQL: the agency's status names read from its lookup table, in the
cases, in the timelines a page carries (a subquery joining the lookup a second time) and in the
loader's, and in filters and statistics. (MariaDB: tests/sources/test_sql_mariadb.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.config import parse_config
from gateway.demo import asyncpg_url
from sources import CanonicalStatus, CaseFilter, CaseOrder, Dimension, source_class
from sources.sql import SqlSource
from tests.postgres import create_database, drop_database, execute

SCHEMA = """
CREATE TABLE tb_status (status_id INT PRIMARY KEY, status_name TEXT NOT NULL);
INSERT INTO tb_status VALUES (1, 'รับเรื่อง'), (2, 'ดำเนินการแล้วเสร็จ');
CREATE TABLE tb_complaint (complaint_id INT PRIMARY KEY, complaint_no TEXT, subject TEXT,
  type_code TEXT, status_id INT, created_date TIMESTAMP);
INSERT INTO tb_complaint VALUES
  (1, 'ร1', 'ถนนชำรุด', 'R', 1, '2026-01-01 08:00'),
  (2, 'ร2', 'ไฟฟ้าดับ', 'R', 2, '2026-01-02 08:00'),
  (3, 'ร3', 'น้ำไม่ไหล', 'R', 2, '2026-01-03 08:00');
CREATE TABLE tb_complaint_log (log_id INT PRIMARY KEY, complaint_id INT, status_id INT,
  log_date TIMESTAMP, remark TEXT);
INSERT INTO tb_complaint_log VALUES
  (1, 2, 1, '2026-01-02 08:00', NULL),
  (2, 2, NULL, '2026-01-02 09:00', 'โทรแจ้งผู้ร้อง'),
  (3, 2, 2, '2026-01-03 10:00', 'ซ่อมแล้ว');
"""

CONFIG = """
categories: [{code: ROADS, name_th: ถนน, name_en: Roads}]
sources:
  - id: tambon
    kind: sql
    agency: {code: TAMBON, name_th: อบต., name_en: Tambon}
    url: ${URL}
    timezone: Asia/Bangkok
    cases:
      table: tb_complaint
      id: complaint_id
      reference_number: complaint_no
      title: subject
      category: type_code
      status: status_id
      received_at: created_date
    status_lookup: {table: tb_status, key: status_id, label: status_name}
    timeline: {table: tb_complaint_log, case_id: complaint_id, at: log_date,
               status: status_id, note: remark, tie_breaker: log_id}
    vocabulary:
      statuses: {รับเรื่อง: RECEIVED, ดำเนินการแล้วเสร็จ: RESOLVED}
      categories: {R: ROADS}
"""


@pytest.fixture
async def tambon(postgres_admin_dsn: str) -> AsyncIterator[SqlSource]:
    dsn = await create_database(postgres_admin_dsn)
    try:
        await execute(dsn, SCHEMA)
        (settings,) = parse_config(CONFIG, {"URL": asyncpg_url(dsn)}).sources
        source = source_class("sql")(settings)
        assert isinstance(source, SqlSource)
        try:
            yield source
        finally:
            await source.close()
    finally:
        await drop_database(postgres_admin_dsn, dsn)


async def test_statuses_are_the_lookup_s_names_everywhere(tambon: SqlSource) -> None:
    assert await tambon.check() == []
    cases = await tambon.search_cases(
        CaseFilter(), CaseOrder(), None, 10, frozenset({"title", "status", "timeline"})
    )
    assert [(c.local_id, c.source_status, c.status) for c in cases] == [
        ("3", "ดำเนินการแล้วเสร็จ", CanonicalStatus.RESOLVED),
        ("2", "ดำเนินการแล้วเสร็จ", CanonicalStatus.RESOLVED),
        ("1", "รับเรื่อง", CanonicalStatus.RECEIVED),
    ]
    carried = cases[1].timeline
    assert carried is not None  # the page carried its timelines (PostgreSQL)
    loaded = (await tambon.load_timelines(["2"]))["2"]
    assert tuple(loaded) == carried
    assert [(e.source_status, e.status, e.note) for e in carried] == [
        ("รับเรื่อง", CanonicalStatus.RECEIVED, None),
        (None, None, "โทรแจ้งผู้ร้อง"),
        ("ดำเนินการแล้วเสร็จ", CanonicalStatus.RESOLVED, "ซ่อมแล้ว"),
    ]
    assert carried[0].at == datetime(2026, 1, 2, 1, 0, tzinfo=UTC)
    resolved = CaseFilter(statuses=frozenset({CanonicalStatus.RESOLVED}))
    assert await tambon.count_cases(resolved) == 2
    stats = await tambon.case_stats(CaseFilter(), [Dimension.STATUS], datetime.now(UTC))
    assert {key: bucket.count for key, bucket in stats.buckets.items()} == {
        ("RESOLVED",): 2,
        ("RECEIVED",): 1,
    }
