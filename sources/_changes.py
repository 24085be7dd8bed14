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
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sources._interface import Source
from sources._model import CanonicalStatus, CaseRecord, Channel, Location, Unmapped
from sources._moments import moment_problem
from sources._query import CaseFilter, CaseOrder, Position, SortField

OLDEST_FIRST = CaseOrder(SortField.UPDATED_AT, descending=False)


class SubscriberTooSlow(Exception):
    """A subscriber fell too far behind and was cut off; it must reconnect and resume."""


class EventsInterrupted(Exception):
    """The gateway may have missed events meant for a subscriber (its connection to the event
    bus dropped); the subscriber was ended and must resume with ``after``."""


class ChangeKind(StrEnum):
    CREATED = "CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    NOTE_ADDED = "NOTE_ADDED"
    REFERRED = "REFERRED"
    UPDATED = "UPDATED"


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One change, with ``token``: every source's watermark as of (and including) this event."""

    token: str
    kind: ChangeKind
    record: CaseRecord
    previous_status: CanonicalStatus | Unmapped | None
    referred_to: tuple[str, ...] = ()

    @property
    def at(self) -> datetime:
        return self.record.updated_at


def position_of(record: CaseRecord) -> Position:
    return Position(record.updated_at, record.source, record.local_id)


def encode_token(positions: dict[str, Position]) -> str:
    payload = {s: [p.value.isoformat(), p.local_id] for s, p in sorted(positions.items())}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_TOKEN_LENGTH = 8192
"""Longer than any event id this gateway issues (one watermark per source): anything longer
is refused before it is decoded."""


def decode_token(token: str) -> dict[str, Position]:
    """The watermarks in an event token; raises ValueError for anything else (garbage, deep
    nesting, a moment no agency's clock can hold)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("not an event id this gateway issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        positions = {
            str(source): Position(datetime.fromisoformat(value), str(source), str(local_id))
            for source, (value, local_id) in payload.items()
        }
    except (
        binascii.Error,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise ValueError("not an event id this gateway issued") from exc
    if any(moment_problem("after", p.value) is not None for p in positions.values()):
        raise ValueError("not an event id this gateway issued")
    return positions


def watermark_at(source: str, moment: datetime) -> Position:
    """A watermark from a clock: everything updated at or after ``moment`` is a change."""
    return Position(moment, source, "")


async def changes_after(source: Source, position: Position | None, limit: int) -> list[CaseRecord]:
    """Up to ``limit`` cases updated after ``position``, oldest change first."""
    return await source.search_cases(CaseFilter(), OLDEST_FIRST, position, limit)


def event_to_json(event: CaseEvent) -> str:
    """An event as JSON, to cross between gateway replicas."""
    return json.dumps(
        {
            "token": event.token,
            "kind": event.kind.value,
            "previous": _value(event.previous_status),
            "referred_to": list(event.referred_to),
            "record": _record_to_dict(event.record),
        },
        ensure_ascii=False,
    )


def event_from_json(text: str) -> CaseEvent:
    data = json.loads(text)
    return CaseEvent(
        token=data["token"],
        kind=ChangeKind(data["kind"]),
        record=_record_from_dict(data["record"]),
        previous_status=_status(data["previous"]),
        referred_to=tuple(data["referred_to"]),
    )


def _value(value: object) -> object:
    if isinstance(value, Unmapped):
        return {"unmapped": [value.source, value.key, value.value]}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def _record_to_dict(record: CaseRecord) -> dict[str, object]:
    fields = {name: _value(getattr(record, name)) for name in CaseRecord.__dataclass_fields__}
    fields["location"] = asdict(record.location)
    fields["media_urls"] = list(record.media_urls)
    return fields


def _unmapped(value: object) -> Unmapped | None:
    if isinstance(value, dict) and "unmapped" in value:
        source, key, native = value["unmapped"]
        return Unmapped(source, key, native)
    return None


def _status(value: object) -> CanonicalStatus | Unmapped | None:
    if value is None:
        return None
    return _unmapped(value) or CanonicalStatus(str(value))


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _record_from_dict(data: dict[str, Any]) -> CaseRecord:
    channel = _unmapped(data["channel"]) or Channel(data["channel"])
    category = _unmapped(data["category"]) or str(data["category"])
    status = _status(data["status"])
    assert status is not None
    received, updated = _time(data["received_at"]), _time(data["updated_at"])
    assert received is not None and updated is not None
    return CaseRecord(
        source=data["source"],
        local_id=data["local_id"],
        reference_number=data["reference_number"],
        title=data["title"],
        description=data["description"],
        channel=channel,
        category=category,
        source_category=data["source_category"],
        status=status,
        source_status=data["source_status"],
        received_at=received,
        updated_at=updated,
        due_at=_time(data["due_at"]),
        closed_at=_time(data["closed_at"]),
        location=Location(**data["location"]),
        responsible=data["responsible"],
        media_urls=tuple(data["media_urls"]),
        status_notes=data.get("status_notes"),
    )
