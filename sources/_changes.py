"""Changes to cases, found by polling each source past an updated-at watermark.

A source's changes are its cases in (updated_at, local id) order; the last one seen is the
watermark. Asking for cases strictly after it is the same keyset query that pages ``cases``, so
updates that share a timestamp are neither missed nor repeated, and any kind of source can be
watched without triggers of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sources._interface import Source
from sources._model import CanonicalStatus, CaseRecord, Unmapped
from sources._query import CaseFilter, CaseOrder, Position, SortField

OLDEST_FIRST = CaseOrder(SortField.UPDATED_AT, descending=False)


class SubscriberTooSlow(Exception):
    """A subscriber fell too far behind and was cut off; it must reconnect and resume."""


class ChangeKind(StrEnum):
    CREATED = "CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    UPDATED = "UPDATED"


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One change, with ``token``: every source's watermark as of (and including) this event."""

    token: str
    kind: ChangeKind
    record: CaseRecord
    previous_status: CanonicalStatus | Unmapped | None

    @property
    def at(self) -> datetime:
        return self.record.updated_at


def position_of(record: CaseRecord) -> Position:
    return Position(record.updated_at, record.source, record.local_id)


def encode_token(positions: dict[str, Position]) -> str:
    payload = {s: [p.value.isoformat(), p.local_id] for s, p in sorted(positions.items())}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Position]:
    """The watermarks in an event token; raises ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        positions = {
            str(source): Position(datetime.fromisoformat(value), str(source), str(local_id))
            for source, (value, local_id) in payload.items()
        }
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, AttributeError) as exc:
        raise ValueError("not an event id this gateway issued") from exc
    if any(p.value.tzinfo is None for p in positions.values()):
        raise ValueError("not an event id this gateway issued")
    return positions


def watermark_at(source: str, moment: datetime) -> Position:
    """A watermark from a clock: everything updated at or after ``moment`` is a change."""
    return Position(moment, source, "")


async def changes_after(source: Source, position: Position | None, limit: int) -> list[CaseRecord]:
    """Up to ``limit`` cases updated after ``position``, oldest change first."""
    return await source.search_cases(CaseFilter(), OLDEST_FIRST, position, limit)
