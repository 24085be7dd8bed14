"""The gateway under callgrind, for ``python -m bench instructions`` (bench/instructions.py).

Run as a script from the version of the code being counted (``PYTHONPATH``): it imports only
that version's ``gateway``, so any commit can be counted by today's tool.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

READY, DONE = "complaint-graph-ready", "complaint-graph-done"
"""What it prints when warmed up and when done (bench/instructions.py waits for each)."""


def child(config: str, body: bytes, requests: int, go: Path) -> None:
    """Under callgrind: start the gateway, warm up, then on ``go`` send the requests."""
    import uvloop  # the event loop uvicorn serves with

    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.heap import settle_heap

    app = create_app(load_config(config))

    async def request() -> bytes:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[bytes] = []

        async def receive() -> Any:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never goes away
            raise AssertionError

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body":
                sent.append(message.get("body", b""))

        await app(scope, receive, send)
        return b"".join(sent)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(5):
                answer = json.loads(await request())
                assert "errors" not in answer, answer["errors"]
            settle_heap()  # as the server does once started
            print(READY, flush=True)
            _block_until(go, exists=True)  # counting is switched on meanwhile
            for _ in range(requests):
                await request()
            print(DONE, flush=True)
            _block_until(go, exists=False)  # ... and off

    uvloop.run(run())


def _block_until(go: Path, *, exists: bool) -> None:
    """Wait for the parent with the event loop stopped: nothing runs that would be counted."""
    while go.exists() != exists:
        time.sleep(0.05)


if __name__ == "__main__":
    config, body_file, requests, go = sys.argv[1:]
    child(config, Path(body_file).read_bytes(), int(requests), Path(go))
