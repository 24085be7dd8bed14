"""Subscriptions reveal personal data under the same rule as queries, and the purpose a
subscriber states in its ``connection_init`` payload goes into the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.audit import AuditLog
from gateway.auth import KeyStore
from gateway.demo import asyncpg_url
from resolvers.access import Role
from resolvers.audit import AuditQuery
from samples.generator import complainant_of
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_auth_subscriptions import keyed_config
from tests.gateway.test_subscriptions import SET_STATUS, change, next_event, wait_for
from tests.postgres import run

SUBSCRIBE = "subscription { caseEvents { case { id complainant { name revealed } } } }"


async def _keys(store: KeyStore) -> None:
    await store.ensure(
        "pii-inspector", "i", frozenset({Role.INSPECTOR}), None, frozenset({"pii:read"})
    )


@pytest.fixture
def served(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path
) -> Iterator[tuple[ThreadedServer, str]]:
    (pg,) = [s for s in demo_data.config.sources if s.id == "damrongdhama"]
    source = pg.model_copy(update={"url": asyncpg_url(agency_dsn), "poll_seconds": 0.05})
    config = run(keyed_config(demo_data, (source,), tmp_path, _keys))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server, config.auth.key_store
    server.stop()


async def test_a_subscriber_purpose_is_audited_with_each_reveal(
    served: tuple[ThreadedServer, str], agency_dsn: str
) -> None:
    server, store = served
    number = next(
        n
        for n in range(1, 61)
        if complainant_of(1567, n).person and not complainant_of(1567, n).is_confidential
    )
    person = complainant_of(1567, number).person
    assert person is not None
    await wait_for(server, lambda events: events["watching"])
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": "Bearer pii-inspector", "X-Purpose": "live case desk"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        await wait_for(server, lambda events: events["subscribers"] >= 1)
        await change(agency_dsn, SET_STATUS, number, "WIP")
        event = await next_event(ws)
    assert event["case"]["complainant"] == {"name": person.name, "revealed": True}
    log = AuditLog(store)
    try:
        entries = await log.entries(AuditQuery(first=10))
    finally:
        await log.close()
    assert [(e.action, e.case_id, e.fields, e.purpose) for e in entries] == [
        ("reveal", str(number), ("name",), "live case desk")
    ]
