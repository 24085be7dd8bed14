"""Limits on callers: trusted documents only, and rate limits per key or address with 429."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import ConfigError, parse_config
from gateway.ratelimit import RateLimitSettings
from gateway.trusted_documents import TrustedDocumentSettings
from tests.conftest import DemoData
from tests.gateway.test_limits import _KeyedContext, serving, with_limits

REDIS_URL = os.environ.get("COMPLAINT_GRAPH_TEST_REDIS", "redis://127.0.0.1:6379/0")
RESPONSE_JSON = "application/graphql-response+json"

AGENCIES = "query Agencies { agencies { code } }"
CATEGORIES = "query Categories { categories { code } }"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """Relay-style: ids to documents."""
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({f"sha256:{sha256(AGENCIES)}": AGENCIES}), encoding="utf-8")
    return path


def trusted(manifest: Path, required_for: str = "everyone") -> TrustedDocumentSettings:
    return TrustedDocumentSettings(manifest=str(manifest), required_for=required_for)  # type: ignore[arg-type]


async def test_registered_documents_run_by_id_hash_or_text(
    demo_data: DemoData, manifest: Path
) -> None:
    config = with_limits(demo_data.config, trusted_documents=trusted(manifest))
    async with serving(config) as gateway:
        post = client = gateway.client
        by_id = await post.post("/graphql", json={"documentId": f"sha256:{sha256(AGENCIES)}"})
        apq = {"persistedQuery": {"version": 1, "sha256Hash": sha256(AGENCIES)}}
        by_hash = await client.post("/graphql", json={"extensions": apq})
        by_get = await client.get("/graphql", params={"documentId": f"sha256:{sha256(AGENCIES)}"})
        by_text = await client.post("/graphql", json={"query": AGENCIES})
    for response in (by_id, by_hash, by_get, by_text):
        assert response.status_code == 200, response.text
        assert response.json()["data"]["agencies"], response.text


async def test_unknown_id_is_persisted_query_not_found(demo_data: DemoData, manifest: Path) -> None:
    config = with_limits(demo_data.config, trusted_documents=trusted(manifest))
    unknown = f"sha256:{sha256(CATEGORIES)}"
    async with serving(config) as gateway:
        plain = await gateway.client.post("/graphql", json={"documentId": unknown})
        strict = await gateway.client.post(
            "/graphql", json={"documentId": unknown}, headers={"accept": RESPONSE_JSON}
        )
        get = await gateway.client.get(
            "/graphql",
            params={"extensions": json.dumps({"persistedQuery": {"sha256Hash": "00" * 32}})},
        )
    assert plain.status_code == 200 and strict.status_code == 400
    for response in (plain, strict, get):
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert "data" not in response.json()


async def test_unregistered_document_is_refused_without_schema_hints(
    demo_data: DemoData, manifest: Path
) -> None:
    config = with_limits(demo_data.config, trusted_documents=trusted(manifest))
    async with serving(config) as gateway:
        body = (
            await gateway.client.post("/graphql", json={"query": "{ agencis { code } }"})
        ).json()
        other = (await gateway.client.post("/graphql", json={"query": CATEGORIES})).json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    assert error["extensions"]["hash"] == f"sha256:{sha256('{ agencis { code } }')}"
    assert "agencies" not in json.dumps(body)  # no "did you mean" for an untrusted document
    assert other["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"


async def test_trusted_documents_for_anonymous_only_let_keys_send_any_document(
    demo_data: DemoData, manifest: Path
) -> None:
    from resolvers import Context, build_schema

    config = with_limits(demo_data.config, trusted_documents=trusted(manifest, "anonymous"))
    async with serving(config) as gateway:
        parts = gateway.gateway
        context = Context.for_request(parts.federation, parts.directory, parts.limits)
        keyed = await build_schema().execute(
            "{ __typename }", context_value=_KeyedContext(context, True)
        )
        anonymous = await build_schema().execute(
            "{ __typename }", context_value=_KeyedContext(context, False)
        )
    assert keyed.errors is None and keyed.data == {"__typename": "Query"}
    assert anonymous.errors and anonymous.errors[0].extensions["code"] == "DOCUMENT_NOT_TRUSTED"


def test_apollo_manifest_is_read_and_every_hash_checked(tmp_path: Path) -> None:
    apollo = tmp_path / "apollo.json"
    operations = [{"id": sha256(AGENCIES), "body": AGENCIES, "name": "Agencies", "type": "query"}]
    apollo.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
        )
    )
    assert trusted(apollo).documents() == {sha256(AGENCIES): AGENCIES}
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({sha256(CATEGORIES): AGENCIES}))
    text = (
        "categories: [{code: X, name_th: x, name_en: x}]\n"
        f"limits: {{trusted_documents: {{manifest: {wrong}}}}}\nsources: []"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, {})
    assert any(
        "limits.trusted_documents" in p and "not the SHA-256" in p for p in raised.value.problems
    ), raised.value.problems


# -- rate limits --------------------------------------------------------------------------------


def limited(config: Any, rate: str, storage: str = "memory://", prefix: str = "cg") -> Any:
    return with_limits(
        config, rate_limit=RateLimitSettings(rate=rate, storage=storage, prefix=prefix)
    )


async def test_rate_limit_is_429_with_retry_after_per_key(demo_data: DemoData) -> None:
    async with serving(limited(demo_data.config, "3/minute")) as gateway:
        key_a = {"authorization": "Bearer key-a"}
        answers = [
            (await gateway.client.post("/graphql", json={"query": "{ __typename }"}, headers=key_a))
            for _ in range(4)
        ]
        other_key = await gateway.client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"authorization": "Bearer key-b"}
        )
        health = await gateway.client.get("/healthz")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["limit"] == "3 per 1 minute"
    assert other_key.status_code == 200
    assert health.status_code == 200


async def test_rate_limit_without_a_key_is_per_client_address(demo_data: DemoData) -> None:
    async with serving(limited(demo_data.config, "2/hour")) as gateway:
        first = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway.app, client=("192.0.2.1", 5000)),
            base_url="http://gateway",
        )
        second = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway.app, client=("192.0.2.2", 5000)),
            base_url="http://gateway",
        )
        async with first, second:
            statuses = [
                (await first.get("/graphql?query={__typename}")).status_code for _ in range(3)
            ]
            other = await second.get("/graphql?query={__typename}")
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def test_rate_limit_in_redis_is_shared_by_replicas(demo_data: DemoData) -> None:
    config = limited(demo_data.config, "2/minute", REDIS_URL, f"cg-test-{uuid.uuid4().hex}")
    key = {"authorization": "Bearer shared-key"}
    async with serving(config) as one, serving(config) as two:
        first = await one.client.post("/graphql", json={"query": "{ __typename }"}, headers=key)
        second = await two.client.post("/graphql", json={"query": "{ __typename }"}, headers=key)
        third = await one.client.post("/graphql", json={"query": "{ __typename }"}, headers=key)
        fourth = await two.client.post("/graphql", json={"query": "{ __typename }"}, headers=key)
    assert [r.status_code for r in (first, second, third, fourth)] == [200, 200, 429, 429]
    assert int(fourth.headers["retry-after"]) >= 1


async def test_unreachable_rate_limit_storage_lets_requests_through(demo_data: DemoData) -> None:
    config = limited(demo_data.config, "1/minute", "redis://127.0.0.1:1/0")
    async with serving(config) as gateway:
        answers = [await gateway.client.get("/graphql?query={__typename}") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]


def test_rate_string_is_checked_when_configuration_is_read() -> None:
    text = (
        "categories: [{code: X, name_th: x, name_en: x}]\n"
        "limits: {rate_limit: {rate: 'lots per minute'}}\nsources: []"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, {})
    assert any("limits.rate_limit.rate" in p for p in raised.value.problems)


# -- with a real API key -------------------------------------------------------------------------


async def api_key(config: Any) -> str:
    """A fresh inspector key in the test gateway's own key store."""
    from gateway.auth._keys import KeyStore
    from resolvers.access import Role

    store = KeyStore(config.auth.key_store)
    try:
        _, secret = await store.create(
            f"limits-{uuid.uuid4().hex[:8]}", frozenset({Role.INSPECTOR})
        )
    finally:
        await store.close()
    return secret


async def test_key_only_introspection_over_http(demo_data: DemoData) -> None:
    config = with_limits(demo_data.config, introspection="key-only")
    secret = await api_key(config)
    document = {"query": "{ __schema { queryType { name } } }"}
    async with serving(config) as gateway:
        anonymous = await gateway.client.post("/graphql", json=document)
        keyed = await gateway.client.post(
            "/graphql", json=document, headers={"authorization": f"Bearer {secret}"}
        )
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert keyed.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_trusted_documents_for_anonymous_callers_over_http(
    demo_data: DemoData, manifest: Path
) -> None:
    config = with_limits(demo_data.config, trusted_documents=trusted(manifest, "anonymous"))
    secret = await api_key(config)
    async with serving(config) as gateway:
        anonymous = await gateway.client.post("/graphql", json={"query": CATEGORIES})
        registered = await gateway.client.post("/graphql", json={"query": AGENCIES})
        keyed = await gateway.client.post(
            "/graphql", json={"query": CATEGORIES}, headers={"authorization": f"Bearer {secret}"}
        )
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    assert registered.json()["data"]["agencies"]
    assert keyed.json()["data"]["categories"]


async def test_rate_limit_refuses_websocket_handshakes_too(demo_data: DemoData) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from gateway.app import create_app
    from gateway.config import EventSettings
    from samples.serving import ThreadedServer

    config = replace(limited(demo_data.config, "1/hour"), events=EventSettings(enabled=False))
    server = ThreadedServer(create_app(config), lifespan=True)
    server.start()
    url = server.url.replace("http://", "ws://") + "/graphql"
    try:
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send('{"type": "connection_init"}')
            assert "connection_ack" in str(await ws.recv())
        try:
            async with connect(url, subprotocols=["graphql-transport-ws"]):  # type: ignore[list-item]
                refused = None
        except InvalidStatus as exc:
            refused = exc.response.status_code
    finally:
        server.stop()
    assert refused == 403


GUESSES = {
    "field": "{ cases(first: 1) { edges { node { titel } } } }",
    "argument": "{ cases(frist: 1) { totalCount } }",
    "enum value": "{ cases(first: 1, filter: {status: [RESOLVD]}) { totalCount } }",
    "type": "query($f: CaseFilterInpt) { cases(first: 1, filter: $f) { totalCount } }",
}
"""Near misses of the schema's names: each one's error would suggest the real name."""

GUESSED_VARIABLE = (
    "query($s: [CaseStatus!]) { cases(first: 1, filter: {status: $s}) { totalCount } }",
    {"s": ["RESOLVD"]},
)


async def test_key_only_hides_suggestions_from_callers_who_may_not_introspect(
    demo_data: DemoData,
) -> None:
    """OWASP's GraphQL sheet: suggestions rebuild a hidden schema one guess at a time. The
    suite's anonymous callers have a role, so a valid document reaches variable coercion too."""
    config = with_limits(demo_data.config, introspection="key-only")
    secret = await api_key(config)
    keyed = {"authorization": f"Bearer {secret}"}
    bodies = [{"query": document} for document in GUESSES.values()]
    bodies.append({"query": GUESSED_VARIABLE[0], "variables": GUESSED_VARIABLE[1]})
    async with serving(config) as gateway:
        for body in bodies:
            anonymous = (await gateway.client.post("/graphql", json=body)).json()
            with_key = (await gateway.client.post("/graphql", json=body, headers=keyed)).json()
            hidden = [error["message"] for error in anonymous["errors"]]
            shown = [error["message"] for error in with_key["errors"]]
            assert hidden and not any("Did you mean" in m for m in hidden), (body, hidden)
            assert any("Did you mean" in m for m in shown), (body, shown)
            assert all(e["extensions"]["code"] for e in anonymous["errors"])
