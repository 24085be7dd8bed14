"""The fixture agency loaded into a real backend of each of the six kinds, once per run.

``source`` is parametrized over the kinds: every contract test runs against each. MariaDB is
the server ``tests/mysql.py`` finds; where none answers its parameter is skipped with the
reason, and fails instead under ``COMPLAINT_GRAPH_REQUIRE_MYSQL`` (CI), as the MariaDB suite does.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from samples.serving import ThreadedServer
from sources import Source, complete
from tests import mysql
from tests.contract import configs
from tests.contract.backends import json_api, load_sql, open311_server, write_csv
from tests.contract.minimal import MinimalBackend
from tests.plugin_kind.complaint_graph_csv import CsvSettings, CsvSource
from tests.postgres import create_database, drop_database, run, sqlalchemy_url

AGENCY_DIR = Path(__file__).resolve().parents[1] / "graphql-agency"
KINDS = (
    "postgresql",
    "sqlite",
    "mariadb",
    "rest",
    "open311",
    "graphql",
    "minimal",
    "keyset",
    "csv",
)
"""The six kinds, and the least backend there can be (tests/contract/minimal.py): it pushes
down nothing, so the core does it all; ``keyset`` orders and cuts but filters nothing. ``csv``
is the third-party kind of tests/plugin_kind, only a ``Backend`` too (docs/contributors.md)."""


@pytest.fixture(scope="session")
def contract_postgres(postgres_admin_dsn: str) -> Iterator[str]:
    dsn = run(create_database(postgres_admin_dsn, "cg_contract"))
    try:
        run(load_sql(sqlalchemy_url(dsn)))
        yield dsn
    finally:
        run(drop_database(postgres_admin_dsn, dsn))


@pytest.fixture(scope="session")
def contract_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('contract') / 'agency.sqlite'}"
    run(load_sql(url))
    return url


@pytest.fixture(scope="session")
def contract_mariadb() -> Iterator[str]:
    admin = mysql.server_url()
    if admin is None:
        reason = (
            f"no MySQL/MariaDB server: set {mysql.URL_VARIABLE} to its SQLAlchemy URL "
            "or run one on 127.0.0.1:3306 (root, empty password)"
        )
        if mysql.required():
            pytest.fail(f"{reason}; {mysql.REQUIRE_VARIABLE} is set, so this is a failure")
        pytest.skip(reason)
    url = run(mysql.create_database(admin, "cg_contract"))
    try:
        run(load_sql(url))
        yield url
    finally:
        run(mysql.drop_database(admin, url))


@pytest.fixture(scope="session")
def contract_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("contract") / "agency.csv"
    write_csv(path)
    return str(path)


@pytest.fixture(scope="session")
def contract_rest() -> Iterator[str]:
    server = ThreadedServer(json_api())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def contract_open311() -> Iterator[str]:
    server = ThreadedServer(open311_server())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def contract_graphql(contract_postgres: str) -> Iterator[str]:
    """PostGraphile 4 over the PostgreSQL copy of the fixture (its ``public`` schema)."""
    node = shutil.which("node")
    assert node is not None, "node is needed for the GraphQL agency (PostGraphile)"
    assert (AGENCY_DIR / "node_modules" / "postgraphile").is_dir(), (
        "PostGraphile is not installed: run `npm ci --prefix tests/graphql-agency` (make test does)"
    )
    server = subprocess.Popen(
        [node, str(AGENCY_DIR / "server.js"), contract_postgres, "public"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()  # printed once it listens
        assert port.isdigit(), server.stderr.read() if server.stderr else "no port"
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for pipe in (server.stdout, server.stderr):
            if pipe is not None:
                pipe.close()


def settings_of(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The kind's configuration, its backend started (session-wide) on first use."""
    if kind == "postgresql":
        return configs.sql(sqlalchemy_url(request.getfixturevalue("contract_postgres")))
    if kind in ("sqlite", "mariadb"):
        return configs.sql(request.getfixturevalue(f"contract_{kind}"))
    if kind == "rest":
        return configs.rest(request.getfixturevalue("contract_rest"))
    if kind == "open311":
        return configs.open311(request.getfixturevalue("contract_open311"))
    if kind in ("minimal", "keyset"):
        return {}
    if kind == "csv":
        return configs.csv(request.getfixturevalue("contract_csv"))
    return configs.graphql(request.getfixturevalue("contract_graphql"))


@dataclass(frozen=True)
class Backend:
    """One kind's source over the fixture agency, and what that kind maps of it."""

    kind: str
    source: Source
    traits: configs.Traits


@pytest.fixture(params=KINDS)
def configured(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The kind and its configuration; its backend started outside any event loop."""
    kind: str = request.param
    return kind, settings_of(kind, request)


@pytest.fixture
async def backend(configured: tuple[str, dict[str, Any]]) -> AsyncIterator[Backend]:
    kind, settings = configured
    if kind in ("minimal", "keyset"):
        source = complete(MinimalBackend(orders=kind == "keyset"))
    elif kind == "csv":  # the plugin is not installed here: its class is made directly
        source = complete(CsvSource(CsvSettings.model_validate(settings)))
    else:
        source = configs.source(settings)
    await source.open()
    try:
        yield Backend(kind, source, configs.TRAITS[kind])
    finally:
        await source.close()
