"""``complaint-graph``: serve the graph, check a configuration, print the schema, run the demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import warnings
from collections.abc import Sequence

from gateway.audit_cli import add_audit_parser, run_audit
from gateway.auth._cli import add_keys_parser, run_keys
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.demo import DEMO_SIZE
from gateway.logs import configure_logging
from sources import Problem, Source, SourceError, source_class


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="complaint-graph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", required=True, help="YAML configuration file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (uvicorn), e.g. one per core; each is a gateway",
    )

    check = commands.add_parser("check", help="connect to every source and check its mapping")
    check.add_argument("--config", required=True)

    schema = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.add_argument(
        "--subgraph",
        action="store_true",
        help="the Apollo Federation v2 subgraph SDL (@link, @key), as _service { sdl } gives it",
    )
    add_keys_parser(commands)
    add_audit_parser(commands)

    sources = commands.add_parser("sources", help="work on one source's backend")
    source_commands = sources.add_subparsers(dest="source_command", required=True)
    triggers = source_commands.add_parser(
        "install-triggers", help="add NOTIFY triggers to a PostgreSQL agency database"
    )
    triggers.add_argument("source", help="the source id")
    triggers.add_argument("--config", required=True)

    demo = commands.add_parser("demo", help="build the demo agencies and serve them")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--agency-port",
        type=int,
        default=None,
        help="port of the 1111 sample API, the city platform on the next one (default 8101, "
        "or free ports when 8101 or 8102 is taken)",
    )
    demo.add_argument("--size", type=int, default=DEMO_SIZE, help="cases per demo agency")
    demo.add_argument("--data-dir", default=".demo", help="where demo databases are kept")
    demo.add_argument(
        "--no-trickle", action="store_true", help="no steady updates to the demo agencies"
    )
    demo.add_argument(
        "--verbose",
        action="store_true",
        help="log everything: PostgreSQL's initdb, uvicorn's access log, each poll of an agency",
    )

    args = parser.parse_args(argv)
    if args.command == "demo" and not args.verbose:
        _quiet_demo_logging()
    else:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    try:
        if args.command == "schema":
            from resolvers import schema_sdl
            from resolvers.federation import subgraph_sdl

            sys.stdout.write(subgraph_sdl() if args.subgraph else schema_sdl())
            return 0
        if args.command == "keys":
            return run_keys(args, load_config(args.config).auth.key_store)
        if args.command == "audit":
            auth = load_config(args.config).auth
            return run_audit(args, auth.personal_data.audit_store or auth.key_store)
        if args.command == "check":
            return asyncio.run(_check(load_config(args.config)))
        if args.command == "sources":
            return asyncio.run(_install_triggers(load_config(args.config), args.source))
        if args.command == "serve":
            config = load_config(args.config)
            configure_logging(config.observability)
            if args.workers > 1:
                return _serve_workers(args.config, args.host, args.port, args.workers)
            _serve(config, args.host, args.port)
            return 0
        return _demo(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    """``demo``: what a user can fix (a port in use) is one line on stderr and exit 1."""
    from gateway.demo import DemoError, run_demo

    try:
        run_demo(
            host=args.host,
            port=args.port,
            agency_port=args.agency_port,
            size=args.size,
            data_dir=args.data_dir,
            trickle=not args.no_trickle,
            verbose=args.verbose,
        )
    except DemoError as exc:
        print(f"complaint-graph demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _quiet_demo_logging() -> None:
    """The demo's own progress lines and every warning; not the INFO chatter of its parts
    (pgserver's initdb output, httpx's line per request, a poll of an agency every 2 s)."""
    # pgserver asks platformdirs for a runtime directory, which warns when XDG_RUNTIME_DIR is
    # unset (containers, CI shells) and falls back to /tmp: nothing for a demo user to do.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"platformdirs(\.|$)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress = logging.getLogger("complaint_graph.demo")
    progress.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("  %(message)s"))
    progress.addHandler(handler)
    progress.propagate = False


def _serve(config: GatewayConfig, host: str, port: int) -> None:
    """One process, stopping gracefully (gateway/shutdown.py); uvicorn's own log configuration
    and access lines are off, so every line is the JSON (or text) of ``observability``."""
    import uvicorn

    from gateway.app import create_app
    from gateway.shutdown import GatewayServer

    app = create_app(config)
    server = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    GatewayServer(server, app.state.shutdown).run()


def _serve_workers(config_path: str, host: str, port: int, workers: int) -> int:
    """uvicorn's supervisor: ``workers`` processes, each building its gateway from the file
    named in COMPLAINT_GRAPH_CONFIG (sources, pools and event watchers are per process), each
    listening on a socket of its own (gateway/workers.py)."""
    import os
    from pathlib import Path

    import uvicorn

    from gateway.app import CONFIG_VARIABLE
    from gateway.workers import hold_port, serve_workers

    os.environ[CONFIG_VARIABLE] = str(Path(config_path).resolve())
    config = uvicorn.Config(
        "gateway.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # each worker logs through gateway.logs, as configured in the file
        access_log=False,  # our own access lines carry request ids and operation names
        # A worker imports the schema and opens every source before it answers the supervisor's
        # ping; on a busy host that takes longer than uvicorn's 5 s, which then kills and
        # restarts it, forever.
        timeout_worker_healthcheck=60,
    )
    try:
        held = hold_port(config)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # graceful in every worker, as in one process (gateway/shutdown.py)
    return 0 if serve_workers(config, held) else 1


async def _check(config: GatewayConfig) -> int:
    sources: list[Source] = [source_class(s.kind)(s) for s in config.sources]
    try:
        results = await asyncio.gather(*(source.check() for source in sources))
    finally:
        await asyncio.gather(*(source.close() for source in sources))
    problems = [problem for found in results for problem in found]
    print(format_problems(problems, [source.id for source in sources]))
    return 1 if problems else 0


async def _install_triggers(config: GatewayConfig, source_id: str) -> int:
    """Triggers so the source's database NOTIFYs the gateway of every change it commits."""
    from sources.sql import SqlSource

    found = [s for s in config.sources if s.id == source_id]
    if not found:
        print(f"no source {source_id!r}; sources: {', '.join(s.id for s in config.sources)}")
        return 2
    source = source_class(found[0].kind)(found[0])
    if not isinstance(source, SqlSource):
        print(f"{source_id}: only PostgreSQL (kind: sql) sources take triggers")
        return 2
    try:
        tables = await source.install_triggers()
    except SourceError as exc:
        print(exc)
        return 1
    finally:
        await source.close()
    print(f"{source_id}: NOTIFY triggers on {', '.join(tables)}")
    return 0


def format_problems(problems: list[Problem], source_ids: list[str]) -> str:
    """A plain-text table: one row per problem, or one 'ok' line per source when all is well."""
    if not problems:
        return "\n".join(f"{source_id}: ok" for source_id in source_ids)
    header = ("source", "key", "problem", "fix")
    rows = [header] + [(p.source, p.key, p.problem, p.fix) for p in problems]
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(3)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
