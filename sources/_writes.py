"""Writes: an optional capability of a source, beside the reads every source has.

A source whose configuration has a ``writes:`` section gets a :class:`CaseWriter` from
:func:`writer_for`; one without it cannot receive referrals nor take progress reports, and
:class:`WritesUnsupported` says which agency that is. Each write carries an idempotency key:
sent again with the same key (the gateway's outbox retries, gateway/outbox.py), it changes
nothing more and answers what the first one did, so a retry after a lost answer never makes
a second case. Writers take canonical values and translate them back through the source's own
vocabulary (:func:`native_of`): an agency's system receives its own codes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sources._errors import SourceError
from sources._model import CanonicalStatus, Channel, ReferralKind
from sources._settings import SourceSettings


class WritesUnsupported(SourceError):
    """The source has no ``writes:`` configuration (or its kind cannot write)."""


class NotInVocabulary(SourceError):
    """A canonical value the source's vocabulary has no native value for: nothing is sent."""

    def __init__(self, source: str, key: str, value: str) -> None:
        super().__init__(
            source,
            f"its vocabulary.{key} has no native value for {value!r}, so it cannot be written; "
            f"add one under sources[{source}].vocabulary.{key}",
        )
        self.key = key
        self.value = value


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case to create in a receiving agency's system, in canonical terms: what the receiver
    needs to act (the original reference, category, location, description), and of the
    complainant only what the receiver's configuration allows (``complainant``)."""

    title: str
    description: str
    category: str
    received_at: datetime
    sender_agency: str
    sender_reference: str
    channel: Channel = Channel.REFERRAL
    status: CanonicalStatus = CanonicalStatus.RECEIVED
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    note: str | None = None
    complainant: Mapping[str, str] | None = None
    """The complainant's data the receiver may have (``writes.personal_data``), by field
    name (name, phone, address, citizen_id); None: none is sent."""


@dataclass(frozen=True, slots=True)
class OutgoingReferral:
    """A referral to record in the sender's system: ``their_reference`` is the receiver's id."""

    to_agency: str
    kind: ReferralKind
    their_reference: str
    at: datetime
    note: str | None = None


class CaseWriter(Protocol):
    """The writes one source can make; every method is one transaction (or one request)."""

    source_id: str

    @property
    def settings(self) -> SourceSettings:
        """The source's configuration, vocabulary included."""
        ...

    async def create_case(self, case: NewCase, key: str) -> str:
        """Create the case (once per ``key``) and return its local id, the receiver's
        reference. Sent again with the same key: the same id, no new case."""
        ...

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        """Set the case's status (in the source's own vocabulary) with a timeline note."""
        ...

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        """Record the hand-over on the sender's case (once per ``key``)."""
        ...

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        """Add a note to the case's timeline, its status unchanged."""
        ...

    def takes(self, step: str) -> bool:
        """Whether this source is configured for ``step`` (create, status, record, note)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WriteEntry:
    """One outbox row as the graph shows it."""

    key: str
    action: str
    subject: str
    state: str
    step: str
    source: str
    case_id: str
    to_source: str | None
    their_reference: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    request: Mapping[str, Any]


class KeyReused(Exception):
    """The idempotency key was used before for a different request."""


_V = TypeVar("_V")


def native_of(source: str, key: str, mapping: Mapping[str, _V], value: _V) -> str:
    """The agency's own value for a canonical one: the first listed that maps to it (a
    vocabulary lists its preferred spelling first), or :class:`NotInVocabulary`."""
    for native, canonical in mapping.items():
        if canonical == value:
            return native
    raise NotInVocabulary(source, key, str(value))


WRITERS: dict[str, str] = {
    "sql": "sources.sql._writes:SqlWriter",
    "rest": "sources.rest._writes:RestWriter",
    "open311": "sources._open311_writes:Open311Writer",
}
"""The writer of each kind that can write, imported when a source of that kind has ``writes:``."""


def writer_for(settings: SourceSettings) -> CaseWriter | None:
    """The source's writer, or None when its configuration has no ``writes:`` (or its kind
    cannot write)."""
    where = WRITERS.get(settings.kind)
    if getattr(settings, "writes", None) is None or where is None:
        return None
    module, _, name = where.partition(":")
    writer: CaseWriter = getattr(importlib.import_module(module), name)(settings)
    return writer


def vocabulary_problem(
    settings: SourceSettings,
    *,
    status: CanonicalStatus | None = None,
    category: str | None = None,
    channel: Channel | None = None,
    agency: str | None = None,
    kind: ReferralKind | None = None,
) -> str | None:
    """Why the source could not be written these canonical values (its vocabulary has no
    native value for one), or None: checked before a write is recorded, so that a step
    the agency could never take is refused to the caller instead of abandoned later."""
    vocabulary = settings.vocabulary
    wanted: list[tuple[str, Mapping[str, object], object]] = [
        ("statuses", vocabulary.statuses, status),
        ("categories", vocabulary.categories, category),
        ("channels", vocabulary.channels, channel),
        ("agencies", vocabulary.agencies, agency),
        ("referral_kinds", vocabulary.referral_kinds, kind),
    ]
    for key, mapping, value in wanted:
        if value is not None:
            try:
                native_of(settings.id, key, mapping, value)
            except NotInVocabulary as exc:
                return exc.detail
    return None
