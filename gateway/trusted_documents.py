"""Trusted documents: front-end apps send the id of a document registered at build time.

The manifest is a JSON file, either a map ``{"sha256:<hex>" or "<hex>": "document"}`` (Relay's
persisted queries, GraphQL-over-HTTP trusted documents) or Apollo's persisted query manifest
(``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}``); every id must
be the SHA-256 of its document, checked when the configuration is read.

A request names a document by ``documentId: "sha256:<hex>"`` or Apollo's
``extensions.persistedQuery.sha256Hash``, in a POST body or GET parameters; this middleware puts
the registered document in its place (an unknown id is ``PERSISTED_QUERY_NOT_FOUND``). A request
that sends a full document is checked by the graph itself (:mod:`resolvers.limits`): unless its
hash is registered it is ``DOCUMENT_NOT_TRUSTED`` (for everyone, or only for callers without a
key when ``required_for: anonymous``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import orjson
from pydantic import PrivateAttr, model_validator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway._asgi import read_body, replay, send_json
from sources import Strict

_HEX = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")
_APOLLO_FORMAT = "apollo-persisted-query-manifest"


class TrustedDocumentSettings(Strict):
    """``limits.trusted_documents``: where the manifest is and whom it binds."""

    manifest: str
    required_for: Literal["everyone", "anonymous"] = "everyone"
    _documents: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _load(self) -> TrustedDocumentSettings:
        self._documents = load_manifest(Path(self.manifest))
        return self

    def documents(self) -> Mapping[str, str]:
        """Registered documents by the lower-case hex SHA-256 of their text."""
        return dict(self._documents)


def load_manifest(path: Path) -> dict[str, str]:
    """``hex -> document``; raises ``ValueError`` naming the file and the entry at fault."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    entries = _entries(raw, path)
    documents: dict[str, str] = {}
    for key, document in entries:
        match = _HEX.match(key) if isinstance(key, str) else None
        if match is None or not isinstance(document, str):
            raise ValueError(f"{path}: entry {key!r} is not 'sha256:<64 hex digits>' -> document")
        digest = match.group(1).lower()
        if hashlib.sha256(document.encode()).hexdigest() != digest:
            raise ValueError(f"{path}: entry {key!r} is not the SHA-256 of its document")
        documents[digest] = document
    return documents


def _entries(raw: Any, path: Path) -> list[tuple[Any, Any]]:
    if isinstance(raw, dict) and raw.get("format") == _APOLLO_FORMAT:
        operations = raw.get("operations")
        if not isinstance(operations, list):
            raise ValueError(f"{path}: an Apollo manifest needs an 'operations' list")
        return [
            (op.get("id"), op.get("body")) if isinstance(op, dict) else (None, None)
            for op in operations
        ]
    if isinstance(raw, dict):
        return list(raw.items())
    raise ValueError(f"{path}: expected a JSON object mapping ids to documents")


def requested_id(data: Mapping[str, Any]) -> str | None:
    """The document id a GraphQL request names instead of sending its document, if any."""
    document_id = data.get("documentId")
    if isinstance(document_id, str):
        return document_id
    extensions = data.get("extensions")
    if isinstance(extensions, str):  # GET sends it as JSON text
        try:
            extensions = json.loads(extensions)
        except ValueError:
            return None
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    return digest if isinstance(digest, str) else None


class TrustedDocuments:
    """Replaces a document id in a request to ``path`` with the registered document."""

    def __init__(self, app: ASGIApp, documents: Mapping[str, str], path: str = "/graphql") -> None:
        self.app = app
        self.documents = documents
        self.path = path

    def lookup(self, document_id: str) -> str | None:
        match = _HEX.match(document_id)
        return self.documents.get(match.group(1).lower()) if match else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "GET":
            await self._get(scope, receive, send)
        elif scope["method"] == "POST":
            await self._post(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        data = dict(params)
        document_id = None if "query" in data else requested_id(data)
        if document_id is None:
            await self.app(scope, receive, send)
            return
        document = self.lookup(document_id)
        if document is None:
            await self._not_found(scope, send, document_id)
            return
        query_string = urlencode([*params, ("query", document)]).encode()
        await self.app({**scope, "query_string": query_string}, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        document_id = requested_id(data) if isinstance(data, dict) and "query" not in data else None
        if document_id is None or not isinstance(data, dict):
            await self.app(scope, replay(body, receive), send)
            return
        document = self.lookup(document_id)
        if document is None:
            await self._not_found(scope, send, document_id)
            return
        rewritten = orjson.dumps({**data, "query": document})
        headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
        headers.append((b"content-length", str(len(rewritten)).encode()))
        await self.app({**scope, "headers": headers}, replay(rewritten, receive), send)

    async def _not_found(self, scope: Scope, send: Send, document_id: str) -> None:
        accept = Headers(scope=scope).get("accept", "")
        status = 400 if "application/graphql-response+json" in accept else 200
        shown = document_id[:80]
        error = {
            "message": f"No trusted document has the id {shown!r}; register it in the manifest.",
            "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
        }
        await send_json(send, status, {"errors": [error]})
