"""The demo agencies in databases of their own, for tests that write into them: a write test
never changes the session's shared demo data that read tests count on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.auth import AnonymousSettings, AuthSettings
from gateway.config import GatewayConfig
from gateway.demo import DEMO_PMOC_KEY, DEMO_TRAFFY_KEY, demo_config, demo_environ
from resolvers.access import Role
from samples import damrongdhama, pmoc_1111, provincial, traffy
from samples.serving import ThreadedServer
from tests.postgres import create_database, drop_database, run

CASES = 30


@dataclass
class WriteWorld:
    dsn: str
    sqlite_path: Path
    pmoc: ThreadedServer
    intake: pmoc_1111.Intake
    city: ThreadedServer
    city_intake: traffy.Intake
    config: GatewayConfig
    data_dir: Path

    def environ(self) -> dict[str, str]:
        return demo_environ(self.dsn, self.sqlite_path, self.pmoc.url, self.city.url)


@pytest.fixture
def write_world(postgres_admin_dsn: str, tmp_path: Path) -> Iterator[WriteWorld]:
    """Fresh agencies per test (30 cases each): writes of one test never meet another's,
    nor change what the session's agencies (tests/conftest.py) show the read tests."""
    dsn = run(create_database(postgres_admin_dsn, prefix="cg_writes"))
    run(damrongdhama.create_and_load(dsn, count=CASES))
    sqlite_path = tmp_path / "provincial.sqlite"
    provincial.create_and_load(sqlite_path, count=CASES)
    intake = pmoc_1111.Intake()
    pmoc = ThreadedServer(pmoc_1111.create_app(count=CASES, api_key=DEMO_PMOC_KEY, intake=intake))
    pmoc.start()
    city_intake = traffy.Intake()
    city = ThreadedServer(
        traffy.create_app(count=CASES, api_key=DEMO_TRAFFY_KEY, intake=city_intake)
    )
    city.start()
    demo = demo_config(dsn, sqlite_path, pmoc.url, city.url)
    config = replace(
        demo,
        auth=AuthSettings(
            key_store=f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}",
            anonymous=AnonymousSettings(role=Role.INSPECTOR),
        ),
        writes=demo.writes.model_copy(  # the demo's routing, a fast outbox of its own
            update={
                "store": f"sqlite+aiosqlite:///{tmp_path / 'outbox.sqlite'}",
                "retry_base_seconds": 0.2,
                "retry_max_seconds": 0.5,
                "poll_seconds": 0.1,
            }
        ),
    )
    try:
        yield WriteWorld(dsn, sqlite_path, pmoc, intake, city, city_intake, config, tmp_path)
    finally:
        city.stop()
        pmoc.stop()
        run(drop_database(postgres_admin_dsn, dsn))
