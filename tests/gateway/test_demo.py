"""What ``make demo`` relies on: an embedded PostgreSQL, and demo data built once per size."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from gateway.demo import DEMO_DSN_VARIABLE, build_demo_data, demo_config, start_postgres
from samples import damrongdhama, provincial
from tests.postgres import create_database, drop_database


async def test_without_a_dsn_the_demo_starts_an_embedded_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEMO_DSN_VARIABLE, raising=False)
    dsn, server = start_postgres(tmp_path)
    assert server is not None
    connection = await asyncpg.connect(dsn)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()
        server.cleanup()


async def test_demo_data_is_built_once_per_size(postgres_admin_dsn: str, tmp_path: Path) -> None:
    dsn = await create_database(postgres_admin_dsn)
    sqlite_path = tmp_path / "office.sqlite"
    try:
        await build_demo_data(dsn, sqlite_path, 40)
        built = sqlite_path.stat().st_mtime_ns
        await build_demo_data(dsn, sqlite_path, 40)
        assert sqlite_path.stat().st_mtime_ns == built
        await build_demo_data(dsn, sqlite_path, 60)
        assert await damrongdhama.case_count(dsn) == 60
        assert provincial.case_count(sqlite_path) == 60
        config = demo_config(dsn, sqlite_path, "http://127.0.0.1:1", "http://127.0.0.1:2")
        assert [s.id for s in config.sources] == [
            "damrongdhama",
            "khonkaen-office",
            "pmoc-1111",
            "traffy-city",
        ]
    finally:
        await drop_database(postgres_admin_dsn, dsn)


async def test_the_trickle_moves_a_case_one_step_and_logs_it(
    postgres_admin_dsn: str, tmp_path: Path
) -> None:
    import random
    import sqlite3

    from samples.trickle import step_damrongdhama, step_provincial

    dsn = await create_database(postgres_admin_dsn)
    sqlite_path = tmp_path / "office.sqlite"
    try:
        await damrongdhama.create_and_load(dsn, count=40)
        provincial.create_and_load(sqlite_path, count=40)
        connection = await asyncpg.connect(dsn)
        try:
            before = dict(await connection.fetch("SELECT id, status_code FROM complaints"))
            moved = await step_damrongdhama(dsn, random.Random(1))
            assert moved is not None
            after = await connection.fetchval(
                "SELECT status_code FROM complaints WHERE id = $1", moved
            )
            logged = await connection.fetchval(
                "SELECT status_code FROM complaint_status_log WHERE complaint_id = $1 "
                "ORDER BY changed_at DESC, id DESC LIMIT 1",
                moved,
            )
        finally:
            await connection.close()
        assert after != before[moved]
        assert logged == after
        petition = step_provincial(sqlite_path, random.Random(1))
        with sqlite3.connect(sqlite_path) as db:
            (state,) = db.execute(
                "SELECT state FROM petition WHERE petition_no = ?", (petition,)
            ).fetchone()
            (last,) = db.execute(
                "SELECT state FROM petition_history WHERE petition_no = ? ORDER BY seq DESC",
                (petition,),
            ).fetchone()
        assert state == last
    finally:
        await drop_database(postgres_admin_dsn, dsn)
