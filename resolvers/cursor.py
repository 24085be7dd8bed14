"""Opaque page cursors: a keyset position in the global order, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

import orjson

from resolvers.errors import UserInputError
from sources import CaseOrder, Position, SortField, moment_problem

_VERSION = 1


def encode_cursor(position: Position, order: CaseOrder) -> str:
    payload = [
        _VERSION,
        order.field.value,
        order.descending,
        position.value.isoformat(),
        position.source,
        position.local_id,
    ]
    raw = orjson.dumps(payload)  # as json.dumps(separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_LENGTH = 1024
"""Longer than any cursor this gateway issues (ids of 200 characters fit easily): anything
longer is refused before it is decoded."""

_NOT_OURS = "'after' is not a cursor this gateway issued; take endCursor from a previous page"


def decode_cursor(cursor: str, order: CaseOrder) -> Position:
    """The position in ``cursor``; a cursor made for another ordering is refused, not misread.

    Whatever a client puts in a cursor (garbage, 5,000 nested brackets, a moment in year 9999)
    is ``BAD_USER_INPUT`` naming ``after``, never an error of the gateway's own."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise UserInputError(_NOT_OURS)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, field, descending, value, source, local_id = json.loads(raw)
        if version != _VERSION or not all(isinstance(v, str) for v in (value, source, local_id)):
            raise ValueError(version)
        position = Position(datetime.fromisoformat(value), source, local_id)
        cursor_order = CaseOrder(SortField(field), bool(descending))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserInputError(_NOT_OURS) from exc
    if moment_problem("after", position.value) is not None:
        raise UserInputError(_NOT_OURS)
    if cursor_order != order:
        raise UserInputError(
            "'after' was issued for another orderBy; use the same orderBy or start without it"
        )
    return position
