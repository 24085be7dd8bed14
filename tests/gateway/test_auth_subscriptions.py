"""Subscriptions obey the same row-level rules as ``cases``: an agency is never sent an event of
a case it may not see, whichever transport it subscribes over."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import Gateway, create_app
from gateway.auth import AuthSettings, KeyStore
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, asyncpg_url, demo_agency_key
from resolvers.access import Role
from samples import links, pmoc_1111
from samples.serving import ThreadedServer
from sources import AgencyAccess, CaseFilter, Resilience, SourceSettings
from tests.conftest import DemoData, running
from tests.gateway.test_replicas import REDIS_URL
from tests.gateway.test_subscription_sources import set_rest_status
from tests.gateway.test_subscriptions import SET_STATUS, change, next_event, wait_for
from tests.postgres import run
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

SUBSCRIBE = "subscription { caseEvents { case { referenceNumber } } }"


async def _refer_to_khon_kaen(dsn: str, numbers: list[int]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO complaint_referrals VALUES ($1, $2, 'KKN', $3, 'FWD', NULL, $4)",
            [(9000 + n, n, datetime(2026, 1, 1, tzinfo=UTC), f"KK-{n}") for n in numbers],
        )
    finally:
        await connection.close()


async def _keys(store: KeyStore) -> None:
    await store.ensure("demo-inspector", "inspector", frozenset({Role.INSPECTOR}))
    for agency in ("KKN-PO", "OPM-1111", "MOI-DDC"):
        await store.ensure(demo_agency_key(agency), agency, frozenset({Role.AGENCY}), agency)


async def keyed_config(
    demo_data: DemoData,
    sources: tuple[SourceSettings, ...],
    tmp_path: Path,
    keys: Callable[[KeyStore], Awaitable[None]],
    events: EventSettings | None = None,
) -> GatewayConfig:
    """A gateway of ``sources`` whose callers authenticate against a key store of their own in
    ``tmp_path``, holding what ``keys`` puts there."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    store = KeyStore(url)
    try:
        await keys(store)
    finally:
        await store.close()
    return GatewayConfig(
        demo_data.config.categories,
        sources,
        demo_data.config.limits,
        events or EventSettings(),
        auth=AuthSettings(key_store=url),
    )


def watched_center(demo_data: DemoData, agency_dsn: str) -> SourceSettings:
    """The Damrongdhama database, watched every 50 ms, its code for Khon Kaen mapped."""
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    vocabulary = pg.vocabulary.model_copy(
        update={"agencies": {**pg.vocabulary.agencies, "KKN": "KKN-PO"}}
    )
    return pg.model_copy(
        update={"url": asyncpg_url(agency_dsn), "poll_seconds": 0.05, "vocabulary": vocabulary}
    )


@pytest.fixture
def served(demo_data: DemoData, agency_dsn: str, tmp_path: Path) -> Iterator[ThreadedServer]:
    """The Damrongdhama database watched; its cases 7 and 10 were also sent to Khon Kaen, and
    case 10 (a chain case) to the 1111 service."""
    run(_refer_to_khon_kaen(agency_dsn, [7, 10]))
    config = run(keyed_config(demo_data, (watched_center(demo_data, agency_dsn),), tmp_path, _keys))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def subscribed(
    server: ThreadedServer, protocol: str, key: str, query: str = SUBSCRIBE
) -> AsyncIterator[ClientConnection]:
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": query}}))
        yield ws


def number_of(event: dict[str, Any]) -> int:
    return int(event["case"]["referenceNumber"].rsplit("/", 1)[1])


async def test_each_subscriber_gets_only_the_events_of_cases_it_may_see(
    served: ThreadedServer, agency_dsn: str
) -> None:
    await wait_for(served, lambda events: events["watching"])
    async with (
        subscribed(served, "graphql-transport-ws", "demo-inspector") as inspector,
        subscribed(served, "graphql-transport-ws", demo_agency_key("KKN-PO")) as khon_kaen,
        subscribed(served, "graphql-ws", demo_agency_key("OPM-1111")) as pmoc,
    ):
        await wait_for(served, lambda events: events["subscribers"] >= 3)
        for number in (23, 7, 10):  # 23 is nobody's but the Damrongdhama Center's
            await change(agency_dsn, SET_STATUS, number, "WIP")
        assert [number_of(await next_event(inspector)) for _ in range(3)] == [23, 7, 10]
        assert [number_of(await next_event(khon_kaen)) for _ in range(2)] == [7, 10]
        assert number_of(await next_event(pmoc)) == 10


# -- referred on after subscribing ---------------------------------------------------------------

REFER_TO_1111 = """
WITH referral AS (
  INSERT INTO complaint_referrals VALUES ($2, $1, 'OPM1111', now(), 'FWD', 'ส่งเรื่องแล้ว', $3)
)
UPDATE complaints SET status_code = 'FWD', updated_at = now() WHERE id = $1
"""
"""What the Damrongdhama Center's system writes when it hands case $1 on to the 1111 service,
which opened it as its case $3 (one transaction, as the sample data's referrals look)."""

HANDED_ON = 12
"""A Damrongdhama case no chain links anywhere: until it is referred, nobody else sees it, and
the 1111 service's case PMOC-000012 is nobody's but the 1111 service's."""


@pytest.fixture
def pmoc_agency() -> Iterator[ThreadedServer]:
    """The 1111 service on loopback, its data changed by the test."""
    agency = ThreadedServer(pmoc_1111.create_app(count=30, api_key=DEMO_PMOC_KEY))
    agency.start()
    yield agency
    agency.stop()


async def two_agencies(
    demo_data: DemoData,
    agency_dsn: str,
    pmoc: ThreadedServer,
    tmp_path: Any,
    events: EventSettings | None = None,
) -> GatewayConfig:
    """The Damrongdhama database (which also refers to Khon Kaen) and the 1111 service, both
    watched; the demo keys of the Damrongdhama Center and Khon Kaen, and an inspector's."""
    await _refer_to_khon_kaen(agency_dsn, [7, 10])
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    rest = rest.model_copy(update={"base_url": pmoc.url, "poll_seconds": 0.05})
    pg = watched_center(demo_data, agency_dsn)
    return await keyed_config(demo_data, (pg, rest), tmp_path, _keys, events)


async def _follow_a_case_handed_on(
    servers: list[ThreadedServer], agency_dsn: str, pmoc: ThreadedServer
) -> None:
    """The Damrongdhama Center subscribes, then refers a case to the 1111 service, which changes
    its case: the center is sent that change, Khon Kaen is not. Subscribers are spread over
    ``servers`` (replicas when there are several)."""
    placed = [servers[0], servers[-1], servers[0]]  # inspector, center, Khon Kaen
    for server in servers:
        await wait_for(server, lambda events: events["watching"])
    async with (
        subscribed(placed[0], "graphql-transport-ws", "demo-inspector") as inspector,
        subscribed(placed[1], "graphql-transport-ws", demo_agency_key("MOI-DDC")) as center,
        subscribed(placed[2], "graphql-ws", demo_agency_key("KKN-PO")) as khon_kaen,
    ):
        for server in servers:
            count = sum(s is server for s in placed)
            await wait_for(server, lambda events, count=count: events["subscribers"] >= count)
        await change(agency_dsn, REFER_TO_1111, HANDED_ON, 9500, f"PMOC-{HANDED_ON:06d}")
        assert reference_of(await next_event(center)).endswith(f"/{HANDED_ON:06d}")
        await set_rest_status(pmoc, f"PMOC-{HANDED_ON:06d}", 4)
        # Published once the inspector has it; what follows for anyone was published later.
        while reference_of(await next_event(inspector)) != f"PMOC-{HANDED_ON:06d}":
            pass
        await change(agency_dsn, SET_STATUS, 7, "WIP")  # Khon Kaen's too (referred to it)
        handed_on = reference_of(await next_event(center))
        assert handed_on == f"PMOC-{HANDED_ON:06d}", "the case it handed on after subscribing"
        assert reference_of(await next_event(center)).endswith("/000007")
        assert reference_of(await next_event(khon_kaen)).endswith("/000007"), (
            "Khon Kaen is not sent the 1111 service's case: nobody referred it there"
        )


def reference_of(event: dict[str, Any]) -> str:
    reference: str = event["case"]["referenceNumber"]
    return reference


async def test_an_agency_is_sent_events_of_a_case_it_referred_after_subscribing(
    demo_data: DemoData, agency_dsn: str, pmoc_agency: ThreadedServer, tmp_path: Any
) -> None:
    config = await two_agencies(demo_data, agency_dsn, pmoc_agency, tmp_path)
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    try:
        await _follow_a_case_handed_on([server], agency_dsn, pmoc_agency)
    finally:
        server.stop()


async def test_on_replicas_an_agency_is_sent_events_of_a_case_it_referred_after_subscribing(
    demo_data: DemoData, agency_dsn: str, pmoc_agency: ThreadedServer, tmp_path: Any
) -> None:
    """Every replica delivers what Redis brings it, whichever replica watches which source."""
    prefix = f"cg-test-{uuid.uuid4().hex}"
    events = EventSettings(redis_url=REDIS_URL, redis_prefix=prefix)
    config = await two_agencies(demo_data, agency_dsn, pmoc_agency, tmp_path, events)
    servers = [ThreadedServer(create_app(config), lifespan=True) for _ in range(2)]
    for server in servers:
        server.start()
    try:
        await _follow_a_case_handed_on(servers, agency_dsn, pmoc_agency)
    finally:
        for server in servers:
            server.stop()
        client = redis.from_url(REDIS_URL)
        await client.delete(f"{prefix}:positions")
        await client.aclose()


LOCK_REFERRALS = "LOCK TABLE complaint_referrals IN ACCESS EXCLUSIVE MODE"
WITH_STATUS = "subscription { caseEvents { newStatus case { referenceNumber } } }"


async def test_while_its_referrals_cannot_be_read_an_agency_keeps_its_subscription_and_no_more(
    demo_data: DemoData,
    agency_dsn: str,
    pmoc_agency: ThreadedServer,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The center's referral table is locked (its listing times out) when the 1111 service
    changes the case handed on: that change is not sent (the old list does not name it) and
    the subscription lives on; once the table answers, the next change is sent."""
    config = await two_agencies(demo_data, agency_dsn, pmoc_agency, tmp_path)
    pg, rest = config.sources
    pg = pg.model_copy(update={"timeout_seconds": 0.5, "resilience": Resilience(retries=0)})
    app = create_app(replace(config, sources=(pg, rest)))
    gateway: Gateway = app.state.gateway
    server = ThreadedServer(app, lifespan=True)
    server.start()
    handed_on = f"PMOC-{HANDED_ON:06d}"
    try:
        await wait_for(server, lambda events: events["watching"])
        async with (
            subscribed(server, "graphql-transport-ws", "demo-inspector") as inspector,
            subscribed(
                server, "graphql-transport-ws", demo_agency_key("MOI-DDC"), WITH_STATUS
            ) as center,
        ):
            await wait_for(server, lambda events: events["subscribers"] >= 2)
            await change(agency_dsn, REFER_TO_1111, HANDED_ON, 9500, handed_on)
            assert reference_of(await next_event(center)).endswith(f"/{HANDED_ON:06d}")
            locker = await asyncpg.connect(agency_dsn)
            try:
                async with locker.transaction():
                    await locker.execute(LOCK_REFERRALS)
                    listed = gateway.metrics.round_trips(POSTGRES_SOURCE, "referred_references")
                    await set_rest_status(pmoc_agency, handed_on, 4)
                    while reference_of(await next_event(inspector)) != handed_on:
                        pass
                    async with asyncio.timeout(15):  # the refresh tried, and timed out
                        while True:
                            done = gateway.metrics.round_trips(
                                POSTGRES_SOURCE, "referred_references"
                            )
                            if done > listed:
                                break
                            await asyncio.sleep(0.01)
            finally:
                await locker.close()
            await set_rest_status(pmoc_agency, handed_on, 6)
            event = await next_event(center)
    finally:
        server.stop()
    assert (reference_of(event), event["newStatus"]) == (handed_on, "RESOLVED"), (
        "the change made while the list could not be read is not sent; the next one is"
    )
    assert any(
        "referrals of MOI-DDC not read again" in record.getMessage() for record in caplog.records
    )


async def test_one_reading_of_an_agencys_referrals_serves_a_whole_batch_and_its_subscribers(
    demo_data: DemoData, agency_dsn: str, pmoc_agency: ThreadedServer, tmp_path: Any
) -> None:
    """Twenty 1111 cases change at once; two center subscribers whose list of referred cases
    is empty (as before the center referred the chain cases 5, 10, 15, 20 there) are sent those
    four after one reading of the center's referrals; Khon Kaen, which lists none, causes none."""
    started = await running(
        await two_agencies(demo_data, agency_dsn, pmoc_agency, tmp_path), events=True
    )
    broker = started.gateway.events
    assert broker is not None
    center = CaseFilter(access=AgencyAccess("MOI-DDC"))
    khon_kaen = CaseFilter(access=AgencyAccess("KKN-PO"))
    streams = [broker.subscribe(center, None) for _ in range(2)]
    kkn = broker.subscribe(khon_kaen, None)
    try:
        listed = started.round_trips(POSTGRES_SOURCE, "referred_references")
        await broker.publish_changed(REST_SOURCE, [links.pmoc_id(n) for n in range(1, 21)])
        await broker.publish_changed(POSTGRES_SOURCE, ["7"])  # the center's, and Khon Kaen's
        async with asyncio.timeout(10):
            got = [[(await anext(s)).record.local_id for _ in range(5)] for s in streams]
            kkn_got = (await anext(kkn)).record.local_id
    finally:
        await started.client.aclose()
        await started.gateway.stop()
    chain = [links.pmoc_id(n) for n in (5, 10, 15, 20)]
    for each in got:
        assert sorted(each[:4]) == chain and each[4] == "7", each
    assert kkn_got == "7"
    assert started.round_trips(POSTGRES_SOURCE, "referred_references") == listed + 1
