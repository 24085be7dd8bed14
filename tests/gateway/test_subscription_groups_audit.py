"""A shared resolution never reveals personal data unaudited, and answers a member whose reveal
the audit log cannot record as that subscriber resolving alone is answered: the event, its
``complainant`` null with the AUDIT_UNAVAILABLE error, and its stream goes on (the next event,
audited, reveals again). Subscribers in other groups get the event as usual."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import create_app
from gateway.audit import AuditLog
from gateway.auth import PersonalDataSettings
from resolvers.audit import AuditQuery
from samples.generator import complainant_of
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_audit_store import outside_writer
from tests.gateway.test_auth_subscriptions import keyed_config, watched_center
from tests.gateway.test_subscription_groups import SEED, _keys, shown_to_all
from tests.gateway.test_subscriptions import SET_STATUS, change, wait_for
from tests.postgres import run

SUBSCRIBE = """
subscription Watch($after: String) {
  caseEvents(after: $after) { id case { complainant { name revealed } } }
}
"""


@pytest.fixture
def served(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path
) -> Iterator[tuple[ThreadedServer, Path]]:
    audit = tmp_path / "audit.sqlite"
    config = run(keyed_config(demo_data, (watched_center(demo_data, agency_dsn),), tmp_path, _keys))
    personal_data = PersonalDataSettings(
        audit_store=f"sqlite+aiosqlite:///{audit}", audit_wait_seconds=0.2
    )
    auth = config.auth.model_copy(update={"personal_data": personal_data})
    server = ThreadedServer(create_app(replace(config, auth=auth)), lifespan=True)
    server.start()
    yield server, audit
    server.stop()


async def subscribe(
    ws: ClientConnection, key: str, operation: str, after: str | None = None
) -> None:
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": SUBSCRIBE, "variables": {"after": after}}
    await ws.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))


def without_request_id(answer: dict[str, Any]) -> dict[str, Any]:
    errors = [
        {**e, "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}}
        for e in answer.get("errors", ())
    ]
    return {**answer, "errors": errors}


async def payload(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(15):
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    found: dict[str, Any] = message["payload"]
    return found


async def test_members_whose_reveal_cannot_be_audited_are_answered_as_alone(
    served: tuple[ThreadedServer, Path], agency_dsn: str
) -> None:
    """Two members of one group and a subscriber alone (it resumes, so it resolves on its own)
    ask the same document: while the store is locked they get the same answer, and then the
    next event, revealed."""
    server, audit = served
    number = next(n for n in range(11, 61) if shown_to_all(n))
    person = complainant_of(SEED, number).person
    assert person is not None
    url = server.url.replace("http", "ws") + "/graphql"
    await wait_for(server, lambda events: events["watching"])
    protocols: Any = ["graphql-transport-ws"]
    sockets = [connect(url, subprotocols=protocols) for _ in range(4)]
    async with sockets[0] as first, sockets[1] as second, sockets[2] as plain, sockets[3] as alone:
        await subscribe(first, "pii-inspector", "a")
        await subscribe(second, "pii-inspector", "b")
        await subscribe(plain, "inspector", "c")
        await wait_for(server, lambda events: events["subscribers"] == 3)
        await change(agency_dsn, SET_STATUS, number, "WIP")
        opened = [await payload(ws) for ws in (first, second, plain)]
        assert opened[0] == opened[1] and "errors" not in opened[0]
        assert opened[0]["data"]["caseEvents"]["case"]["complainant"]["revealed"] is True
        # Resuming after the event just seen: alone, with the group's document.
        await subscribe(alone, "pii-inspector", "d", after=opened[0]["data"]["caseEvents"]["id"])
        await wait_for(server, lambda events: events["subscribers"] == 4)

        with outside_writer(audit, threading.Event()):
            await change(agency_dsn, SET_STATUS, number, "DONE")
            locked = [await payload(ws) for ws in (first, second, alone)]
            masked = await payload(plain)
        await change(agency_dsn, SET_STATUS, number, "WIP")
        again = [await payload(ws) for ws in (first, second, alone)]

    grouped, other, lone = map(without_request_id, locked)  # each connection's own
    assert grouped == other == lone, "a member is answered as if it were alone"
    assert grouped["data"]["caseEvents"]["case"] == {"complainant": None}, "nothing unaudited"
    (error,) = grouped["errors"]
    assert error["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert error["path"] == ["caseEvents", "case", "complainant"]
    assert "cannot record this access" in error["message"] and error["locations"]
    assert masked["data"]["caseEvents"]["case"]["complainant"]["revealed"] is False
    for answer in again:  # the streams went on; the store back, reveals are back
        assert "errors" not in answer, answer
        assert answer["data"]["caseEvents"]["case"]["complainant"]["name"] == person.name
    log = AuditLog(f"sqlite+aiosqlite:///{audit}")
    try:
        entries = await log.entries(AuditQuery(first=20))
    finally:
        await log.close()
    assert len(entries) == 2 + 3  # the first event's two members, the last event's three
