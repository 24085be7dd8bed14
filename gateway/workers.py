"""``serve --workers N``: uvicorn's supervisor, with a listening socket of its own per worker.

uvicorn's workers share one listening socket, and whichever worker's event loop wakes first
accepts: asyncio accepts up to its backlog of connections per wake-up, so an idle worker can
take every connection a client opens at once. A load balancer or a load generator with ten
keep-alive connections then leaves the other workers idle for as long as those connections
last (the likely cause of a bench round served at one worker's rate, bench/README.md). On
Linux each worker here listens on a socket of its own, bound to the same port with
``SO_REUSEPORT``, and the kernel spreads new connections over them by a hash of their
addresses, whoever is awake. The supervisor holds the port with a bound socket that never
listens (:func:`hold_port`). Elsewhere the workers share the supervisor's socket, as in
uvicorn.

What the kernel's spreading costs: each worker gets its share of new connections whatever
its state. A worker whose event loop is stuck keeps receiving its share until the supervisor's
health check (60 s, gateway/cli.py) replaces it; a worker that stops or dies loses the
connections still waiting in its own queue (they are reset, not moved to the others; Linux
5.14 and later can move them with ``net.ipv4.tcp_migrate_req=1``). A replacement binds a new
socket. With one shared socket the other workers would have taken those connections.
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Process

from gateway.shutdown import GatewayServer

log = logging.getLogger("complaint_graph.workers")

SPREADS_CONNECTIONS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
"""Whether the kernel balances connections over sockets sharing a port (Linux 3.9 and later;
BSD and macOS accept the option without balancing)."""


def port_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to ``host:port``, not yet listening; with ``shared``, one that other
    sockets with ``SO_REUSEPORT`` may bind beside."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class GatewayWorker(Process):
    """One of ``serve --workers N``'s processes: :class:`~gateway.shutdown.GatewayServer`
    where uvicorn would run its plain server (so workers too close subscriptions with 1001 and
    end SSE streams), listening on a socket of its own where the kernel spreads connections."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GatewayServer(self.config)
        return self._server

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        if SPREADS_CONNECTIONS:
            for held in sockets or ():
                held.close()  # the supervisor's, which never listens: this worker has its own
            try:
                sockets = [port_socket(self.config.host, self.config.port, shared=True)]
            except OSError as exc:  # the port went to another user's socket: no restarts
                log.error("worker cannot listen on port %d: %s", self.config.port, exc)
                sys.exit(STARTUP_FAILURE)
        super().target(sockets)


def hold_port(config: uvicorn.Config) -> socket.socket:
    """The supervisor's socket on ``config``'s port, bound and never listening, so that a port
    in use fails here, at once, and port 0 is chosen once for every worker (``config.port`` is
    set to it). It is bound without ``SO_REUSEPORT``: a gateway already listening on the port
    with that option (an old one still running, say) makes this fail, instead of the two
    quietly sharing its connections. Raises ``OSError``."""
    held = port_socket(config.host, config.port, shared=False)
    config.port = held.getsockname()[1]
    return held


def serve_workers(config: uvicorn.Config, held: socket.socket) -> bool:
    """uvicorn's multi-process supervisor with :class:`GatewayWorker` processes, on the port
    of ``held`` (:func:`hold_port`). Returns False when a worker failed to start (the app, its
    configuration or the port), which stops them all.

    The supervisor makes its processes by the module-level name ``Process``; it is pointed at
    ours for this (CLI) process only. Workers start by spawn, unpickling ``GatewayWorker`` by
    its import path and ``config`` with the port the supervisor holds, so the change needs no
    state in them.
    """
    log.info(
        "serving http://%s:%d with %d workers (%s)",
        config.host,
        config.port,
        config.workers,
        "a listening socket each" if SPREADS_CONNECTIONS else "one shared listening socket",
    )
    multiprocess.Process = GatewayWorker  # type: ignore[misc]
    supervisor = multiprocess.Multiprocess(config, sockets=[held])
    supervisor.run()
    return not any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
