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
