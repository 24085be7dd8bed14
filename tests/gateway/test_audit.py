"""The personal-data audit log: append-only in SQLite and PostgreSQL, read by auditors through
the graph and by ``complaint-graph audit``."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.audit import AuditLog, entry_row
from gateway.auth import PersonalDataSettings
from gateway.cli import main
from gateway.demo import asyncpg_url, seed_demo_keys
from resolvers.access import Principal, Role
from resolvers.audit import AuditQuery
from samples.generator import DEMO_MATCH_KEY, complainant_of
from tests.conftest import AccessWorld, DemoData, RunningGateway, serving
from tests.gateway.test_cli import write_demo_config
from tests.postgres import create_database, drop_database

INSPECTOR = Principal("key:abc", frozenset({Role.INSPECTOR}), None, frozenset({"pii:read"}))


async def one_entry(log: AuditLog) -> None:
    await log.append_rows(
        [entry_row("reveal", INSPECTOR, "damrongdhama", "7", ["name"], purpose="review")]
    )


async def test_sqlite_audit_log_refuses_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(f"sqlite+aiosqlite:///{path}")
    await one_entry(log)
    await log.close()
    with sqlite3.connect(path) as db:
        for statement in (
            "UPDATE complaint_graph_audit SET purpose = 'nothing to see'",
            "DELETE FROM complaint_graph_audit",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
        assert db.execute("SELECT purpose FROM complaint_graph_audit").fetchall() == [("review",)]
    db.close()


async def test_postgres_audit_log_refuses_update_delete_and_truncate(
    postgres_admin_dsn: str,
) -> None:
    dsn = await create_database(postgres_admin_dsn)
    try:
        log = AuditLog(asyncpg_url(dsn))
        await one_entry(log)
        await log.close()
        again = AuditLog(asyncpg_url(dsn))  # a second start finds the table and its triggers
        await one_entry(again)
        await again.close()
        connection = await asyncpg.connect(dsn)
        try:
            for statement in (
                "UPDATE complaint_graph_audit SET purpose = 'nothing to see'",
                "DELETE FROM complaint_graph_audit",
                "TRUNCATE complaint_graph_audit",
            ):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await connection.execute(statement)
            purposes = await connection.fetch("SELECT purpose FROM complaint_graph_audit")
            assert [row["purpose"] for row in purposes] == ["review", "review"]
        finally:
            await connection.close()
    finally:
        await drop_database(postgres_admin_dsn, dsn)


def named_case() -> str:
    """A Damrongdhama case (access world: seed 1567) filed under a name, not confidential."""
    number = next(
        n
        for n in range(1, 61)
        if complainant_of(1567, n).person is not None
        and not complainant_of(1567, n).is_confidential
    )
    return base64.b64encode(f"Case:damrongdhama:{number}".encode()).decode()


@pytest.fixture
async def audited(
    access_world: AccessWorld, tmp_path: Path
) -> AsyncIterator[tuple[RunningGateway, str]]:
    """A closed gateway with the demo keys: demo-auditor is an inspector with audit:read."""
    store = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    auth = access_world.config.auth.model_copy(
        update={"key_store": store, "personal_data": PersonalDataSettings(match_key=DEMO_MATCH_KEY)}
    )
    config = replace(access_world.config, auth=auth)
    await seed_demo_keys(config)  # demo-auditor among them
    async with serving(config) as started:
        yield started, "demo-auditor"


async def ask(gateway: RunningGateway, key: str, document: str, **headers: str) -> Any:
    response = await gateway.client.post(
        "/graphql",
        json={"query": document},
        headers={"authorization": f"Bearer {key}", **headers},
    )
    assert response.status_code == 200, response.text
    return response.json()


AUDIT_LOG = """
query($after: String) {
  auditLog(first: 1, after: $after, filter: {action: REVEAL}) {
    entries { id action subject roles source caseId fields purpose }
    endCursor hasNextPage
  }
}
"""


async def test_auditors_read_reveals_through_the_graph_and_others_may_not(
    audited: tuple[RunningGateway, str],
) -> None:
    gateway, auditor = audited
    case = f'{{ case(id: "{named_case()}") {{ complainant {{ name citizenId }} }} }}'
    for purpose in ("complaint follow-up", "court order 12/2569"):
        shown = await ask(gateway, "demo-inspector", case, **{"x-purpose": purpose})
        assert shown["data"]["case"]["complainant"]["name"] is not None
    first = (await ask(gateway, auditor, AUDIT_LOG))["data"]["auditLog"]
    (entry,) = first["entries"]
    assert entry["action"] == "REVEAL" and entry["roles"] == ["inspector"]
    assert entry["fields"] == ["name", "citizenId"]
    assert entry["purpose"] == "complaint follow-up"
    assert first["hasNextPage"] is True
    second = await gateway.client.post(
        "/graphql",
        json={"query": AUDIT_LOG, "variables": {"after": first["endCursor"]}},
        headers={"authorization": f"Bearer {auditor}"},
    )
    (later,) = second.json()["data"]["auditLog"]["entries"]
    assert later["purpose"] == "court order 12/2569"
    refused = await ask(gateway, "demo-inspector", AUDIT_LOG)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "audit:read" in refused["errors"][0]["message"]


def test_audit_command_prints_every_entry(
    demo_data: DemoData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    store = f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"
    log = AuditLog(store)

    async def write() -> None:
        await one_entry(log)
        agency = Principal("key:kkn", frozenset({Role.AGENCY}), "KKN-PO", method="api_key")
        await log.append_rows(
            [entry_row("deny", agency, "damrongdhama", "8", reason="not this agency's")]
        )
        assert len(await log.entries(AuditQuery(first=10))) == 2
        await log.close()

    asyncio.run(write())
    config = write_demo_config(demo_data, tmp_path / "gateway.yaml")
    with config.open("a", encoding="utf-8") as file:
        file.write(f"auth:\n  personal_data:\n    audit_store: {store}\n")
    assert main(["audit", "--config", str(config)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [line[2:] for line in lines] == [
        ["reveal", "key:abc", "inspector", "-", "damrongdhama:7", "name", "review", "-"],
        ["deny", "key:kkn", "agency", "KKN-PO", "damrongdhama:8", "-", "-", "not this agency's"],
    ]
    assert main(["audit", "--config", str(config), "--action", "deny"]) == 0
    (only,) = capsys.readouterr().out.strip().splitlines()
    assert "\tdeny\t" in only
