"""Bad input is the caller's, said so (issue 19, finding 6): moments at the ends of the calendar,
cursors and event ids that are garbage, nested 5,000 deep or dated 9999 are BAD_USER_INPUT
naming the argument, over HTTP, graphql-transport-ws, graphql-ws and Server-Sent Events; a
malformed WebSocket message closes the socket with 4400, a bad key on either protocol 4403."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app
from resolvers.cursor import decode_cursor, encode_cursor
from resolvers.errors import UserInputError
from resolvers.filters import CaseFilterInput
from samples.serving import ThreadedServer
from sources import CaseOrder, Position
from sources._changes import decode_token
from tests.conftest import DemoData, RunningGateway

CASES = """
query($f: CaseFilterInput, $a: String) {
  cases(first: 2, filter: $f, after: $a) { edges { node { id } } }
}
"""
EVENTS = """
subscription($f: CaseFilterInput, $a: String) {
  caseEvents(filter: $f, after: $a) { id }
}
"""


def packed(payload: object) -> str:
    """A cursor or event id as this gateway packs them: base64url of JSON, unpadded."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


EARLY, LATE = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"
NESTED = packed("[" * 5000 + "]" * 5000)
FILTERS = {
    "filter.receivedFrom": {"f": {"receivedFrom": EARLY}},
    "filter.receivedBefore": {"f": {"receivedBefore": LATE}},
}
CURSORS = {
    "dated 9999": packed([1, "RECEIVED_AT", True, LATE, "damrongdhama", "1"]),
    "dated year 1": packed([1, "RECEIVED_AT", True, EARLY, "damrongdhama", "1"]),
    "5,000 nested brackets": NESTED,
    "over-long": "A" * 100_000,
    "garbage": "%%%",
    "ids that are lists": packed([1, "RECEIVED_AT", True, "2026-01-01T00:00:00+00:00", [1], [2]]),
}
EVENT_IDS = {
    "dated 9999": packed({"damrongdhama": [LATE, "1"]}),
    "5,000 nested brackets": NESTED,
    "over-long": "A" * 100_000,
}


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error  # type: ignore[no-any-return]


# -- HTTP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILTERS)
async def test_moments_no_clock_holds_are_bad_input_naming_the_field(
    gateway: RunningGateway, name: str
) -> None:
    error = refusal(await gateway.query(CASES, FILTERS[name]))
    assert name in error["message"]
    assert "out of range" in error["message"]


@pytest.mark.parametrize("name", CURSORS)
async def test_cursors_this_gateway_never_issued_are_bad_input(
    gateway: RunningGateway, name: str
) -> None:
    error = refusal(await gateway.query(CASES, {"a": CURSORS[name]}))
    assert "'after'" in error["message"]


async def test_open311_dates_no_clock_holds_are_a_400_naming_the_parameter(
    gateway: RunningGateway,
) -> None:
    for parameter, value in (("start_date", EARLY), ("end_date", "9999-12-31T23:59:59.999999Z")):
        response = await gateway.client.get("/open311/v2/requests.json", params={parameter: value})
        assert response.status_code == 400, response.text
        assert parameter in response.json()[0]["description"]


# -- properties ---------------------------------------------------------------------------------

OFFSETS = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23))
MOMENTS = st.datetimes(timezones=OFFSETS.map(timezone))
PROPERTY = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
ORDER = CaseOrder()


@PROPERTY
@given(MOMENTS, st.sampled_from(["received_from", "received_before"]))
@example(datetime.fromisoformat(EARLY), "received_from")  # the issue's two
@example(datetime.fromisoformat(LATE), "received_before")
@example(datetime.fromisoformat("0001-01-02T00:00:00-23:59"), "received_from")
def test_any_moment_is_accepted_usable_or_refused_as_bad_input(
    moment: datetime, field: str
) -> None:
    """Every moment Python can parse: either refused as the caller's mistake, or one that every
    agency's zone (UTC-12 to UTC+14) can represent."""
    try:
        where = CaseFilterInput(**{field: moment}).to_filter()  # type: ignore[arg-type]
    except UserInputError:
        return
    bound = getattr(where, field)
    for hours in (-12, 0, 7, 14):
        bound.astimezone(timezone(timedelta(hours=hours)))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | MOMENTS.map(str),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)
ANY_CURSOR = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.lists(JSON, min_size=6, max_size=6).map(packed),
    st.tuples(
        st.just(1), st.sampled_from(["RECEIVED_AT", "UPDATED_AT"]), st.booleans(), JSON, JSON, JSON
    ).map(lambda parts: packed(list(parts))),
)


@PROPERTY
@given(ANY_CURSOR)
@example(NESTED)
@example(CURSORS["dated 9999"])
def test_any_text_as_a_cursor_decodes_or_is_bad_input(text: str) -> None:
    with contextlib.suppress(UserInputError):
        position = decode_cursor(text, ORDER)
        position.value.astimezone(UTC)


@PROPERTY
@given(MOMENTS, st.text(max_size=40), st.text(max_size=200))
def test_issued_cursors_decode_to_their_position_or_are_refused(
    moment: datetime, source: str, local_id: str
) -> None:
    """A cursor the gateway issued comes back as the same position, unless its moment is one
    no agency could hold (then no page could have ended there)."""
    position = Position(moment, source, local_id)
    try:
        assert decode_cursor(encode_cursor(position, ORDER), ORDER) == position
    except UserInputError:
        try:
            in_utc = moment.astimezone(UTC)
        except OverflowError:
            return  # no UTC value at all
        a_day = timedelta(days=1)
        assert (
            not datetime.min.replace(tzinfo=UTC) + a_day
            <= in_utc
            <= datetime.max.replace(tzinfo=UTC) - a_day
        )


@pytest.mark.parametrize("name", EVENT_IDS)
def test_event_ids_this_gateway_never_issued_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not an event id"):
        decode_token(EVENT_IDS[name])


# -- WebSocket and Server-Sent Events ------------------------------------------------------------


@pytest.fixture
def served(demo_data: DemoData) -> Iterator[ThreadedServer]:
    """The gateway on loopback (anonymous callers are inspectors; a key that does not verify is
    refused), so that WebSockets and streams go through uvicorn as in production."""
    server = ThreadedServer(create_app(demo_data.config), lifespan=True)
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def socket(
    server: ThreadedServer, protocol: str, key: str | None = None
) -> AsyncIterator[ClientConnection]:
    url = server.url.replace("http", "ws") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {key}"} if key else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield ws


async def closed_with(ws: ClientConnection) -> int:
    """The close code the server ends ``ws`` with (messages before it are skipped)."""
    async with asyncio.timeout(10):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    assert ws.close_code is not None
    return ws.close_code


async def first_errors(ws: ClientConnection) -> list[dict[str, Any]]:
    """The errors of the first operation message after the acknowledgement."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] in ("connection_ack", "ka", "complete"):
                continue
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload.get("errors")
            if isinstance(payload, dict) and "message" in payload and errors is None:
                errors = [payload]
            assert errors, message
            return errors  # type: ignore[no-any-return]


START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
BAD_OPERATIONS = [
    ("event ids", EVENTS, {"a": EVENT_IDS["5,000 nested brackets"]}, "after"),
    ("filters", EVENTS, {"f": {"receivedBefore": LATE}}, "filter.receivedBefore"),
]


@pytest.mark.parametrize("protocol", START)
@pytest.mark.parametrize(("what", "document", "variables", "named"), BAD_OPERATIONS)
async def test_bad_input_over_websockets_is_bad_user_input(
    served: ThreadedServer,
    protocol: str,
    what: str,
    document: str,
    variables: dict[str, Any],
    named: str,
) -> None:
    async with socket(served, protocol) as ws:
        message = {"id": "1", "type": START[protocol], "payload": {"query": document}}
        message["payload"]["variables"] = variables  # type: ignore[index]
        await ws.send(json.dumps(message))
        (error,) = await first_errors(ws)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", (what, error)
    assert named in error["message"], (what, error)


async def test_cursors_over_graphql_transport_ws_are_bad_user_input(
    served: ThreadedServer,
) -> None:
    async with socket(served, "graphql-transport-ws") as ws:
        for number, cursor in enumerate(CURSORS.values()):
            variables = {"a": cursor}
            payload = {"query": CASES, "variables": variables}
            await ws.send(json.dumps({"id": str(number), "type": "subscribe", "payload": payload}))
            (error,) = await first_errors(ws)
            assert error.get("extensions", {}).get("code") == "BAD_USER_INPUT", error


async def test_bad_input_over_server_sent_events_is_bad_user_input(
    served: ThreadedServer,
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        for variables, named in (
            ({"f": {"receivedFrom": EARLY}}, "filter.receivedFrom"),
            ({"a": EVENT_IDS["dated 9999"]}, "after"),
        ):
            async with client.stream(
                "POST",
                "/graphql",
                json={"query": EVENTS, "variables": variables},
                headers={"accept": "text/event-stream"},
            ) as response:
                text = ""
                async with asyncio.timeout(10):
                    async for line in response.aiter_lines():
                        text += line
                        if "errors" in line:
                            break
            assert "BAD_USER_INPUT" in text and named in text, text


MALFORMED = {
    "payload null": {"id": "1", "type": "subscribe", "payload": None},
    "no payload": {"id": "1", "type": "subscribe"},
    "payload a string": {"id": "1", "type": "subscribe", "payload": "{ __typename }"},
    "query a number": {"id": "1", "type": "subscribe", "payload": {"query": 5}},
    "variables a list": {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": "{ __typename }", "variables": [1]},
    },
    "id a list": {"id": [1], "type": "subscribe", "payload": {"query": "{ __typename }"}},
    "no id": {"type": "complete"},
    "not an object": [1, 2, 3],
    "type a number": {"type": 5},
}


@pytest.mark.parametrize("protocol", START)
@pytest.mark.parametrize("name", MALFORMED)
async def test_malformed_messages_close_the_socket_with_4400(
    served: ThreadedServer, protocol: str, name: str
) -> None:
    message = MALFORMED[name]
    if isinstance(message, dict) and message.get("type") == "subscribe":
        message = {**message, "type": START[protocol]}
    if isinstance(message, dict) and message.get("type") == "complete":
        message = {**message, "type": "complete" if protocol == "graphql-transport-ws" else "stop"}
    async with socket(served, protocol) as ws:
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps(message))
        assert await closed_with(ws) == 4400
    async with httpx.AsyncClient(base_url=served.url) as client:
        answer = await client.post("/graphql", json={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}  # and the server is fine


@pytest.mark.parametrize("protocol", START)
async def test_a_key_that_does_not_verify_closes_either_protocol_with_4403(
    served: ThreadedServer, protocol: str
) -> None:
    async with socket(served, protocol, key="not-a-key") as ws:
        assert await closed_with(ws) == 4403
