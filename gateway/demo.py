"""``complaint-graph demo``: build the demo agencies' databases once, then serve them.

The Damrongdhama Center database is PostgreSQL: the server named by ``COMPLAINT_GRAPH_DEMO_DSN``
when set, else an embedded server (the ``pgserver`` package) kept under the data directory, so a
fresh machine needs nothing installed. The provincial office is a SQLite file beside it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import uvicorn

from gateway.auth import AuthSettings, KeyStore, PersonalDataSettings
from gateway.config import GatewayConfig, parse_config
from gateway.shutdown import GatewayServer
from resolvers.access import Role
from samples.generator import DEMO_MATCH_KEY

log = logging.getLogger("complaint_graph.demo")

DEMO_DSN_VARIABLE = "COMPLAINT_GRAPH_DEMO_DSN"
DEMO_SIZE = 10_000
"""Cases per demo agency unless ``--size`` says otherwise; the docs' examples are answered at it."""
DEFAULT_AGENCY_PORT = 8101  # the 1111 sample API; the city platform listens on the next port


class DemoError(Exception):
    """An expected failure (a port in use, say): the CLI prints its one line, no traceback."""


def asyncpg_url(dsn: str) -> str:
    """A libpq-style ``postgresql://`` DSN as a SQLAlchemy async URL."""
    scheme, rest = dsn.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgres", "postgresql") else dsn


DEMO_PMOC_KEY = "demo-pmoc-key"  # demo credentials for synthetic loopback services
DEMO_TRAFFY_KEY = "demo-traffy-key"  # the city platform's api_key for POST requests.json


def demo_environ(
    damrongdhama_dsn: str, provincial_path: Path, pmoc_url: str, traffy_url: str
) -> dict[str, str]:
    """The variables samples/config.yaml reads the demo agencies' addresses from."""
    return {
        "DEMO_DAMRONGDHAMA_URL": asyncpg_url(damrongdhama_dsn),
        "DEMO_PROVINCIAL_URL": f"sqlite+aiosqlite:///{provincial_path.resolve()}",
        "DEMO_PMOC_URL": pmoc_url,
        "DEMO_PMOC_KEY": DEMO_PMOC_KEY,
        "DEMO_TRAFFY_URL": f"{traffy_url}/open311/v2",
        "DEMO_TRAFFY_KEY": DEMO_TRAFFY_KEY,
    }


def demo_config(
    damrongdhama_dsn: str, provincial_path: Path, pmoc_url: str, traffy_url: str
) -> GatewayConfig:
    text = files("samples").joinpath("config.yaml").read_text(encoding="utf-8")
    environ = demo_environ(damrongdhama_dsn, provincial_path, pmoc_url, traffy_url)
    return parse_config(text, environ, "samples/config.yaml")


DEMO_ANALYST_KEY = "demo-analyst"  # public demo keys, listed in README.md: demo only
DEMO_INSPECTOR_KEY = "demo-inspector"
DEMO_AUDITOR_KEY = "demo-auditor"  # reads the personal-data audit log (audit:read)


def demo_agency_key(agency: str) -> str:
    return f"demo-agency-{agency}"


def with_demo_key_store(config: GatewayConfig, data_dir: Path) -> GatewayConfig:
    """The demo's own key store beside its data; anonymous callers get introspection only."""
    store = f"sqlite+aiosqlite:///{(data_dir / 'demo-keys.sqlite').resolve()}"
    personal_data = PersonalDataSettings(match_key=DEMO_MATCH_KEY)  # audit log: the same file
    return replace(config, auth=AuthSettings(key_store=store, personal_data=personal_data))


async def seed_demo_keys(config: GatewayConfig) -> None:
    """The published demo keys, one per role and one per demo agency, in the demo's store.

    Only ``complaint-graph demo`` calls this: a production store never holds a known key.
    """
    store = KeyStore(config.auth.key_store)
    try:
        await store.ensure(
            DEMO_INSPECTOR_KEY,
            "demo inspector",
            frozenset({Role.INSPECTOR}),
            None,
            frozenset({"pii:read"}),
        )
        await store.ensure(DEMO_ANALYST_KEY, "demo analyst", frozenset({Role.ANALYST}))
        await store.ensure(
            DEMO_AUDITOR_KEY,
            "demo auditor",
            frozenset({Role.INSPECTOR}),
            None,
            frozenset({"audit:read"}),
        )
        for agency in dict.fromkeys(s.agency.code for s in config.sources):
            await store.ensure(
                demo_agency_key(agency),
                f"demo agency {agency}",
                frozenset({Role.AGENCY}),
                agency,
                frozenset({"pii:read"}),
            )
    finally:
        await store.close()


def start_postgres(data_dir: Path) -> tuple[str, Any]:
    """The demo's PostgreSQL DSN and, when embedded, the server handle to keep alive."""
    configured = os.environ.get(DEMO_DSN_VARIABLE)
    if configured:
        return configured, None
    try:
        from pgserver.postgres_server import get_server
    except ImportError as exc:
        raise DemoError(
            "the demo's embedded PostgreSQL is not installed: pip install 'complaint-graph[demo]'"
            f" (or set {DEMO_DSN_VARIABLE} to a PostgreSQL server's DSN)"
        ) from exc

    log.info("starting embedded PostgreSQL in %s", data_dir / "pgdata")
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri(), server


async def build_demo_data(dsn: str, provincial_path: Path, size: int) -> None:
    """Load both database agencies unless they already hold this size of this data version."""
    from samples import DATA_VERSION, damrongdhama, provincial
    from sources.sql._notify import install_triggers

    stamp = provincial_path.with_name("demo-data-version")
    wanted = f"{DATA_VERSION}:{size}"
    current = stamp.read_text() if stamp.exists() else None
    if current != wanted or await damrongdhama.case_count(dsn) != size:
        log.info("loading %d cases into the Damrongdhama Center database", size)
        await damrongdhama.create_and_load(dsn, count=size, drop_existing=True)
        await install_triggers(
            asyncpg_url(dsn), ["complaints", "complaint_status_log"], "complaint_graph"
        )
    if current != wanted or provincial.case_count(provincial_path) != size:
        log.info("building the provincial office database with %d cases", size)
        await asyncio.to_thread(
            provincial.create_and_load, provincial_path, count=size, overwrite=True
        )
    stamp.write_text(wanted)


def hold_gateway_port(host: str, port: int) -> socket.socket:
    """The gateway's socket, bound before anything slow starts: a port in use is reported at
    once, in one line, and the banner is never printed for someone else's server."""
    from gateway.workers import port_socket

    try:
        return port_socket(host, port, shared=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"port {port} is already in use on {host}: choose another with "
                f"PORT={port + 1} make demo (or complaint-graph demo --port {port + 1})"
            ) from None
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def port_is_free(port: int) -> bool:
    """Whether a loopback server could bind ``port`` now (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def agency_ports(requested: int | None) -> tuple[int | None, int | None]:
    """Ports for the two sample API agencies (``None``: any free one).

    Asked for explicitly (``--agency-port``, ``AGENCY_PORT=``), the pair must be free, or the
    demo stops with one line saying so. By default 8101 and 8102, or free ports when either is
    taken: nothing outside the demo process needs to know where its agencies listen.
    """
    if requested is not None:
        for port in (requested, requested + 1):
            if not port_is_free(port):
                raise DemoError(
                    f"agency port {port} is already in use: choose another pair with "
                    "AGENCY_PORT= (make demo) or --agency-port, or leave it out for free ports"
                )
        return requested, requested + 1
    if port_is_free(DEFAULT_AGENCY_PORT) and port_is_free(DEFAULT_AGENCY_PORT + 1):
        return DEFAULT_AGENCY_PORT, DEFAULT_AGENCY_PORT + 1
    log.info(
        "ports %d and %d are taken: the sample agencies listen on free ports",
        DEFAULT_AGENCY_PORT,
        DEFAULT_AGENCY_PORT + 1,
    )
    return None, None


def run_demo(
    *,
    host: str,
    port: int,
    agency_port: int | None,
    size: int,
    data_dir: str,
    trickle: bool = True,
    verbose: bool = False,
) -> None:
    """Build or reuse the demo data, start the two API agencies on loopback, serve the gateway.

    Raises :class:`DemoError` for what a user can fix (a port in use, pgserver missing)."""
    from gateway.app import create_app
    from samples import pmoc_1111, traffy
    from samples.serving import ThreadedServer
    from samples.trickle import Trickle

    held = hold_gateway_port(host, port)  # first: a taken port fails before the slow start
    pmoc_port, city_port = agency_ports(agency_port)
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # uvicorn re-raises the SIGTERM it shut down for; by default that kills the process before
    # any `finally` or atexit, leaving the agencies and the embedded PostgreSQL running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    dsn, server = start_postgres(directory)
    provincial_path = directory / "provincial-khon-kaen.sqlite"
    pmoc = ThreadedServer(pmoc_1111.create_app(count=size, api_key=DEMO_PMOC_KEY), pmoc_port)
    city = ThreadedServer(traffy.create_app(count=size, api_key=DEMO_TRAFFY_KEY), city_port)
    updates: Trickle | None = None
    try:
        try:
            asyncio.run(build_demo_data(dsn, provincial_path, size))
        except (OSError, asyncpg.PostgresError) as exc:
            where = DEMO_DSN_VARIABLE if server is None else "the embedded server"
            raise DemoError(f"cannot load the demo data into PostgreSQL ({where}): {exc}") from None
        try:
            pmoc.start()
            city.start()
        except RuntimeError as exc:  # the port went to another program since it was checked
            raise DemoError(f"{exc}: try again, or choose ports with AGENCY_PORT=") from None
        log.info("1111 service sample at %s, city platform (Open311) at %s", pmoc.url, city.url)
        config = demo_config(dsn, provincial_path, pmoc.url, city.url)
        config = with_demo_key_store(config, directory)
        asyncio.run(seed_demo_keys(config))
        if trickle:
            updates = Trickle(dsn, provincial_path)
            updates.start()  # a case moves on every few seconds: subscriptions have news
        # GraphiQL opens with the demo inspector's key in its headers: queries just work.
        inspector = {"Authorization": f"Bearer {DEMO_INSPECTOR_KEY}"}
        app = create_app(config, graphiql_headers=inspector)
        settings = uvicorn_config(app, host, held.getsockname()[1], verbose)
        _DemoServer(settings, app.state.shutdown).run(sockets=[held])
    finally:
        held.close()
        if updates is not None:
            updates.stop()
        pmoc.stop()
        city.stop()
        if server is not None:
            server.cleanup()  # stops the embedded PostgreSQL (its data stays for next time)


def uvicorn_config(app: Any, host: str, port: int, verbose: bool) -> uvicorn.Config:
    """uvicorn's settings for the demo gateway: its start-up lines and access log only with
    ``--verbose`` (the demo's agencies are polled every 2 s; each poll would be a line)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        access_log=verbose,
    )


def _banner(host: str, port: int) -> str:
    return f"\n  complaint-graph demo: open http://{host}:{port}/graphql\n"


class _DemoServer(GatewayServer):
    """The gateway's server, printing the demo's banner once it listens (not before: a banner
    for a server that then fails to start points at someone else's)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(_banner(self.config.host, self.config.port), flush=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
