"""Thousands of subscribers, a handful of resolutions: each event is resolved once per group of
subscribers sharing document, variables and access scope, and every subscriber still gets
exactly its own answer (resolvers/subscription_groups.py).

Over real WebSockets to a real gateway: 3,040 graphql-transport-ws subscriptions (100 on each
socket, strawberry's limit per connection) in six groups, of two documents, three variable sets
and four access scopes. Operators' /metrics count the resolutions; the audit log, one reveal per
subscriber that was shown personal data, with that subscriber's own purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import create_app
from gateway.audit import AuditLog
from gateway.auth import KeyStore
from gateway.demo import demo_agency_key
from resolvers.access import Role
from resolvers.audit import AuditQuery
from resolvers.complainant import mask_name
from samples.generator import complainant_of
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.test_auth_subscriptions import _refer_to_khon_kaen, keyed_config, watched_center
from tests.gateway.test_subscriptions import SET_STATUS, change
from tests.postgres import run

SEED = 1567  # the Damrongdhama Center's cases (samples/generator.py)
PER_SOCKET = 100  # strawberry's max_subscriptions_per_connection

FULL = """
subscription Full($after: String) {
  caseEvents(after: $after) {
    type case { referenceNumber sourceStatus complainant { name revealed } }
  }
}
"""
BY_STATUS = """
subscription ByStatus($status: [CaseStatus!]) {
  caseEvents(filter: {status: $status}) { newStatus case { referenceNumber } }
}
"""
IN_PROGRESS = {"status": ["IN_PROGRESS"]}
RESOLVED = {"status": ["RESOLVED"]}


async def _keys(store: KeyStore) -> None:
    await store.ensure("inspector", "inspector", frozenset({Role.INSPECTOR}))
    await store.ensure(
        "pii-inspector", "pii", frozenset({Role.INSPECTOR}), None, frozenset({"pii:read"})
    )
    for agency in ("KKN-PO", "MOI-DDC"):
        await store.ensure(demo_agency_key(agency), agency, frozenset({Role.AGENCY}), agency)


@dataclass(frozen=True)
class Kind:
    """Subscribers alike: one key, one purpose, one document with one set of variables."""

    key: str
    query: str
    variables: dict[str, Any]
    count: int
    purpose: str | None = None


KINDS = (
    Kind("inspector", FULL, {}, 1200),
    Kind("inspector", BY_STATUS, IN_PROGRESS, 400),
    Kind("inspector", BY_STATUS, RESOLVED, 400),
    Kind("pii-inspector", FULL, {}, 20, "desk A"),  # one group with the next: same scope
    Kind("pii-inspector", FULL, {}, 20, "desk B"),
    Kind(demo_agency_key("MOI-DDC"), FULL, {}, 600),
    Kind(demo_agency_key("KKN-PO"), FULL, {}, 400),
)
GROUPS = 6
SUBSCRIBERS = sum(kind.count for kind in KINDS)


@dataclass
class Socket:
    kind: Kind
    ws: ClientConnection
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per operation id, each ``next`` payload in order."""

    async def read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "next":
                payload = message["payload"]
                with contextlib.suppress(KeyError, TypeError):  # ดธ.1567/2568/000012: 000012
                    case = payload["data"]["caseEvents"]["case"]
                    case["referenceNumber"] = case["referenceNumber"].rsplit("/", 1)[1]
                self.received.setdefault(message["id"], []).append(payload)


async def open_socket(url: str, kind: Kind, operations: int) -> Socket:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    payload = {"Authorization": f"Bearer {kind.key}"}
    if kind.purpose is not None:
        payload["X-Purpose"] = kind.purpose
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    for n in range(operations):
        operation = {"query": kind.query, "variables": kind.variables}
        await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": operation}))
    return Socket(kind, ws)


async def metric(client: httpx.AsyncClient, line: str) -> float:
    """One sample of the gateway's /metrics, as an operator's scraper reads it."""
    for row in (await client.get("/metrics")).text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    raise AssertionError(f"/metrics has no {line}")


async def shared_counts(client: httpx.AsyncClient) -> tuple[float, float, float]:
    return (
        await metric(client, 'complaint_graph_subscription_resolutions_total{sharing="group"}'),
        await metric(client, 'complaint_graph_subscription_resolutions_total{sharing="alone"}'),
        await metric(client, "complaint_graph_subscription_deliveries_total"),
    )


async def until(condition: Any, what: Any, seconds: float = 120) -> None:
    """Wait for ``condition()`` with a deadline (a condition, not a timed wait)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(await what()) from None


def shown_to_all(number: int) -> bool:
    person = complainant_of(SEED, number)
    return person.person is not None and not person.is_confidential and not person.is_anonymous


@pytest.fixture
def cases() -> tuple[int, int]:
    """Two cases whose complainants can be revealed: the first only the Damrongdhama
    Center's, the second also referred to Khon Kaen (the fixture refers it)."""
    first, second = [n for n in range(11, 61) if shown_to_all(n)][:2]
    return first, second


@pytest.fixture
def served(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path, cases: tuple[int, int]
) -> Iterator[tuple[ThreadedServer, str]]:
    run(_refer_to_khon_kaen(agency_dsn, [cases[1]]))
    source = watched_center(demo_data, agency_dsn)
    config = run(keyed_config(demo_data, (source,), tmp_path, _keys))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server, config.auth.key_store
    server.stop()


def expected(kind: Kind, number: int, status: str, source_status: str) -> dict[str, Any]:
    """What a subscriber of ``kind`` must be sent for case ``number``'s change."""
    reference = f"{number:06d}"
    if kind.query == BY_STATUS:
        return {"newStatus": status, "case": {"referenceNumber": reference}}
    person = complainant_of(SEED, number).person
    assert person is not None
    reveal = kind.key == "pii-inspector"
    name = person.name if reveal else mask_name(person.name)
    return {
        "type": "UPDATED",  # the first change this gateway saw of the case
        "case": {
            "referenceNumber": reference,
            "sourceStatus": source_status,
            "complainant": {"name": name, "revealed": reveal},
        },
    }


def sees(kind: Kind, event: int, status: str) -> bool:
    """Whether a subscriber of ``kind`` may and asked to see the ``event``-th change (0: the
    Center's own case, 1: the case also referred to Khon Kaen)."""
    if kind.key == demo_agency_key("KKN-PO") and event == 0:
        return False
    return kind.query != BY_STATUS or kind.variables["status"] == [status]


async def test_thousands_of_subscribers_cost_one_resolution_per_group_and_event(
    served: tuple[ThreadedServer, str], agency_dsn: str, cases: tuple[int, int]
) -> None:
    server, store = served
    url = server.url.replace("http", "ws") + "/graphql"
    changes = [(cases[0], "WIP", "IN_PROGRESS"), (cases[1], "DONE", "RESOLVED")]
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url))

        async def readyz() -> dict[str, Any]:
            report: dict[str, Any] = (await client.get("/readyz")).json()["events"]
            return report

        async def watching() -> bool:
            return bool((await readyz())["watching"])

        await until(watching, readyz, 15)
        sockets: list[Socket] = []
        for kind in KINDS:
            for start in range(0, kind.count, PER_SOCKET):
                socket = await open_socket(url, kind, min(PER_SOCKET, kind.count - start))
                stack.push_async_callback(socket.ws.close)
                sockets.append(socket)
        readers = [asyncio.create_task(socket.read()) for socket in sockets]

        async def all_subscribed() -> bool:
            return bool((await readyz())["subscribers"] == SUBSCRIBERS)

        await until(all_subscribed, readyz)
        assert await metric(client, "complaint_graph_subscription_groups") == GROUPS
        assert await metric(client, "complaint_graph_active_subscriptions") == SUBSCRIBERS

        total = 0  # messages every subscriber together must have by now
        for event, (number, status_code, status) in enumerate(changes):
            before = await shared_counts(client)
            await change(agency_dsn, SET_STATUS, number, status_code)
            audience = sum(kind.count for kind in KINDS if sees(kind, event, status))

            total += audience

            async def delivered(total: int = total) -> bool:
                return sum(len(ops) for s in sockets for ops in s.received.values()) >= total

            async def report(before: tuple[float, ...] = before) -> str:
                return f"{await shared_counts(client)} since {before}"

            await until(delivered, report)
            resolved, alone, handed = (
                now - then for now, then in zip(await shared_counts(client), before, strict=True)
            )
            groups_that_see = {
                (kind.key, kind.query, json.dumps(kind.variables))
                for kind in KINDS
                if sees(kind, event, status)
            }
            assert resolved == len(groups_that_see), "one resolution per group, not per subscriber"
            assert (alone, handed) == (0, audience)

        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    for socket in sockets:
        kind = socket.kind
        wanted = [
            {"data": {"caseEvents": expected(kind, number, status, code)}}
            for event, (number, code, status) in enumerate(changes)
            if sees(kind, event, status)
        ]
        assert len(socket.received) == min(PER_SOCKET, kind.count) or not wanted
        for payloads in socket.received.values():
            assert payloads == wanted, kind

    log = AuditLog(store)
    try:
        entries = await log.entries(AuditQuery(first=1000))
    finally:
        await log.close()
    assert len({(e.subject, e.roles) for e in entries}) == 1, "the pii:read key's, each"
    assert Counter((e.action, e.case_id, e.fields, e.purpose) for e in entries) == {
        ("reveal", str(number), ("name",), purpose): 20
        for number, _, _ in changes
        for purpose in ("desk A", "desk B")
    }, "one reveal per subscriber shown the name, each with its own purpose"
