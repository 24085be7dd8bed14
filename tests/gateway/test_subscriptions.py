"""Partner agencies subscribe over real WebSockets and are told of changes in a real database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway import events as events_module
from gateway.app import Gateway, create_app
from gateway.cli import main
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, asyncpg_url
from gateway.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from samples import pmoc_1111
from samples.serving import ThreadedServer
from sources import CaseFilter, WebhookSettings
from sources._changes import SubscriberTooSlow
from sources.rest import RestSettings
from tests.conftest import DemoData
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

SUBSCRIBE = """
subscription Follow($filter: CaseFilterInput, $after: String, $referredTo: [String!]) {
  caseEvents(filter: $filter, after: $after, referredTo: $referredTo) {
    id type at previousStatus newStatus source { id }
    case { referenceNumber status sourceStatus timeline { sourceStatus } }
  }
}
"""


def watched_config(demo_data: DemoData, dsn: str, queue_size: int = 1000) -> GatewayConfig:
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    source = pg.model_copy(update={"url": asyncpg_url(dsn), "poll_seconds": 0.05})
    return GatewayConfig(
        demo_data.config.categories,
        (source,),
        demo_data.config.limits,
        EventSettings(queue_size=queue_size),
        auth=demo_data.config.auth,
    )


async def notifying_config(
    demo_data: DemoData, dsn: str, tmp_path: Path, channel: str
) -> GatewayConfig:
    """:func:`watched_config` with polls an hour apart and NOTIFY on ``channel``, its triggers
    installed by ``complaint-graph sources install-triggers``: only a commit's NOTIFY wakes it."""
    config = watched_config(demo_data, dsn)
    (pg,) = config.sources
    pg = pg.model_copy(update={"poll_seconds": 3600.0, "notify_channel": channel})
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(demo_data, pg), encoding="utf-8")
    command = ["sources", "install-triggers", POSTGRES_SOURCE, "--config", str(path)]
    assert await asyncio.to_thread(main, command) == 0
    return replace(config, sources=(pg,))


@pytest.fixture
def served(demo_data: DemoData, agency_dsn: str) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(watched_config(demo_data, agency_dsn)), lifespan=True)
    server.start()
    yield server
    server.stop()


async def wait_for(server: ThreadedServer, check: Any) -> dict[str, Any]:
    """Poll /readyz until ``check`` holds (a condition with a deadline, not a timed wait)."""
    async with httpx.AsyncClient(base_url=server.url) as client, asyncio.timeout(15):
        while True:
            report: dict[str, Any] = (await client.get("/readyz")).json()
            if check(report["events"]):
                return report
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def transport_ws(
    server: ThreadedServer, variables: dict[str, Any] | None = None, *, subscribed: bool = True
) -> AsyncIterator[ClientConnection]:
    """A subscribed graphql-transport-ws connection, closed when the block ends."""
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        message = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": variables or {}},
        }
        await ws.send(json.dumps(message))
        if subscribed:
            await wait_for(server, lambda events: events["subscribers"] >= 1)
        yield ws


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        message = json.loads(await ws.recv())
    assert message["type"] in ("next", "data"), message
    assert "errors" not in message["payload"], message["payload"]
    event: dict[str, Any] = message["payload"]["data"]["caseEvents"]
    return event


async def change(dsn: str, sql: str, *args: Any) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


SET_STATUS = "UPDATE complaints SET status_code = $2, updated_at = now() WHERE id = $1"


async def test_status_changes_arrive_over_graphql_transport_ws(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with transport_ws(served) as ws:
        await change(agency_dsn, SET_STATUS, 7, "WIP")
        first = await next_event(ws)
        await change(agency_dsn, SET_STATUS, 7, "DONE")
        second = await next_event(ws)
    assert first["source"]["id"] == POSTGRES_SOURCE
    assert first["case"]["sourceStatus"] == "WIP"
    assert (second["type"], second["previousStatus"], second["newStatus"]) == (
        "STATUS_CHANGED",
        "IN_PROGRESS",
        "RESOLVED",
    )
    assert second["case"]["status"] == "RESOLVED"
    assert second["case"]["timeline"], "relations of the event's case resolve through the graph"


async def test_new_cases_are_created_events_and_filters_apply(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with transport_ws(served, {"filter": {"status": ["CLOSED"]}}) as ws:
        await change(agency_dsn, SET_STATUS, 8, "WIP")  # filtered out: not CLOSED
        await change(
            agency_dsn,
            "INSERT INTO complaints SELECT 1000, 'ดธ.1567/2569/001000', subject, detail, "
            "channel_code, type_code, 'CLS', now(), now(), due_at, now(), province_code, "
            "district_code, subdistrict_code, address, lat, lng FROM complaints WHERE id = 9",
        )
        created = await next_event(ws)
    assert created["type"] == "CREATED"
    assert created["case"]["referenceNumber"] == "ดธ.1567/2569/001000"
    assert created["newStatus"] == "CLOSED"


async def test_legacy_graphql_ws_clients_work_too(served: ThreadedServer, agency_dsn: str) -> None:
    await wait_for(served, lambda events: events["watching"])
    url = served.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "9", "type": "start", "payload": {"query": SUBSCRIBE}}))
        await wait_for(served, lambda events: events["subscribers"] >= 1)
        await change(agency_dsn, SET_STATUS, 11, "HOLD")
        event = await next_event(ws)
    assert event["case"]["sourceStatus"] == "HOLD"


async def test_resuming_after_an_event_replays_what_was_missed_once(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with transport_ws(served) as ws:
        await change(agency_dsn, SET_STATUS, 12, "WIP")
        seen = await next_event(ws)
    await wait_for(served, lambda events: events["subscribers"] == 0)
    await change(agency_dsn, SET_STATUS, 13, "HOLD")  # while nobody listens
    await change(agency_dsn, SET_STATUS, 14, "DONE")
    async with transport_ws(served, {"after": seen["id"]}) as ws:
        missed = [await next_event(ws), await next_event(ws)]
        await change(agency_dsn, SET_STATUS, 15, "CLS")
        live = await next_event(ws)
    assert [e["case"]["sourceStatus"] for e in missed] == ["HOLD", "DONE"]
    assert live["case"]["sourceStatus"] == "CLS"
    await wait_for(served, lambda events: events["subscribers"] == 0)


async def test_a_bad_resume_id_is_a_clear_error(served: ThreadedServer) -> None:
    async with transport_ws(served, {"after": "not-an-event"}, subscribed=False) as ws:
        async with asyncio.timeout(10):
            message = json.loads(await ws.recv())
    assert message["type"] == "next"
    (error,) = message["payload"]["errors"]
    assert "event id" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_slow_subscriber_is_cut_off_not_buffered_forever(
    demo_data: DemoData, agency_dsn: str
) -> None:
    gateway = Gateway(watched_config(demo_data, agency_dsn, queue_size=2))
    assert gateway.events is not None
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.events.ready.wait(), 15)
        stream = gateway.events.subscribe(CaseFilter(), None)  # registered at once
        assert gateway.events.subscriber_count == 1
        for case in (20, 21, 22, 23, 24):
            await change(agency_dsn, SET_STATUS, case, "WIP")

        async def drain() -> None:
            async with asyncio.timeout(10):
                async for _ in stream:
                    pass

        with pytest.raises(SubscriberTooSlow, match="fell more than 2 events behind"):
            await drain()
        assert gateway.events.subscriber_count == 0
    finally:
        await gateway.stop()


async def test_changes_in_an_agency_api_are_events_too(demo_data: DemoData) -> None:
    """The 1111 service is polled through its own API (updated_since), no triggers needed."""
    agency = ThreadedServer(pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY))
    agency.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    source = rest.model_copy(update={"base_url": agency.url, "poll_seconds": 0.05})
    config = GatewayConfig(
        demo_data.config.categories,
        (source,),
        demo_data.config.limits,
        EventSettings(),
        auth=demo_data.config.auth,
    )
    served = ThreadedServer(create_app(config), lifespan=True)
    served.start()
    try:
        await wait_for(served, lambda events: events["watching"])
        async with transport_ws(served) as ws:
            async with httpx.AsyncClient(base_url=agency.url) as client:
                answer = await client.post(
                    "/api/v1/complaints/PMOC-000004/status",
                    json={"status_id": 6},
                    headers={pmoc_1111.API_KEY_HEADER: DEMO_PMOC_KEY},
                )
                assert answer.status_code == 200
            event = await next_event(ws)
    finally:
        served.stop()
        agency.stop()
    assert event["source"]["id"] == REST_SOURCE
    assert event["case"]["referenceNumber"] == "PMOC-000004"
    assert event["newStatus"] == "RESOLVED"


async def test_server_sent_events_for_clients_that_cannot_use_websocket(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=15) as client,
        client.stream(
            "POST",
            "/graphql",
            json={"query": SUBSCRIBE},
            headers={"accept": "text/event-stream"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        await wait_for(served, lambda events: events["subscribers"] >= 1)
        await change(agency_dsn, SET_STATUS, 16, "FWD")
        event = None
        async with asyncio.timeout(10):
            async for line in response.aiter_lines():
                if line.startswith("data: ") and "caseEvents" in line:
                    event = json.loads(line.removeprefix("data: "))["data"]["caseEvents"]
                    break
    assert event is not None
    assert event["case"]["sourceStatus"] == "FWD"


async def test_postgres_notify_wakes_the_watcher_at_once(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With triggers installed, a change arrives long before the (one minute) poll interval."""
    config = watched_config(demo_data, agency_dsn)
    (pg,) = config.sources
    pg = pg.model_copy(update={"poll_seconds": 60.0, "notify_channel": "complaint_graph_test"})
    config = replace(config, sources=(pg,))
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(demo_data, pg))
    command = ["sources", "install-triggers", POSTGRES_SOURCE, "--config", str(path)]
    assert await asyncio.to_thread(main, command) == 0  # the CLI runs its own event loop
    assert "complaints" in capsys.readouterr().out
    served = ThreadedServer(create_app(config), lifespan=True)
    served.start()
    try:
        await wait_for(served, lambda events: events["watching"])
        async with transport_ws(served) as ws:
            await change(agency_dsn, SET_STATUS, 17, "HOLD")
            event = await next_event(ws)  # within 10 s, though the next poll is a minute away
    finally:
        served.stop()
    assert event["case"]["sourceStatus"] == "HOLD"


def config_yaml(demo_data: DemoData, source: Any) -> str:
    """A configuration file holding just ``source``, the demo categories and the suite's auth
    (anonymous callers are inspectors)."""
    document = {
        "categories": [c.model_dump() for c in demo_data.config.categories],
        "sources": [source.model_dump(mode="json", exclude_defaults=True) | {"kind": "sql"}],
        "auth": demo_data.config.auth.model_dump(mode="json", exclude_defaults=True),
    }
    return json.dumps(document, ensure_ascii=False)


SECRET = "webhook-secret-for-the-tests-only"


@pytest.fixture
def pushing_agency(demo_data: DemoData) -> Iterator[tuple[ThreadedServer, ThreadedServer]]:
    """The 1111 service as an agency that pushes: no updated-since parameter, a webhook."""
    agency = ThreadedServer(pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY))
    agency.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    assert isinstance(rest, RestSettings)
    quiet = rest.list.model_copy(
        update={"filters": rest.list.filters.model_copy(update={"updated_from": None})}
    )
    source = rest.model_copy(
        update={
            "base_url": agency.url,
            "list": quiet,
            "webhook": WebhookSettings(secret=SECRET, tolerance_seconds=60),
        }
    )
    config = GatewayConfig(
        demo_data.config.categories,
        (source,),
        demo_data.config.limits,
        EventSettings(),
        auth=demo_data.config.auth,
    )
    served = ThreadedServer(create_app(config), lifespan=True)
    served.start()
    yield agency, served
    served.stop()
    agency.stop()


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    return {
        "content-type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


async def test_a_signed_webhook_publishes_the_change_once(
    pushing_agency: tuple[ThreadedServer, ThreadedServer],
) -> None:
    agency, served = pushing_agency
    assert (await wait_for(served, lambda events: events["watching"]))["events"]["sources"] == []
    async with httpx.AsyncClient() as client:
        await client.post(
            f"{agency.url}/api/v1/complaints/PMOC-000006/status",
            json={"status_id": 7},
            headers={pmoc_1111.API_KEY_HEADER: DEMO_PMOC_KEY},
        )
        body = json.dumps({"cases": ["PMOC-000006"]}).encode()
        headers = signed(body)
        async with transport_ws(served) as ws:
            pushed = await client.post(
                f"{served.url}/webhooks/{REST_SOURCE}", content=body, headers=headers
            )
            event = await next_event(ws)
            replayed = await client.post(
                f"{served.url}/webhooks/{REST_SOURCE}", content=body, headers=headers
            )
    assert pushed.status_code == 202
    assert pushed.json() == {"accepted": 1, "events": 1}
    assert event["case"]["referenceNumber"] == "PMOC-000006"
    assert event["newStatus"] == "CLOSED"
    assert replayed.status_code == 409


async def test_unsigned_forged_or_stale_webhooks_are_refused(
    pushing_agency: tuple[ThreadedServer, ThreadedServer],
) -> None:
    _, served = pushing_agency
    body = json.dumps({"cases": ["PMOC-000006"]}).encode()
    url = f"{served.url}/webhooks/{REST_SOURCE}"
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(url, content=body)
        forged = await client.post(url, content=body, headers=signed(body, secret="x" * 20))
        stale = await client.post(url, content=body, headers=signed(body, at=time.time() - 3600))
        unknown = await client.post(f"{served.url}/webhooks/nobody", content=body)
        garbage = await client.post(url, content=b"[1,2]", headers=signed(b"[1,2]"))
    assert [r.status_code for r in (unsigned, forged, stale, unknown, garbage)] == [
        401,
        401,
        401,
        404,
        400,
    ]
    assert "outside 60 s" in stale.json()["error"]


ADD_NOTE = (
    "WITH touched AS (UPDATE complaints SET updated_at = now() WHERE id = $1 RETURNING id) "
    "INSERT INTO complaint_status_log SELECT (SELECT max(id) + 1 FROM complaint_status_log), "
    "id, (SELECT status_code FROM complaints WHERE id = $1), now(), $2 FROM touched"
)
REFER = (
    "WITH touched AS (UPDATE complaints SET updated_at = now() WHERE id = $1 RETURNING id) "
    "INSERT INTO complaint_referrals SELECT 100000 + id, id, 'OPM1111', now(), 'FWD', "
    "'ส่งเรื่องแล้ว', NULL FROM touched"
)


async def test_notes_and_referrals_are_their_own_events(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with transport_ws(served) as ws:
        await change(agency_dsn, SET_STATUS, 22, "WIP")  # first sight of case 22
        assert (await next_event(ws))["type"] == "UPDATED"
        await change(agency_dsn, ADD_NOTE, 22, "โทรแจ้งผู้ร้องแล้ว")
        noted = await next_event(ws)
        await change(agency_dsn, REFER, 22)
        referred = await next_event(ws)
    assert noted["type"] == "NOTE_ADDED"
    assert noted["case"]["timeline"][-1]["sourceStatus"] == "WIP"
    assert referred["type"] == "REFERRED"


async def test_partners_can_follow_only_what_is_referred_to_them(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with transport_ws(served, {"referredTo": ["OPM-1111"]}) as ws:
        await change(agency_dsn, SET_STATUS, 23, "WIP")  # never referred: not theirs
        await change(agency_dsn, REFER, 24)
        event = await next_event(ws)
    assert event["case"]["referenceNumber"].endswith("/000024")


async def test_an_unforeseen_failure_does_not_end_a_sources_events(
    demo_data: DemoData, agency_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll that fails with an error nobody foresaw (a bug, not a SourceError) is logged and
    the watcher polls again: the source's next change is still an event. (The watcher is one
    task per source for the gateway's life; before, such an error ended it silently.)"""
    failures: list[str] = []
    read_changes = events_module.changes_after

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append("raised")
            raise RuntimeError("an unforeseen failure")
        return await read_changes(*args, **kwargs)

    monkeypatch.setattr(events_module, "changes_after", failing_once)
    server = ThreadedServer(create_app(watched_config(demo_data, agency_dsn)), lifespan=True)
    server.start()
    try:
        await wait_for(server, lambda events: events["watching"])
        async with transport_ws(server) as ws:
            await change(agency_dsn, SET_STATUS, 11, "WIP")
            event = await next_event(ws)
    finally:
        server.stop()
    assert failures == ["raised"]
    assert (event["case"]["referenceNumber"][-6:], event["case"]["sourceStatus"]) == (
        "000011",
        "WIP",
    )
