"""Sample agencies as processes of their own, so a test can pause (SIGSTOP), resume, kill and
restart them as an operator's agency would misbehave: not threads the test could not stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

from samples.serving import free_port

_RUN = """
import sys, uvicorn
from samples import {module}
app = {module}.create_app(seed=int(sys.argv[2]), count=int(sys.argv[3]){key})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="off")
"""


class AgencyProcess:
    """``samples.<module>.create_app`` under uvicorn in a child process on a fixed port (kept
    across restarts, so the gateway's configuration keeps pointing at it)."""

    def __init__(
        self, module: str, seed: int, count: int, api_key: str | None = None, probe: str = "/"
    ) -> None:
        self.module = module
        self.seed = seed
        self.count = count
        self.api_key = api_key
        self.probe = probe
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        key = f", api_key={self.api_key!r}" if self.api_key is not None else ""
        code = _RUN.format(module=self.module, key=key)
        argv = [sys.executable, "-c", code, str(self.port), str(self.seed), str(self.count)]
        self.process = subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.paused = False
        deadline = time.monotonic() + timeout
        while True:  # a condition with a deadline: the server answers
            if self.process.poll() is not None:
                raise RuntimeError(f"sample {self.module} exited with {self.process.returncode}")
            try:
                httpx.get(self.url + self.probe, timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sample {self.module} did not start") from None
                time.sleep(0.02)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        if self.process is not None:
            if self.paused:
                self.resume()
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        self.kill()

    async def restart(self) -> None:
        await asyncio.to_thread(self.kill)
        await asyncio.to_thread(self.start)
