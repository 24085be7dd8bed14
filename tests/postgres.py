"""Finding a real PostgreSQL for tests: the configured one, the local one, or an embedded one."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import asyncpg

DSN_VARIABLE = "COMPLAINT_GRAPH_TEST_DSN"
LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def local_server_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def server_dsn(embedded_dir: Path) -> tuple[str, Any]:
    """An admin DSN, and the embedded server object to keep alive (None when not embedded)."""
    configured = os.environ.get(DSN_VARIABLE)
    if configured:
        return configured, None
    if local_server_answers():
        return LOCAL_DSN, None
    from pgserver.postgres_server import get_server

    server = get_server(embedded_dir, cleanup_mode="stop")
    return server.get_uri(), server


def with_database(dsn: str, database: str) -> str:
    """The same server, another database (keeps query parameters such as a socket host)."""
    base, _, query = dsn.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


def sqlalchemy_url(dsn: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgres", "postgresql") else dsn


async def create_database(admin_dsn: str, prefix: str = "cg_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(admin_dsn, name)


async def drop_database(admin_dsn: str, dsn: str) -> None:
    name = dsn.partition("?")[0].rsplit("/", 1)[1]
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def execute(dsn: str, sql: str) -> None:
    """Run ``sql`` (statements separated by semicolons) in the database at ``dsn``."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
