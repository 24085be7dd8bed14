"""GraphiQL on a network with no internet: headless chromium, every host name but loopback
unresolvable, loads /graphql, whose scripts and styles the gateway serves itself; the query
typed into the editor runs with the key prefilled in the headers, and its answer is read from
the page. The vendored files are the ones strawberry's page pins (its SRI hashes), licensed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from strawberry.http.ides import get_graphql_ide_html

from gateway.app import create_app
from gateway.config import EventSettings
from gateway.demo import DEMO_INSPECTOR_KEY
from gateway.graphiql_assets import assets, offline, sri
from samples.serving import ThreadedServer
from tests.conftest import AccessWorld
from tests.gateway.devtools import OFFLINE, browser_page

INSPECTOR = {"Authorization": f"Bearer {DEMO_INSPECTOR_KEY}"}
QUERY = "query Offline { cases(first: 2) { totalCount edges { node { referenceNumber } } } }"


@pytest.fixture(scope="module")
def served(access_world: AccessWorld) -> Iterator[ThreadedServer]:
    """The access world's gateway (anonymous callers read no case) with GraphiQL's headers
    prefilled with the inspector's key, as the demo does."""
    config = replace(access_world.config, events=EventSettings(enabled=False))
    assert config.limits.graphiql
    server = ThreadedServer(create_app(config, graphiql_headers=INSPECTOR), lifespan=True)
    server.start()
    yield server
    server.stop()


def test_every_asset_of_the_page_is_vendored_as_pinned_with_its_licence() -> None:
    template = get_graphql_ide_html("graphiql")
    found = assets(template)
    assert {a.package for a in found} >= {
        "react",
        "react-dom",
        "graphiql",
        "@graphiql/plugin-explorer",
    }
    for asset in found:
        content = asset.local.read_bytes()
        assert sri(content, asset.integrity.split("-")[0]) == asset.integrity, asset
        assert (asset.local.parents[len(asset.path.split("/")) - 1] / "LICENSE").is_file()
    assert "unpkg.com" not in offline(template)


def test_the_page_has_no_address_outside_the_gateway(served: ThreadedServer) -> None:
    page = httpx.get(f"{served.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "https://" not in page.text.split("<script>")[0]  # every <script src> and <link>
    assert "GraphiQLPluginExplorer.explorerPlugin()" in page.text  # the explorer is on


async def test_graphiql_runs_a_query_from_its_editor_without_internet(
    served: ThreadedServer,
) -> None:
    async with browser_page(OFFLINE) as page:
        await page.command("Page.navigate", url=f"{served.url}/graphql")
        await page.until("!!document.querySelector('.graphiql-execute-button')")
        explorer = "[aria-label='Show GraphiQL Explorer']"  # the explorer plugin loaded
        await page.until(f"!!document.querySelector({json.dumps(explorer)})")
        editors = "[...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')]"
        tools = await page.evaluate(f"{editors}.map(e => e.CodeMirror.getValue())")
        assert any(DEMO_INSPECTOR_KEY in text for text in tools), tools  # headers prefilled
        editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
        await page.evaluate(f"{editor}.setValue({json.dumps(QUERY)})")
        # GraphiQL names the tab after the operation once it has parsed the edit: only then
        # does its run button send the new operation's name.
        active = "document.querySelector('.graphiql-tab-active .graphiql-tab-button')"
        await page.until(f"{active}.textContent.trim() === 'Offline'")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        response = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror"
        text = await page.until(
            f"{response}.getValue().includes('\"data\"') && {response}.getValue()"
        )
        tabs = await page.evaluate(
            "[...document.querySelectorAll('.graphiql-tab-button')].map(t => t.textContent)"
        )
    shown = json.loads(text)
    async with httpx.AsyncClient(base_url=served.url) as client:
        direct = (await client.post("/graphql", json={"query": QUERY}, headers=INSPECTOR)).json()
    assert shown == direct  # the key from the prefilled headers: an anonymous caller sees no case
    assert direct["data"]["cases"]["totalCount"] > 0
    assert any("CaseTrail" in tab for tab in tabs)  # the saved examples are its tabs
    outside = [u for u in page.requested if not u.startswith((served.url, "data:"))]
    assert page.requested and not outside, outside  # GraphiQL's fonts are inlined data: URLs
