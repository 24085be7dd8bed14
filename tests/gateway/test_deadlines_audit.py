"""A reveal waits for the audit store's lock only as long as its request has (issue 19).

The store's own wait (``audit_wait_seconds``, 10 s by default) is longer than a short request
deadline: a store locked for longer than the request has used to end the request at its hard
stop (REQUEST_TIMEOUT, no data at all) instead of refusing the reveal and answering the rest.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from tests.conftest import AccessWorld
from tests.gateway.test_audit import named_case
from tests.gateway.test_audit_store import INSPECTOR, REVEAL, gateway_with_store, outside_writer

DEADLINE = 2.0


async def test_a_reveal_is_refused_within_the_deadline_while_the_store_is_locked(
    access_world: AccessWorld, tmp_path: Path
) -> None:
    limits = access_world.config.limits.model_copy(
        update={"timeout_seconds": DEADLINE, "rate_limit": None}
    )
    world = replace(access_world, config=replace(access_world.config, limits=limits))
    path = tmp_path / "audit.sqlite"
    keys = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"
    release = threading.Event()
    async for gateway in gateway_with_store(world, keys, audit_store=f"sqlite+aiosqlite:///{path}"):
        case = named_case()
        first = await gateway.client.post(
            "/graphql", json={"query": REVEAL % case}, headers=INSPECTOR
        )
        assert "errors" not in first.json(), first.text  # the store is open
        with outside_writer(path, release):
            started = time.monotonic()
            response = await gateway.client.post(
                "/graphql", json={"query": REVEAL % case}, headers=INSPECTOR
            )
            took = time.monotonic() - started
        again = await gateway.client.post(
            "/graphql", json={"query": REVEAL % case}, headers=INSPECTOR
        )
    assert took < DEADLINE + 0.5, took
    body = response.json()
    assert body["data"]["case"]["title"]
    assert body["data"]["case"]["complainant"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert "within the request's 2 s" in error["message"]
    assert "errors" not in again.json(), again.text  # the lock gone, reveals are back
