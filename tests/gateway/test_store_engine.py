"""The gateway's own SQLite stores: WAL when they can be written, read as they are when not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.auth import KeyStore
from resolvers.access import Role


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    db.close()
    return str(mode)


async def test_a_writable_key_store_runs_in_wal_and_a_read_only_one_still_answers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite"
    store = KeyStore(f"sqlite+aiosqlite:///{path}")
    try:
        _, secret = await store.create("partner", frozenset({Role.ANALYST}))
    finally:
        await store.close()
    assert journal_mode(path) == "wal"
    with sqlite3.connect(path) as db:  # as if copied from elsewhere: a rollback journal again
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    read_only = KeyStore(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    try:
        found = await read_only.authenticate(secret)
    finally:
        await read_only.close()
    assert found is not None and found.name == "partner"
