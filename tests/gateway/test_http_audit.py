"""The GraphQL-over-HTTP audit suite (npm ``graphql-http``, ``serverAudits``) against a real server.

The gateway runs under uvicorn on a free loopback port over the demo fixtures; node runs
``tests/http-audit/audit.mjs`` (its ``graphql-http`` pinned by the committed lock file and
installed by ``make test``). Every audit must be ``ok``: a ``warn`` is a failure here too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.config import EventSettings
from samples.serving import ThreadedServer
from tests.conftest import DemoData

AUDIT_DIR = Path(__file__).resolve().parents[1] / "http-audit"


@pytest.fixture
def served_gateway(demo_data: DemoData) -> Iterator[ThreadedServer]:
    config = replace(demo_data.config, events=EventSettings(enabled=False))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    yield server
    server.stop()


def run_audits(url: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None, "node is needed for the GraphQL-over-HTTP audit (docs/contributors.md)"
    assert (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(), (
        "graphql-http is not installed: run `npm ci --prefix tests/http-audit` (make test does)"
    )
    finished = subprocess.run(
        [node, str(AUDIT_DIR / "audit.mjs"), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    results: list[dict[str, Any]] = json.loads(finished.stdout)
    return results


def test_every_graphql_over_http_audit_passes_without_warnings(
    served_gateway: ThreadedServer,
) -> None:
    results = run_audits(f"{served_gateway.url}/graphql")
    assert len(results) >= 60  # the whole suite ran, not an empty list
    failures = [
        f"{r['status'].upper()} {r['id']} {r['name']}: {r.get('reason')} "
        f"(HTTP {r.get('httpStatus')}, {r.get('contentType')}, {r.get('body')!r:.300})"
        for r in results
        if r["status"] != "ok"
    ]
    assert not failures, "\n".join(failures)
