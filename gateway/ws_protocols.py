"""Strawberry's WebSocket protocol handlers, hardened against malformed messages.

Strawberry's handlers index a message's fields before checking their types: ``{"type":
"subscribe", "payload": null}`` raised an unhandled TypeError on graphql-transport-ws (a 500 in
the access log), and a ``start`` without a payload did the same on the legacy graphql-ws. Here
every message is checked first; a malformed one closes the socket with 4400 and a reason naming
the field, as graphql-transport-ws specifies for invalid messages. The legacy protocol now also
refuses bad credentials with 4403, as the other does (it closed with 1011, "internal error").
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
)
from strawberry.types.unset import UnsetType

from resolvers import Context

INVALID_MESSAGE = 4400
FORBIDDEN = 4403

_NEEDS_ID = {"subscribe", "complete", "start", "stop"}
_CARRIES_OPERATION = {"subscribe", "start"}


def message_problem(message: object) -> str | None:
    """Why a client's WebSocket message cannot be handled, or None when it can: checked for
    both subprotocols (their operation messages share one shape)."""
    if not isinstance(message, Mapping):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message needs a string 'type'"
    if kind in _NEEDS_ID:
        identifier = message.get("id")
        if not isinstance(identifier, str) or not identifier:
            return f"a {kind} message needs a non-empty string 'id'"
    if kind in _CARRIES_OPERATION:
        return _operation_problem(kind, message.get("payload"))
    return None


def _operation_problem(kind: str, payload: object) -> str | None:
    if not isinstance(payload, Mapping):
        return f"a {kind} message's 'payload' must be an object with the 'query'"
    if not isinstance(payload.get("query"), str):
        return f"a {kind} message's 'payload.query' must be a string"
    for name, expected in (("variables", Mapping), ("extensions", Mapping)):
        value = payload.get(name)
        if value is not None and not isinstance(value, expected):
            return f"a {kind} message's 'payload.{name}' must be an object or null"
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        return f"a {kind} message's 'payload.operationName' must be a string or null"
    return None


class CheckedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: a malformed message closes the socket with 4400."""

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class CheckedLegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws (subscriptions-transport-ws): a malformed message closes the
    socket with 4400, refused credentials with 4403 after its ``connection_error``."""

    async def handle_message(self, message: OperationMessage) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.send_message({"type": "connection_error", "payload": {"message": problem}})
            await self.websocket.close(code=INVALID_MESSAGE, reason=problem)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Strawberry's, but a rejected connection closes with 4403, not 1011."""
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            reason = "connection_init's 'payload' must be an object"
            await self.send_message({"type": "connection_error", "payload": {"message": reason}})
            await self.websocket.close(code=INVALID_MESSAGE, reason=reason)
            return
        self.context.connection_params = payload
        try:
            acknowledgement = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        if isinstance(acknowledgement, UnsetType) or acknowledgement is None:
            await self.send_message({"type": "connection_ack"})
        else:
            await self.send_message({"type": "connection_ack", "payload": acknowledgement})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())
