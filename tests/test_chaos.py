"""The chaos suite (issue 19): real agencies paused, killed, slowed, trickling and corrupt, one at
a time, under a steady load; see tests/chaos.py. One round of faults here (about a minute);
``COMPLAINT_GRAPH_CHAOS_MINUTES=10 .venv/bin/pytest tests/test_chaos.py -s`` runs longer and
prints the figures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest

from gateway.app import create_app
from gateway.config import EventSettings, GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, demo_config
from samples.serving import ThreadedServer
from sources import Resilience
from tests.agencies import AgencyProcess
from tests.chaos import (
    CORRUPT,
    SLOW,
    STALL,
    TRICKLE,
    TRUNCATE,
    FaultProxy,
    Harness,
    process_faults,
    proxy_faults,
    run_chaos,
)
from tests.conftest import OPEN311_CASES, OPEN311_SEED, REST_CASES, REST_SEED, DemoData
from tests.resolvers.expected import ALL_SOURCES, OPEN311_SOURCE, POSTGRES_SOURCE, REST_SOURCE

DEADLINE = 3.0
RECOVERY = 2.0
MINUTES = float(os.environ.get("COMPLAINT_GRAPH_CHAOS_MINUTES", "0"))
LOOP = os.environ.get("COMPLAINT_GRAPH_CHAOS_LOOP", "asyncio")
SEED = int(os.environ.get("COMPLAINT_GRAPH_CHAOS_SEED", "19"))


def through(dsn: str, port: int) -> str:
    """``dsn`` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def chaos_config(
    demo_data: DemoData, pg: FaultProxy, pmoc: FaultProxy, traffy: FaultProxy
) -> GatewayConfig:
    pg_port = urlsplit(demo_data.postgres_dsn).port or 5432
    assert pg.upstream_port == pg_port
    config = demo_config(
        through(demo_data.postgres_dsn, pg.port),
        demo_data.sqlite_path,
        f"http://127.0.0.1:{pmoc.port}",
        f"http://127.0.0.1:{traffy.port}",
    )
    resilience = Resilience(circuit_failure_threshold=3, circuit_recovery_seconds=RECOVERY)
    sources = tuple(s.model_copy(update={"resilience": resilience}) for s in config.sources)
    limits = config.limits.model_copy(update={"timeout_seconds": DEADLINE, "rate_limit": None})
    return replace(
        config,
        sources=sources,
        limits=limits,
        auth=demo_data.config.auth,
        events=EventSettings(enabled=False),
    )


@pytest.fixture
async def harness(demo_data: DemoData) -> AsyncIterator[Harness]:
    import random

    rng = random.Random(SEED)
    pmoc = AgencyProcess(
        "pmoc_1111", REST_SEED, REST_CASES, DEMO_PMOC_KEY, probe="/api/v1/complaints"
    )
    traffy = AgencyProcess("traffy", OPEN311_SEED, OPEN311_CASES, probe="/open311/v2/services.json")
    await asyncio.gather(asyncio.to_thread(pmoc.start), asyncio.to_thread(traffy.start))
    proxies = {
        REST_SOURCE: FaultProxy(pmoc.port, rng),
        OPEN311_SOURCE: FaultProxy(traffy.port, rng),
        POSTGRES_SOURCE: FaultProxy(urlsplit(demo_data.postgres_dsn).port or 5432, rng),
    }
    for proxy in proxies.values():
        await proxy.start()
    config = chaos_config(
        demo_data, proxies[POSTGRES_SOURCE], proxies[REST_SOURCE], proxies[OPEN311_SOURCE]
    )
    gateway = ThreadedServer(create_app(config), lifespan=True, loop=LOOP)
    await asyncio.to_thread(gateway.start)
    faults = [
        *process_faults("1111 service", REST_SOURCE, pmoc),
        *proxy_faults("1111 service", REST_SOURCE, proxies[REST_SOURCE], [SLOW, CORRUPT]),
        *process_faults("city platform", OPEN311_SOURCE, traffy)[:1],
        *proxy_faults(
            "city platform", OPEN311_SOURCE, proxies[OPEN311_SOURCE], [TRICKLE, TRUNCATE]
        ),
        *proxy_faults("Damrongdhama database", POSTGRES_SOURCE, proxies[POSTGRES_SOURCE], [STALL]),
    ]
    try:
        yield Harness(
            gateway_url=gateway.url,
            sources=list(ALL_SOURCES),
            deadline=DEADLINE,
            recovery=RECOVERY,
            faults=faults,
            proxies=proxies,
            pool_sizes={REST_SOURCE: 10, OPEN311_SOURCE: 10, POSTGRES_SOURCE: 15},
        )
    finally:
        for proxy in proxies.values():
            proxy.set("pass")
        await asyncio.to_thread(gateway.stop)
        for proxy in proxies.values():
            await proxy.close()
        pmoc.stop()
        traffy.stop()


async def test_agencies_misbehaving_one_at_a_time_under_load(harness: Harness) -> None:
    report = await run_chaos(harness, rounds=1, minutes=MINUTES, seed=SEED)
    print("\nchaos:", report.summary())
    assert not report.violations, "\n".join(report.violations[:20])
    assert report.faults == len(harness.faults) or MINUTES
    assert report.recoveries == report.faults
    assert report.leaks == 0
    assert report.partial > 0 and report.cancelled > 0
