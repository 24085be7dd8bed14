"""/dashboard with access control: the key field is sent as a bearer token; refusals are shown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.auth import AuthSettings, KeyStore
from resolvers.access import Role
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.browser import dump_dom
from tests.gateway.test_dashboard import PERIOD, Page, case_stats, serve


@pytest.fixture
def closed_gateway(demo_data: DemoData, tmp_path: Path) -> Iterator[tuple[ThreadedServer, str]]:
    """The gateway with its default access rule (no key, no data) and one analyst key."""
    store = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}"

    async def seed() -> None:
        keys = KeyStore(store)
        try:
            await keys.ensure("test-analyst-key", "dashboard test", frozenset({Role.ANALYST}))
        finally:
            await keys.close()

    asyncio.run(seed())
    server = serve(replace(demo_data.config, auth=AuthSettings(key_store=store)))
    yield server, "test-analyst-key"
    server.stop()


def test_page_shows_graphql_errors_and_sends_the_stored_key(
    closed_gateway: tuple[ThreadedServer, str], tmp_path: Path
) -> None:
    server, key = closed_gateway
    profile = tmp_path / "profile"
    refused = Page(dump_dom(f"{server.url}/dashboard?{PERIOD}", profile))
    assert refused.body["data-state"] == "error"
    assert any("UNAUTHENTICATED" in error for error in refused.errors), refused.errors

    # The key arrives in the fragment once, is stored, and is sent on every later visit.
    Page(dump_dom(f"{server.url}/dashboard?{PERIOD}#key={key}", profile))
    allowed = Page(dump_dom(f"{server.url}/dashboard?{PERIOD}", profile))
    assert allowed.body["data-state"] == "ready", allowed.errors
    expected = case_stats(server, "PROVINCE", key)
    assert int(allowed.body["data-total"]) == expected["total"]["count"]
