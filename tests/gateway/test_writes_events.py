"""A write is an event at once: a partner subscribed to cases referred to it hears the
referral within a second, and the referring agency hears the receiver's progress report;
new cases (referred or filed) are CREATED, notes NOTE_ADDED.
The sources' watchers poll only every minute here, so only the write itself can have
published what arrives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import create_app
from gateway.config import EventSettings
from gateway.demo import demo_agency_key, seed_demo_keys
from samples.serving import ThreadedServer
from tests.gateway.test_subscriptions import wait_for
from tests.gateway.test_writes import NOTE, PROGRESS, REFER, case_id, refer_input
from tests.gateway.test_writes_intake import FILE, complaint
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

FOLLOW = """
subscription Follow($referredTo: [String!]) {
  caseEvents(referredTo: $referredTo) {
    type referredTo newStatus case { id referenceNumber }
  }
}"""


@pytest.fixture
def served(write_world: WriteWorld) -> Iterator[ThreadedServer]:  # noqa: F811
    run(seed_demo_keys(write_world.config))
    config = write_world.config
    slow = tuple(s.model_copy(update={"poll_seconds": 60.0}) for s in config.sources)
    config = replace(config, sources=slow, events=EventSettings(enabled=True))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server
    server.stop()


async def subscribe(server: ThreadedServer, agency: str, variables: dict[str, Any]) -> Any:
    url = server.url.replace("http", "ws") + "/graphql"
    ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    auth = {"Authorization": f"Bearer {demo_agency_key(agency)}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": FOLLOW, "variables": variables}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def events_until(ws: ClientConnection, kind: str, seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while not seen or seen[-1]["type"] != kind:
            message = json.loads(await ws.recv())
            assert message["type"] == "next", message
            seen.append(message["payload"]["data"]["caseEvents"])
    return seen


async def post(server: ThreadedServer, document: str, variables: Any, agency: str) -> Any:
    headers = {"Authorization": f"Bearer {demo_agency_key(agency)}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
    return response.json()


async def test_partners_hear_referrals_and_progress_at_once(served: ThreadedServer) -> None:
    partner = await subscribe(served, "OPM-1111", {"referredTo": ["OPM-1111"]})
    sender = await subscribe(served, "MOI-DDC", {})
    try:
        await wait_for(served, lambda events: events["subscribers"] >= 2)
        referred = await post(served, REFER, refer_input("12", "OPM-1111", "ev-1"), "MOI-DDC")
        result = referred["data"]["referCase"]
        assert result["write"]["state"] == "DONE", result
        events = await events_until(partner, "REFERRED", 1.0)
        assert events[-1]["case"]["id"] == case_id("damrongdhama", "12")
        assert "OPM-1111" in events[-1]["referredTo"]

        new_case = result["referredCase"]["id"]
        variables = {"input": {"caseId": new_case, "status": "ACCEPTED", "idempotencyKey": "a"}}
        progress = await post(served, PROGRESS, variables, "OPM-1111")
        assert progress["data"]["reportProgress"]["errors"] == []
        heard = await events_until(sender, "STATUS_CHANGED", 1.0)
        assert heard[-1]["case"]["id"] == new_case and heard[-1]["newStatus"] == "ACCEPTED"
    finally:
        await partner.close()
        await sender.close()


async def test_created_and_note_added_are_heard_within_a_second(served: ThreadedServer) -> None:
    """CREATED for the case a referral makes at the receiver and for a filed complaint (the
    1111 service's subscriber hears both, its own new cases), NOTE_ADDED for a note (the
    Damrongdhama Center's subscriber hears it on its case)."""
    receiver = await subscribe(served, "OPM-1111", {})
    owner = await subscribe(served, "MOI-DDC", {})
    try:
        await wait_for(served, lambda events: events["subscribers"] >= 2)
        referred = await post(served, REFER, refer_input("14", "OPM-1111", "ev-c"), "MOI-DDC")
        new_case = referred["data"]["referCase"]["referredCase"]["id"]
        heard = await events_until(receiver, "CREATED", 1.0)
        assert heard[-1]["case"]["id"] == new_case

        filed = await post(served, FILE, complaint("ev-f"), "OPM-1111")
        result = filed["data"]["fileComplaint"]
        assert result["agency"]["code"] == "OPM-1111" and result["write"]["state"] == "DONE"
        heard = await events_until(receiver, "CREATED", 1.0)
        assert heard[-1]["case"]["id"] == result["caseId"]

        note = {"caseId": case_id("damrongdhama", "4"), "note": "นัดหมายแล้ว", "idempotencyKey": "n"}
        noted = await post(served, NOTE, {"input": note}, "MOI-DDC")
        assert noted["data"]["addNote"]["write"]["state"] == "DONE", noted
        heard = await events_until(owner, "NOTE_ADDED", 1.0)
        assert heard[-1]["case"]["id"] == note["caseId"]
    finally:
        await receiver.close()
        await owner.close()
