"""Fixtures that start real things: a PostgreSQL database, SQLite files, the ASGI gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import Gateway, create_app
from gateway.auth import AnonymousSettings, AuthSettings
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, DEMO_TRAFFY_KEY, demo_config, demo_environ
from resolvers.access import Role
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer
from tests.postgres import create_database, drop_database, run, server_dsn

PG_CASES = 900
PG_SEED = 1567
SQLITE_CASES = 600
SQLITE_SEED = 4000
REST_CASES = 700
REST_SEED = 1111
OPEN311_CASES = 600
OPEN311_SEED = 2024


@pytest.fixture(scope="session")
def postgres_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """COMPLAINT_GRAPH_TEST_DSN, else 127.0.0.1:5432 when it answers, else an embedded server."""
    dsn, server = server_dsn(tmp_path_factory.mktemp("embedded-postgres") / "data")
    yield dsn
    del server


@dataclass(frozen=True)
class DemoData:
    postgres_dsn: str
    sqlite_path: Path
    pmoc_url: str
    traffy_url: str
    config: GatewayConfig

    def environ(self) -> dict[str, str]:
        """The variables samples/config.yaml reads these agencies' addresses from."""
        return demo_environ(self.postgres_dsn, self.sqlite_path, self.pmoc_url, self.traffy_url)


@pytest.fixture(scope="session")
def pmoc_server() -> Iterator[ThreadedServer]:
    """The 1111 service sample, a real HTTP server on loopback for the whole run."""
    server = ThreadedServer(
        pmoc_1111.create_app(seed=REST_SEED, count=REST_CASES, api_key=DEMO_PMOC_KEY)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def traffy_server() -> Iterator[ThreadedServer]:
    """The city platform sample, an Open311 server on loopback for the whole run. It takes
    POSTs with the demo's api_key, as the demo's does; tests that write bring a platform of
    their own (tests/writes_world.py), so what the session's shows never changes."""
    server = ThreadedServer(
        traffy.create_app(seed=OPEN311_SEED, count=OPEN311_CASES, api_key=DEMO_TRAFFY_KEY)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_data(
    postgres_admin_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
    pmoc_server: ThreadedServer,
    traffy_server: ThreadedServer,
) -> Iterator[DemoData]:
    """The demo agencies, built once per test run in databases of their own."""
    from samples import damrongdhama, provincial

    dsn = run(create_database(postgres_admin_dsn))
    run(damrongdhama.create_and_load(dsn, seed=PG_SEED, count=PG_CASES))
    sqlite_path = tmp_path_factory.mktemp("provincial") / "provincial.sqlite"
    provincial.create_and_load(sqlite_path, seed=SQLITE_SEED, count=SQLITE_CASES)
    config = replace(
        demo_config(dsn, sqlite_path, pmoc_server.url, traffy_server.url),
        # The suite's callers are anonymous inspectors unless a test authenticates: an explicit
        # opening the demo never has (tests/gateway/test_auth.py covers the closed default).
        auth=AuthSettings(
            key_store=f"sqlite+aiosqlite:///{sqlite_path.with_name('keys.sqlite')}",
            anonymous=AnonymousSettings(role=Role.INSPECTOR),
        ),
    )
    yield DemoData(dsn, sqlite_path, pmoc_server.url, traffy_server.url, config)
    run(drop_database(postgres_admin_dsn, dsn))


@dataclass
class RunningGateway:
    app: Starlette
    gateway: Gateway
    client: httpx.AsyncClient

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL document; the HTTP layer must answer 200 for an executed operation."""
        response = await self.client.post(
            "/graphql", json={"query": document, "variables": variables}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def round_trips(self, source: str, operation: str | None = None) -> float:
        return self.gateway.metrics.round_trips(source, operation)


async def running(config: GatewayConfig, *, events: bool = False) -> RunningGateway:
    """The gateway in this test's event loop; without events unless asked, so that pollers
    add no round trips to the ones a test counts."""
    if not events:
        config = replace(config, events=EventSettings(enabled=False))
    app = create_app(config)
    gateway: Gateway = app.state.gateway
    await gateway.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    return RunningGateway(app, gateway, client)


@contextlib.asynccontextmanager
async def serving(config: GatewayConfig, *, events: bool = False) -> AsyncIterator[RunningGateway]:
    """:func:`running`, its client closed and the gateway stopped afterwards."""
    started = await running(config, events=events)
    try:
        yield started
    finally:
        await started.client.aclose()
        await started.gateway.stop()


@pytest.fixture
async def gateway(demo_data: DemoData) -> AsyncIterator[RunningGateway]:
    async with serving(demo_data.config) as started:
        yield started


# -- row-level access (tests/resolvers/test_access*.py, tests/gateway/test_auth*.py) ------------

KKN_REFERRED = {7: 3, 10: 4}
"""Damrongdhama cases referred to the Khon Kaen office too: case number -> petition number.
Case 10 is also a chain case referred to the 1111 service, so it is seen by both agencies."""


@dataclass(frozen=True)
class AccessWorld:
    """The four agencies with an own Damrongdhama database that also refers to Khon Kaen, and
    a closed gateway (no anonymous role) whose key store holds the demo keys."""

    config: GatewayConfig
    ddc_dsn: str
    ddc_cases: frozenset[str]  # read back from the database, not through the gateway
    ddc_referrals: frozenset[tuple[str, str, str]]  # (case id, native target, their reference)


@pytest.fixture(scope="session")
def access_world(
    demo_data: DemoData, postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccessWorld]:
    from gateway.demo import asyncpg_url, seed_demo_keys
    from samples import damrongdhama, provincial
    from samples.generator import generate_cases

    dsn = run(create_database(postgres_admin_dsn))
    run(damrongdhama.create_and_load(dsn, count=60))
    petitions = {
        c.number: provincial.petition_no(c)
        for c in generate_cases(
            seed=SQLITE_SEED, count=SQLITE_CASES, province_codes=[provincial.PROVINCE]
        )
    }
    rows = [
        (
            9000 + number,
            number,
            "KKN",
            datetime(2026, 1, 1, tzinfo=UTC),
            "FWD",
            None,
            petitions[petition],
        )
        for number, petition in KKN_REFERRED.items()
    ]
    run(_insert_referrals(dsn, rows))
    sources = []
    for source in demo_data.config.sources:
        if source.id == "damrongdhama":
            vocabulary = source.vocabulary.model_copy(
                update={"agencies": {**source.vocabulary.agencies, "KKN": "KKN-PO"}}
            )
            source = source.model_copy(update={"url": asyncpg_url(dsn), "vocabulary": vocabulary})
        sources.append(source)
    store = tmp_path_factory.mktemp("access") / "keys.sqlite"
    config = replace(
        demo_data.config,
        sources=tuple(sources),
        auth=AuthSettings(key_store=f"sqlite+aiosqlite:///{store}"),
    )
    run(seed_demo_keys(config))
    cases = run(_fetch(dsn, "SELECT id::text FROM complaints"))
    referred = run(
        _fetch(dsn, "SELECT complaint_id::text, to_org, their_ref FROM complaint_referrals")
    )
    yield AccessWorld(
        config,
        dsn,
        frozenset(row[0] for row in cases),
        frozenset((row[0], row[1], row[2]) for row in referred),
    )
    run(drop_database(postgres_admin_dsn, dsn))


@pytest.fixture
async def closed_gateway(access_world: AccessWorld) -> AsyncIterator[RunningGateway]:
    """The access world's gateway: the demo keys, and anonymous callers introspection only."""
    async with serving(access_world.config) as started:
        yield started


async def _insert_referrals(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO complaint_referrals VALUES ($1, $2, $3, $4, $5, $6, $7)", rows
        )
    finally:
        await connection.close()


async def _fetch(dsn: str, sql: str) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()
