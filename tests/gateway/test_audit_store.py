"""The audit store under contention (issue 19, finding 5): reveals wait for another writer's
lock instead of failing, every one is recorded, and when the store cannot record, reveals and
exports are refused with AUDIT_UNAVAILABLE while the rest of the answer arrives."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.audit import AuditLog
from gateway.auth import PersonalDataSettings
from gateway.demo import asyncpg_url, demo_agency_key, seed_demo_keys
from resolvers.access import AuditUnavailable
from resolvers.audit import AuditQuery
from samples.generator import DEMO_MATCH_KEY
from tests.conftest import AccessWorld, RunningGateway, serving
from tests.gateway.test_audit import named_case, one_entry
from tests.postgres import create_database, drop_database

INSPECTOR = {"authorization": "Bearer demo-inspector"}
REVEAL = '{ case(id: "%s") { title complainant { citizenId } } }'
EXPORT = "{ cases(first: 500) { edges { node { id complainant { citizenId } } } } }"
HIDDEN_FROM_KHON_KAEN = base64.b64encode(b"Case:damrongdhama:9").decode()
"""Another agency's case, never referred to Khon Kaen (tests/resolvers/test_access.py)."""
HOLD_SECONDS = 6.0
"""How long the outside writer keeps its lock: longer than SQLite's default busy timeout
(5 s), within the gateway's default wait (auth.personal_data.audit_wait_seconds, 10 s)."""


async def gateway_with_store(
    world: AccessWorld, store: str, **personal_data: Any
) -> AsyncIterator[RunningGateway]:
    settings = PersonalDataSettings(match_key=DEMO_MATCH_KEY, **personal_data)
    auth = world.config.auth.model_copy(update={"key_store": store, "personal_data": settings})
    config = replace(world.config, auth=auth)
    await seed_demo_keys(config)
    async with serving(config) as started:
        yield started


@pytest.fixture
async def audited(access_world: AccessWorld, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """Keys and audit log in one SQLite file, as the demo keeps them."""
    store = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    async for started in gateway_with_store(access_world, store):
        yield started


@contextmanager
def outside_writer(path: Path, release: threading.Event) -> Iterator[threading.Event]:
    """Another process's writer (an operator's sqlite3 shell, a backup) holding the write lock
    on ``path`` until ``release`` is set; yields once the lock is held."""
    held = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(60)
            db.execute("ROLLBACK")
        finally:
            db.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10), "the outside writer could not take the lock"
        yield held
    finally:
        release.set()
        thread.join()


def purposes_recorded(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT purpose, count(*) FROM complaint_graph_audit WHERE action = 'reveal' "
            "GROUP BY purpose"
        ).fetchall()
    db.close()
    return {str(purpose): int(count) for purpose, count in rows}


async def test_every_reveal_is_recorded_while_an_export_runs_and_a_writer_holds_the_lock(
    audited: RunningGateway, tmp_path: Path
) -> None:
    gateway, case = audited, named_case()
    first = await gateway.client.post("/graphql", json={"query": REVEAL % case}, headers=INSPECTOR)
    assert "errors" not in first.json(), first.text  # the store is open
    with sqlite3.connect(tmp_path / "keys.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    release = threading.Event()

    async def reveal(number: int) -> dict[str, Any]:
        response = await gateway.client.post(
            "/graphql",
            json={"query": REVEAL % case},
            headers={**INSPECTOR, "x-purpose": f"reveal {number}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def export() -> tuple[int, bytes]:
        response = await gateway.client.post(
            "/export.csv", json={"query": EXPORT}, headers={**INSPECTOR, "x-purpose": "export"}
        )
        return response.status_code, response.content

    loop = asyncio.get_running_loop()
    with outside_writer(tmp_path / "keys.sqlite", release):
        # The fault: a writer keeps the lock for HOLD_SECONDS, whatever the gateway does.
        loop.call_later(HOLD_SECONDS, release.set)
        answers, (status, csv) = await asyncio.gather(
            asyncio.gather(*(reveal(n) for n in range(30))), export()
        )
    for body in answers:
        assert "errors" not in body, body
        assert body["data"]["case"]["complainant"]["citizenId"] is not None
    assert status == 200, csv[:500]
    exported = csv.decode("utf-8-sig").splitlines()[1:]
    revealed = [line for line in exported if line.rsplit(",", 1)[1].strip()]
    recorded = purposes_recorded(tmp_path / "keys.sqlite")
    assert {f"reveal {n}": 1 for n in range(30)}.items() <= recorded.items()
    assert recorded["export"] == len(revealed) > 0


async def test_a_store_locked_too_long_refuses_reveals_and_the_rest_arrives(
    access_world: AccessWorld, tmp_path: Path
) -> None:
    path = tmp_path / "audit.sqlite"
    keys = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    release = threading.Event()
    async for gateway in gateway_with_store(
        access_world, keys, audit_store=f"sqlite+aiosqlite:///{path}", audit_wait_seconds=0.2
    ):
        first = await gateway.client.post(
            "/graphql", json={"query": REVEAL % named_case()}, headers=INSPECTOR
        )
        assert "errors" not in first.json(), first.text
        with outside_writer(path, release):
            await refused_but_answered(gateway)
        again = await gateway.client.post(
            "/graphql", json={"query": REVEAL % named_case()}, headers=INSPECTOR
        )
        assert "errors" not in again.json(), again.text  # the lock gone, reveals are back


async def test_a_store_that_cannot_be_opened_refuses_reveals_and_the_rest_arrives(
    access_world: AccessWorld, tmp_path: Path
) -> None:
    keys = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    nowhere = f"sqlite+aiosqlite:///{tmp_path / 'no such directory' / 'audit.sqlite'}"
    async for gateway in gateway_with_store(access_world, keys, audit_store=nowhere):
        await refused_but_answered(gateway)


async def refused_but_answered(gateway: RunningGateway) -> None:
    """A reveal is refused with AUDIT_UNAVAILABLE and the reason; the case's other fields, and
    a query without personal data, are answered; an export with personal data is a 503 whose
    body says why."""
    response = await gateway.client.post(
        "/graphql", json={"query": REVEAL % named_case()}, headers=INSPECTOR
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["case"]["title"]
    assert body["data"]["case"]["complainant"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert error["path"] == ["case", "complainant"]
    assert "audit log cannot record" in error["message"]
    plain = await gateway.client.post(
        "/graphql", json={"query": "{ cases(first: 3) { totalCount } }"}, headers=INSPECTOR
    )
    assert plain.json()["data"]["cases"]["totalCount"] > 0, plain.text
    # A denial must be recorded too: an agency asking Open311 for another agency's case.
    hidden = await gateway.client.get(
        f"/open311/v2/requests/{HIDDEN_FROM_KHON_KAEN}.json",
        headers={"authorization": f"Bearer {demo_agency_key('KKN-PO')}"},
    )
    assert hidden.status_code == 503, hidden.text
    assert "audit log cannot record" in hidden.json()[0]["description"]
    export = await gateway.client.post("/export.csv", json={"query": EXPORT}, headers=INSPECTOR)
    assert export.status_code == 503, export.text[:500]
    errors = export.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["AUDIT_UNAVAILABLE"]  # once, not per row
    assert "audit log cannot record" in errors[0]["message"]


async def test_a_postgres_store_locked_too_long_refuses_then_records_again(
    postgres_admin_dsn: str,
) -> None:
    """The same bound on PostgreSQL: lock_timeout, then AUDIT_UNAVAILABLE naming the lock."""
    dsn = await create_database(postgres_admin_dsn)
    log = AuditLog(asyncpg_url(dsn), wait_seconds=0.2)
    try:
        await one_entry(log)  # the table exists
        holder = await asyncpg.connect(dsn)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE complaint_graph_audit IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(AuditUnavailable, match=r"held its lock for longer than 0\.2 s"):
                    await one_entry(log)
        finally:
            await holder.close()
        await one_entry(log)
        assert len(await log.entries(AuditQuery(first=10))) == 2
    finally:
        await log.close()
        await drop_database(postgres_admin_dsn, dsn)
