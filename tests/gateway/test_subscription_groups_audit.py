"""A shared resolution never reveals personal data unaudited: when the audit log cannot record
a member's reveal, that member is sent AUDIT_UNAVAILABLE instead of the event and its stream
ends (it resumes with ``after``); subscribers in other groups still get the event."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

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
from tests.gateway.test_subscriptions import SET_STATUS, change, next_event, wait_for
from tests.postgres import run

SUBSCRIBE = "subscription { caseEvents { case { complainant { name revealed } } } }"


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


async def subscribe(ws: ClientConnection, key: str, operation: str) -> None:
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    message = {"id": operation, "type": "subscribe", "payload": {"query": SUBSCRIBE}}
    await ws.send(json.dumps(message))


async def test_members_whose_reveal_cannot_be_audited_get_an_error_not_the_data(
    served: tuple[ThreadedServer, Path], agency_dsn: str
) -> None:
    server, audit = served
    number = next(n for n in range(11, 61) if shown_to_all(n))
    person = complainant_of(SEED, number).person
    assert person is not None
    url = server.url.replace("http", "ws") + "/graphql"
    await wait_for(server, lambda events: events["watching"])
    # Touch the store once, so that the outside writer finds its table.
    log = AuditLog(f"sqlite+aiosqlite:///{audit}")
    try:
        await log.entries(AuditQuery(first=1))
    finally:
        await log.close()
    async with (
        connect(url, subprotocols=["graphql-transport-ws"]) as first,  # type: ignore[list-item]
        connect(url, subprotocols=["graphql-transport-ws"]) as second,  # type: ignore[list-item]
        connect(url, subprotocols=["graphql-transport-ws"]) as plain,  # type: ignore[list-item]
    ):
        await subscribe(first, "pii-inspector", "a")
        await subscribe(second, "pii-inspector", "b")
        await subscribe(plain, "inspector", "c")
        await wait_for(server, lambda events: events["subscribers"] == 3)
        with outside_writer(audit, threading.Event()):
            await change(agency_dsn, SET_STATUS, number, "WIP")
            masked = await next_event(plain)
            async with asyncio.timeout(15):
                refused = [json.loads(await ws.recv()) for ws in (first, second)]
                completed = [json.loads(await ws.recv()) for ws in (first, second)]
    for message, operation in zip(refused, "ab", strict=True):
        assert message["id"] == operation
        assert message["payload"].get("data") is None, "nothing revealed unaudited"
        (error,) = message["payload"]["errors"]
        assert error["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert "cannot record this access" in error["message"]
    assert completed == [{"id": "a", "type": "complete"}, {"id": "b", "type": "complete"}]
    assert masked["case"]["complainant"]["revealed"] is False
    log = AuditLog(f"sqlite+aiosqlite:///{audit}")
    try:
        assert await log.entries(AuditQuery(first=10)) == []
    finally:
        await log.close()
