"""Who is calling: API keys (hashed, created and revoked by the CLI), OIDC tokens checked against
a real JWKS on loopback, anonymous callers, and credentials on WebSockets and SSE."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.auth import AuthSettings, KeyStore, OidcSettings
from gateway.cli import main
from gateway.demo import demo_agency_key
from resolvers.access import Role
from samples.serving import ThreadedServer
from tests.conftest import AccessWorld, RunningGateway, running, serving
from tests.gateway.test_cli import write_demo_config
from tests.postgres import create_database, drop_database, sqlalchemy_url

COUNT = "{ cases(first: 0) { totalCount } }"


async def ask(
    gateway: RunningGateway, document: str, authorization: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": authorization} if authorization else {}
    response = await gateway.client.post("/graphql", json={"query": document}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


def code_of(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


# -- anonymous ---------------------------------------------------------------------------------


async def test_anonymous_callers_get_introspection_and_typename_only(
    closed_gateway: RunningGateway,
) -> None:
    schema = await ask(closed_gateway, "{ __schema { queryType { name } } __typename }")
    assert schema["data"] == {"__schema": {"queryType": {"name": "Query"}}, "__typename": "Query"}
    for document in (
        COUNT,
        "{ agencies { code } }",
        "{ __typename sources { id } }",
        "query { ...Sneaky } fragment Sneaky on Query { cases { totalCount } }",
        "query { ... on Query { categories { code } } }",
    ):
        body = await ask(closed_gateway, document)
        assert body.get("data") is None, document
        assert code_of(body) == "UNAUTHENTICATED", document
        assert "Authorization: Bearer" in body["errors"][0]["message"]


async def test_graphiql_and_its_schema_load_without_a_key(closed_gateway: RunningGateway) -> None:
    """GraphiQL stays usable in the demo: the page, and the introspection it runs first."""
    from graphql import get_introspection_query

    page = await closed_gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    body = await ask(closed_gateway, get_introspection_query())
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_config_can_open_the_graph_to_anonymous_callers(demo_data: Any) -> None:
    """The suite's own gateway: ``auth.anonymous.role: inspector`` is an explicit opening."""
    assert demo_data.config.auth.anonymous.role is Role.INSPECTOR
    gateway = await running(demo_data.config)
    try:
        body = await ask(gateway, COUNT)
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    assert body["data"]["cases"]["totalCount"] > 0


async def test_credentials_that_do_not_verify_are_an_error_not_anonymous(
    demo_data: Any, tmp_path: Path
) -> None:
    """Even where anonymous callers may read, a wrong key is refused rather than ignored."""
    gateway = await running(demo_data.config)
    try:
        for header in ("Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer"):
            body = await ask(gateway, COUNT, header)
            assert code_of(body) == "UNAUTHENTICATED", header
            assert "wrong" not in body["errors"][0]["message"]
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()


# -- API keys ----------------------------------------------------------------------------------


async def cli(argv: list[str]) -> int:
    """The CLI runs its own event loop: in a thread, beside the test's."""
    return await asyncio.to_thread(main, argv)


def key_config(demo_data: Any, tmp_path: Path) -> tuple[Path, Path]:
    store = tmp_path / "keys.sqlite"
    config = write_demo_config(demo_data, tmp_path / "gateway.yaml")
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f"\nauth:\n  key_store: sqlite+aiosqlite:///{store}\n", "utf-8")
    return config, store


async def test_keys_created_listed_and_revoked_with_the_cli(
    demo_data: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, store = key_config(demo_data, tmp_path)
    assert await cli(["keys", "create", "--config", str(config), "--name", "Khon Kaen CRM",
                 "--role", "agency", "--agency", "KKN-PO", "--scope", "pii:read"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    key_id = out.split()[0]
    secret = out.strip().rsplit(" ", 1)[1]
    assert secret.startswith("cgk_") and len(secret) > 40

    # Stored hashed: the file holds the SHA-256, never the key.
    raw = store.read_bytes()
    assert secret.encode() not in raw
    with sqlite3.connect(store) as db:
        (stored,) = db.execute("SELECT key_hash FROM complaint_graph_api_keys").fetchone()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()

    assert await cli(["keys", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "agency=KKN-PO" in listed and secret not in listed

    from gateway.config import load_config

    gateway = await running(load_config(config))
    try:
        body = await ask(gateway, '{ cases(filter: {source: ["pmoc-1111"]}) { totalCount } }',
                         f"Bearer {secret}")  # fmt: skip
        assert body["data"]["cases"]["totalCount"] == 0  # nothing of the 1111 service's
        mine = await ask(gateway, COUNT, f"Bearer {secret}")
        assert mine["data"]["cases"]["totalCount"] > 0

        assert await cli(["keys", "revoke", key_id, "--config", str(config)]) == 0
        refused = await ask(gateway, COUNT, f"Bearer {secret}")
        assert code_of(refused) == "UNAUTHENTICATED"  # at once, no restart
        assert "revoked" in capsys.readouterr().out
    finally:
        await gateway.client.aclose()
        await gateway.gateway.stop()
    assert await cli(["keys", "revoke", key_id, "--config", str(config)]) == 1  # already revoked


def test_an_agency_key_needs_an_agency(
    demo_data: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = key_config(demo_data, tmp_path)
    assert main(["keys", "create", "--config", str(config), "--name", "x", "--role", "agency"]) == 1
    assert "--agency" in capsys.readouterr().out


async def test_the_key_store_works_on_postgresql(postgres_admin_dsn: str) -> None:
    dsn = await create_database(postgres_admin_dsn)
    store = KeyStore(sqlalchemy_url(dsn))
    try:
        record, secret = await store.create("analysts", frozenset({Role.ANALYST}))
        found = await store.authenticate(secret)
        assert found is not None and found.id == record.id and found.roles == {Role.ANALYST}
        assert await store.authenticate(secret + "x") is None
        await store.revoke(record.id)
        assert await store.authenticate(secret) is None
        assert [k.id for k in await store.list()] == [record.id]
    finally:
        await store.close()
        await drop_database(postgres_admin_dsn, dsn)


async def test_every_demo_key_authenticates_with_its_role(closed_gateway: RunningGateway) -> None:
    store = closed_gateway.gateway.authenticator.keys
    for key, role in (("demo-inspector", Role.INSPECTOR), ("demo-analyst", Role.ANALYST)):
        found = await store.authenticate(key)
        assert found is not None and found.roles == {role}
    for agency in ("MOI-DDC", "KKN-PO", "OPM-1111", "BMA-TRAFFY"):
        found = await store.authenticate(demo_agency_key(agency))
        assert found is not None and (found.roles, found.agency) == ({Role.AGENCY}, agency)


# -- OIDC --------------------------------------------------------------------------------------

ISSUER = "https://idp.example.go.th/realms/complaints"
AUDIENCE = "complaint-graph"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def identity_provider(signing_key: rsa.RSAPrivateKey) -> Iterator[ThreadedServer]:
    """A JWKS endpoint on loopback publishing the public half of ``signing_key`` as kid k1."""
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    keys = {"keys": [public | {"kid": "k1", "use": "sig", "alg": "RS256"}]}

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(keys)

    server = ThreadedServer(Starlette(routes=[Route("/jwks", jwks)]))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def with_oidc(
    access_world: AccessWorld, identity_provider: ThreadedServer
) -> AsyncIterator[RunningGateway]:
    oidc = OidcSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=f"{identity_provider.url}/jwks",
        leeway_seconds=30,
        claims={"agency": "complaint_graph.agency", "roles": "complaint_graph.roles"},
    )
    auth = AuthSettings(key_store=access_world.config.auth.key_store, oidc=oidc)
    async with serving(replace(access_world.config, auth=auth)) as started:
        yield started


def token(key: rsa.RSAPrivateKey, kid: str = "k1", **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "somchai@khonkaen.go.th",
        "iat": now,
        "exp": now + 300,
        "complaint_graph": {"agency": "KKN-PO", "roles": ["agency"]},
    } | changes
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_a_valid_token_maps_its_claims_to_agency_and_role(
    with_oidc: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    bearer = f"Bearer {token(signing_key)}"
    pmoc = await ask(with_oidc, '{ cases(filter: {source: ["pmoc-1111"]}) { totalCount } }', bearer)
    assert pmoc["data"]["cases"]["totalCount"] == 0
    own = await ask(
        with_oidc, '{ cases(filter: {source: ["khonkaen-office"]}) { totalCount } }', bearer
    )
    assert own["data"]["cases"]["totalCount"] > 0
    inspector = token(signing_key, complaint_graph={"roles": ["inspector"]})
    everything = await ask(with_oidc, COUNT, f"Bearer {inspector}")
    assert everything["data"]["cases"]["totalCount"] > own["data"]["cases"]["totalCount"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://evil.example/realms/complaints"}, "issuer"),
    ],
)
async def test_expired_foreign_or_misaddressed_tokens_are_refused(
    with_oidc: RunningGateway, signing_key: rsa.RSAPrivateKey, changes: dict[str, Any], reason: str
) -> None:
    body = await ask(with_oidc, COUNT, f"Bearer {token(signing_key, **changes)}")
    assert code_of(body) == "UNAUTHENTICATED"
    assert reason in body["errors"][0]["message"]


async def test_a_token_signed_by_another_key_is_refused(with_oidc: RunningGateway) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = await ask(with_oidc, COUNT, f"Bearer {token(impostor)}")
    assert code_of(body) == "UNAUTHENTICATED"
    assert "signature" in body["errors"][0]["message"]
    unknown_kid = await ask(with_oidc, COUNT, f"Bearer {token(impostor, kid='k9')}")
    assert code_of(unknown_kid) == "UNAUTHENTICATED"


async def test_clock_skew_within_the_leeway_is_tolerated(
    with_oidc: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    late = token(signing_key, exp=int(time.time()) - 10)  # leeway is 30 s
    body = await ask(with_oidc, COUNT, f"Bearer {late}")
    assert "errors" not in body, body


async def test_a_verified_token_without_a_role_is_forbidden(
    with_oidc: RunningGateway, signing_key: rsa.RSAPrivateKey
) -> None:
    no_role = token(signing_key, complaint_graph={"agency": "KKN-PO", "roles": ["mayor"]})
    body = await ask(with_oidc, COUNT, f"Bearer {no_role}")
    assert code_of(body) == "FORBIDDEN"
    schema = await ask(with_oidc, "{ __typename }", f"Bearer {no_role}")
    assert schema["data"] == {"__typename": "Query"}


async def test_api_keys_still_work_beside_oidc(with_oidc: RunningGateway) -> None:
    body = await ask(with_oidc, COUNT, "Bearer demo-analyst")
    assert body["data"]["cases"]["totalCount"] > 0


# -- WebSocket and SSE -------------------------------------------------------------------------

SUBSCRIBE = "subscription { caseEvents { id } }"


@pytest.fixture
def served_closed(access_world: AccessWorld) -> Iterator[ThreadedServer]:
    from gateway.app import create_app

    server = ThreadedServer(create_app(access_world.config), lifespan=True)
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def socket(server: ThreadedServer, protocol: str) -> AsyncIterator[Any]:
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        yield ws


async def test_graphql_transport_ws_takes_the_key_in_connection_init(
    served_closed: ThreadedServer,
) -> None:
    async with socket(served_closed, "graphql-transport-ws") as ws:
        init = {"type": "connection_init", "payload": {"Authorization": "Bearer demo-analyst"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    async with socket(served_closed, "graphql-transport-ws") as ws:
        init = {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}
        await ws.send(json.dumps(init))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_an_anonymous_socket_subscribes_to_nothing(served_closed: ThreadedServer) -> None:
    async with socket(served_closed, "graphql-transport-ws") as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        message = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
        await ws.send(json.dumps(message))
        reply = json.loads(await ws.recv())
    assert reply["type"] in ("error", "next"), reply
    errors = reply["payload"] if reply["type"] == "error" else reply["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_legacy_graphql_ws_takes_the_key_in_connection_init(
    served_closed: ThreadedServer,
) -> None:
    async with socket(served_closed, "graphql-ws") as ws:
        init = {"type": "connection_init", "payload": {"Authorization": "Bearer demo-inspector"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    async with socket(served_closed, "graphql-ws") as ws:
        init = {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}
        await ws.send(json.dumps(init))
        reply = None
        with contextlib.suppress(ConnectionClosed):
            reply = json.loads(await ws.recv())
        assert reply is None or reply["type"] == "connection_error", reply


async def test_server_sent_events_take_the_header(served_closed: ThreadedServer) -> None:
    async with httpx.AsyncClient(base_url=served_closed.url, timeout=10) as client:
        for authorization, accepted in ((None, False), ("Bearer demo-analyst", True)):
            headers = {"accept": "text/event-stream"}
            if authorization:
                headers["authorization"] = authorization
            async with client.stream(
                "POST", "/graphql", json={"query": SUBSCRIBE}, headers=headers
            ) as response:
                if accepted:
                    assert response.status_code == 200
                    continue  # the stream is open and waits for events
                text = (await response.aread()).decode()
                assert "UNAUTHENTICATED" in text
