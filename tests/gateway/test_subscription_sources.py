"""Where events come from, over real WebSockets: a real PostgreSQL agency database and a real
REST agency on loopback change, and subscribers see every change once, in the order made."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111
from samples.serving import ThreadedServer
from sources._changes import decode_token
from tests.conftest import DemoData
from tests.gateway.test_subscriptions import (
    SET_STATUS,
    change,
    next_event,
    notifying_config,
    transport_ws,
    wait_for,
    watched_config,
)
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE


def serve(config: GatewayConfig) -> ThreadedServer:
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    return server


def ids_in_order(events: list[dict[str, Any]], source: str) -> bool:
    """Each event id carries the source's watermark as of that event: they must only grow."""
    marks = [decode_token(e["id"])[source] for e in events]
    keys = [(m.value, m.local_id) for m in marks]
    return keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_postgres_changes_arrive_once_each_in_commit_order(
    demo_data: DemoData, agency_dsn: str
) -> None:
    served = serve(watched_config(demo_data, agency_dsn))
    try:
        await wait_for(served, lambda events: events["watching"])
        # Distinct cases: a source keeps each case's current state only, so two changes to one
        # case between two polls are one event (docs/partners.md, Resumption).
        commits = [(33, "WIP"), (31, "HOLD"), (35, "FWD"), (34, "DONE"), (32, "ACK")]
        async with transport_ws(served) as ws:
            for case, status in commits:  # one transaction each, in this order
                await change(agency_dsn, SET_STATUS, case, status)
            got = [await next_event(ws) for _ in commits]
            await change(agency_dsn, SET_STATUS, 31, "DONE")  # seen before: a status change
            again = await next_event(ws)
            await change(agency_dsn, SET_STATUS, 36, "WIP")  # a last one: nothing came between
            last = await next_event(ws)
    finally:
        served.stop()
    assert [(e["case"]["referenceNumber"][-2:], e["case"]["sourceStatus"]) for e in got] == [
        (f"{case}", status) for case, status in commits
    ]
    assert last["case"]["referenceNumber"].endswith("/000036")
    assert ids_in_order([*got, again, last], POSTGRES_SOURCE)
    moments = [datetime.fromisoformat(e["at"]) for e in [*got, again, last]]
    assert moments == sorted(moments) and len(set(moments)) == len(moments)
    connection = await asyncpg.connect(agency_dsn)
    try:
        committed = await connection.fetchval("SELECT updated_at FROM complaints WHERE id = 36")
    finally:
        await connection.close()
    assert moments[-1] == committed, "an event's time is the agency's own updated_at"
    assert (again["type"], again["previousStatus"], again["newStatus"]) == (
        "STATUS_CHANGED",
        "ON_HOLD",
        "RESOLVED",
    )


SAME_MOMENT = "UPDATE complaints SET status_code = 'WIP', updated_at = now() WHERE id = ANY($1)"


async def test_changes_sharing_a_timestamp_are_neither_missed_nor_repeated(
    demo_data: DemoData, agency_dsn: str
) -> None:
    """Five rows committed with one ``updated_at``, read two per poll: the (updated_at, id)
    watermark must page through the tie."""
    config = watched_config(demo_data, agency_dsn)
    served = serve(replace(config, events=config.events.model_copy(update={"batch": 2})))
    try:
        await wait_for(served, lambda events: events["watching"])
        async with transport_ws(served) as ws:
            await change(agency_dsn, SAME_MOMENT, [41, 42, 43, 44, 45])
            tied = [await next_event(ws) for _ in range(5)]
            await change(agency_dsn, SET_STATUS, 46, "HOLD")
            last = await next_event(ws)
    finally:
        served.stop()
    assert [e["case"]["referenceNumber"][-2:] for e in tied] == ["41", "42", "43", "44", "45"]
    assert last["case"]["referenceNumber"].endswith("/000046")  # no repeat of the tie before it
    assert ids_in_order([*tied, last], POSTGRES_SOURCE)


@pytest.fixture
def rest_agency(demo_data: DemoData, agency_dsn: str) -> Iterator[tuple[ThreadedServer, Any]]:
    """The 1111 service on loopback, watched through its updated-since parameter."""
    agency = ThreadedServer(pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY))
    agency.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    source = rest.model_copy(update={"base_url": agency.url, "poll_seconds": 0.05})
    served = serve(replace(watched_config(demo_data, agency_dsn), sources=(source,)))
    yield agency, served
    served.stop()
    agency.stop()


async def set_rest_status(agency: ThreadedServer, code: str, status_id: int) -> None:
    async with httpx.AsyncClient(base_url=agency.url) as client:
        answer = await client.post(
            f"/api/v1/complaints/{code}/status",
            json={"status_id": status_id},
            headers={pmoc_1111.API_KEY_HEADER: DEMO_PMOC_KEY},
        )
    assert answer.status_code == 200, answer.text


async def test_rest_agency_changes_arrive_once_each_in_the_order_made(
    rest_agency: tuple[ThreadedServer, ThreadedServer],
) -> None:
    agency, served = rest_agency
    await wait_for(served, lambda events: events["watching"])
    made = [("PMOC-000012", 3), ("PMOC-000005", 4), ("PMOC-000017", 6), ("PMOC-000020", 7)]
    async with transport_ws(served) as ws:
        for code, status_id in made:  # distinct cases, as for PostgreSQL above
            await set_rest_status(agency, code, status_id)
        got = [await next_event(ws) for _ in made]
        await set_rest_status(agency, "PMOC-000012", 6)  # seen before: a status change
        again = await next_event(ws)
        await set_rest_status(agency, "PMOC-000021", 3)
        last = await next_event(ws)
    assert [e["case"]["referenceNumber"] for e in got] == [code for code, _ in made]
    assert [e["source"]["id"] for e in got] == [REST_SOURCE] * 4
    assert again["type"] == "STATUS_CHANGED"
    assert (again["previousStatus"], again["newStatus"]) == (got[0]["newStatus"], "RESOLVED")
    assert last["case"]["referenceNumber"] == "PMOC-000021"
    assert ids_in_order([*got, again, last], REST_SOURCE)


async def test_with_notify_each_change_arrives_within_a_second_of_its_commit(
    demo_data: DemoData, agency_dsn: str, tmp_path: Path
) -> None:
    """Polling is an hour apart here: only the NOTIFY sent at commit can bring the event."""
    config = await notifying_config(demo_data, agency_dsn, tmp_path, "cg_within_a_second")
    served = serve(config)
    try:
        await wait_for(served, lambda events: events["watching"])
        async with transport_ws(served) as ws:
            waited = []
            for case, status in ((50, "WIP"), (51, "HOLD"), (50, "DONE")):
                await change(agency_dsn, SET_STATUS, case, status)  # returns once committed
                committed = time.monotonic()
                async with asyncio.timeout(1.0):  # fails the test if the event takes longer
                    event = await next_event(ws)
                waited.append(time.monotonic() - committed)
                assert event["case"]["sourceStatus"] == status
    finally:
        served.stop()
    assert max(waited) < 1.0, waited
