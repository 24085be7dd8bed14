"""The engine of the gateway's own stores (API keys, the audit log), set up not to block.

SQLite, the default, lets one writer in at a time, and by default makes a reader wait for a
writer's commit and a writer for readers: under concurrent exports and reveals it answered
``database is locked``. So a SQLite store runs in WAL mode (readers, every request's key check
among them, never wait for a writer, nor a writer for them), with ``synchronous=FULL`` (a
committed audit entry survives a power cut) and a busy timeout (a writer waits up to
``wait_seconds`` for another writer, an export's reveals or an operator's ``sqlite3`` shell,
instead of failing at once). PostgreSQL gets the same bound on waiting for a lock
(``lock_timeout``).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger("complaint_graph.stores")

DEFAULT_WAIT_SECONDS = 10.0
"""How long a write waits for another writer's lock before the store counts as unavailable."""


def store_engine(url: str, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> AsyncEngine:
    """An async engine for ``url`` that waits at most ``wait_seconds`` for a lock."""
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": wait_seconds})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql" and driver == "asyncpg":
        milliseconds = str(max(1, round(wait_seconds * 1000)))
        settings = {"server_settings": {"lock_timeout": milliseconds}}
        return create_async_engine(url, connect_args=settings)
    return create_async_engine(url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL is a property of the file (set once, kept); ``synchronous`` is per connection.

    A store opened read-only (a key store on a read-only mount) cannot switch to WAL: it is
    read as it is, since a reader of a file nobody writes waits for no one.
    """
    cursor = dbapi_connection.cursor()
    try:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            log.info("SQLite store opened read-only, journal mode left as it is")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
