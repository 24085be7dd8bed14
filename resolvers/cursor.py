"""Opaque page cursors: a keyset position in the global order, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

import orjson

from resolvers.errors import UserInputError
from sources import CaseOrder, Position, SortField

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


def decode_cursor(cursor: str, order: CaseOrder) -> Position:
    """The position in ``cursor``; a cursor made for another ordering is refused, not misread."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, field, descending, value, source, local_id = json.loads(raw)
        if version != _VERSION:
            raise ValueError(version)
        position = Position(datetime.fromisoformat(value), str(source), str(local_id))
        cursor_order = CaseOrder(SortField(field), bool(descending))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise UserInputError(
            "'after' is not a cursor this gateway issued; take endCursor from a previous page"
        ) from exc
    if position.value.tzinfo is None:
        raise UserInputError("'after' is not a cursor this gateway issued")
    if cursor_order != order:
        raise UserInputError(
            "'after' was issued for another orderBy; use the same orderBy or start without it"
        )
    return position
