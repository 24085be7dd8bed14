"""Headless chromium driven over the DevTools protocol, for pages a test must act on (type in an
editor, press a button), not only load: tests/gateway/browser.py starts the same Debian chromium.

Every wait is for a condition in the page, read with ``Runtime.evaluate`` and bounded by a
deadline; the network can be cut off (``offline``) so that only loopback answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.gateway.browser import WINDOW, chromium

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Every host name but 127.0.0.1 fails to resolve: the page has no internet."""


class Page:
    """One page over its DevTools WebSocket: commands, and the URLs of the requests it made."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.requested: list[str] = []
        self.failed: list[str] = []

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self.ids)
        await self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            self.requested.append(params["request"]["url"])
        elif message.get("method") == "Network.loadingFailed":
            self.failed.append(params.get("errorText", ""))

    async def evaluate(self, expression: str) -> Any:
        answer = await self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def until(self, expression: str, seconds: float = 60) -> Any:
        """The value of ``expression`` once it is truthy (polled, within ``seconds``)."""
        value = None
        try:
            async with asyncio.timeout(seconds):
                while True:
                    value = await self.evaluate(expression)
                    if value:
                        return value
                    await asyncio.sleep(0.1)  # polling the page for a condition, with a deadline
        except TimeoutError:
            raise AssertionError(
                f"not within {seconds} s: {expression} (last: {value!r})"
            ) from None


@contextlib.asynccontextmanager
async def browser_page(*flags: str) -> AsyncIterator[Page]:
    """A fresh headless chromium (its own profile) and its one page, network events on."""
    # Chromium's helper processes may still be writing to the profile as it is removed.
    with tempfile.TemporaryDirectory(
        prefix="complaint-graph-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = await asyncio.create_subprocess_exec(
            *[
                chromium(),
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--remote-debugging-port=0",
                *flags,
                "about:blank",
            ],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers are ended with it
        )
        try:
            port = await _devtools_port(Path(profile), process)
            async with httpx.AsyncClient() as client:
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
            (page,) = [t for t in targets if t["type"] == "page"]
            async with connect(page["webSocketDebuggerUrl"], max_size=None) as socket:
                opened = Page(socket)
                await opened.command("Network.enable")
                await opened.command("Page.enable")
                yield opened
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # any helper that outlived it


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port chromium chose, from the DevToolsActivePort file it writes once listening."""
    marker = profile / "DevToolsActivePort"
    async with asyncio.timeout(60):
        while not (marker.exists() and marker.read_text().strip()):
            assert process.returncode is None, "chromium exited at start"
            await asyncio.sleep(0.05)  # waiting for chromium's file, with a deadline
    return int(marker.read_text().splitlines()[0])
