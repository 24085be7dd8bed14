"""``complaint-graph serve`` freezes its started heap and collects young garbage in batches."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import DemoData
from tests.gateway.test_subscription_shutdown import ServeProcess
from tests.gateway.test_subscriptions import config_yaml
from tests.resolvers.expected import POSTGRES_SOURCE

PAGE = """{ cases(first: 100) { edges { node {
  id referenceNumber title status receivedAt category { code } timeline { at status } } } } }"""


def collections(metrics: str, generation: int) -> float:
    pattern = rf'^python_gc_collections_total\{{generation="{generation}"\}} (\S+)$'
    found = re.search(pattern, metrics, re.M)
    assert found is not None, metrics[:2000]
    return float(found.group(1))


async def test_serve_collects_young_garbage_in_batches_not_every_700_allocations(
    demo_data: DemoData, tmp_path: Path
) -> None:
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(demo_data, pg), encoding="utf-8")
    served = ServeProcess(config, tmp_path / "serve.log")
    try:
        await served.up()
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            before = (await client.get("/metrics")).text
            for _ in range(20):
                body = (await client.post("/graphql", json={"query": PAGE})).json()
                assert "errors" not in body and len(body["data"]["cases"]["edges"]) == 100
            after = (await client.get("/metrics")).text
    finally:
        served.process.terminate()
        await served.exited()
    young = collections(after, 0) - collections(before, 0)
    # A page allocates well over 700 containers per young collection CPython does by default
    # (it made dozens of collections per request); batched, 20 pages take a handful.
    assert young <= 20, young
    assert collections(after, 2) - collections(before, 2) == 0
