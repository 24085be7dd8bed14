"""``serve --workers N``: uvicorn's supervisor, with a listening socket of its own per worker.

uvicorn's workers share one listening socket, and whichever worker's event loop wakes first
accepts: asyncio accepts up to its backlog of connections per wake-up, so an idle worker can
take every connection a client opens at once. A load balancer or a load generator with ten
keep-alive connections then leaves the other workers idle for as long as those connections
last (seen in bench/: two of fifteen ``wrk`` runs had all ten on one of two workers, at one
worker's throughput). On Linux each worker here listens on a socket of its own, bound to the
same port with ``SO_REUSEPORT``, and the kernel spreads new connections over them by a hash of
their addresses, whoever is awake. The supervisor holds the port with a bound socket that
never listens (so a port in use fails at once, and port 0 is chosen once for every worker).
Elsewhere the workers share the supervisor's socket, as in uvicorn.

A worker that dies loses the connections waiting in its own queue (the kernel does not move
them to the others); its replacement binds a new socket.
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


def serve_workers(config: uvicorn.Config) -> None:
    """uvicorn's multi-process supervisor with :class:`GatewayWorker` processes.

    The supervisor makes its processes by the module-level name ``Process``; it is pointed at
    ours for this (CLI) process only. Workers start by spawn, unpickling ``GatewayWorker`` by
    its import path and ``config`` with the port the supervisor holds, so the change needs no
    state in them. Raises ``OSError`` when the port cannot be bound (in use, say).
    """
    held = port_socket(config.host, config.port, shared=SPREADS_CONNECTIONS)
    config.port = held.getsockname()[1]  # port 0 chosen once, for every worker
    log.info(
        "serving http://%s:%d with %d workers (%s)",
        config.host,
        config.port,
        config.workers,
        "a listening socket each" if SPREADS_CONNECTIONS else "one shared listening socket",
    )
    multiprocess.Process = GatewayWorker  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[held]).run()
