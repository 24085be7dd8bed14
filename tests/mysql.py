"""Finding a real MySQL/MariaDB server for tests, and a fresh database on it per run.

The server is the one ``COMPLAINT_GRAPH_TEST_MYSQL`` names (a SQLAlchemy URL such as
``mysql+asyncmy://root@db:3306/test``), else 127.0.0.1:3306 (root, empty password) when it
answers. Where none answers the MariaDB tests are skipped with the reason, unless
``COMPLAINT_GRAPH_REQUIRE_MYSQL`` is set (CI: the Makefile's test target sets it when ``CI``
is): then they fail, so CI always runs them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

import asyncmy
from sqlalchemy.engine import URL, make_url

from tests.postgres import local_server_answers

URL_VARIABLE = "COMPLAINT_GRAPH_TEST_MYSQL"
REQUIRE_VARIABLE = "COMPLAINT_GRAPH_REQUIRE_MYSQL"
LOCAL_URL = "mysql+asyncmy://root@127.0.0.1:3306/test"


def server_url() -> str | None:
    """The admin URL of the server to test against, or None when there is none."""
    configured = os.environ.get(URL_VARIABLE)
    if configured:
        return configured
    return LOCAL_URL if local_server_answers("127.0.0.1", 3306) else None


def required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def _connect_args(url: URL) -> dict[str, Any]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 3306,
        "user": url.username or "root",
        "password": url.password or "",
        "charset": "utf8mb4",
    }


async def execute(
    url: str,
    statements: Sequence[str],
    rows: dict[str, Sequence[Sequence[Any]]] | None = None,
    session_zone: str = "+07:00",
) -> None:
    """Run ``statements`` in the database of ``url``, then insert ``rows`` (table -> rows), in
    a session whose time zone is ``session_zone`` (Bangkok, as an agency's software there
    writes: a TIMESTAMP column keeps what it is sent as a Bangkok time)."""
    parsed = make_url(url)
    connection = await asyncmy.connect(**_connect_args(parsed), db=parsed.database)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"SET time_zone = '{session_zone}'")
            for statement in statements:
                await cursor.execute(statement)
            for table, values in (rows or {}).items():
                if values:
                    marks = ", ".join(["%s"] * len(values[0]))
                    await cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
        await connection.commit()
    finally:
        connection.close()


async def create_database(admin_url: str, prefix: str = "cg_test") -> str:
    """A new empty database on the server of ``admin_url``; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    parsed = make_url(admin_url)
    connection = await asyncmy.connect(**_connect_args(parsed))
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        connection.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncmy.connect(**_connect_args(make_url(admin_url)))
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()
