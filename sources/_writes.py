"""Writes: an optional capability of a source, beside the reads every source has.

A kind writes by implementing :class:`~sources._abilities.WritesCases` (the built-in kinds
through :class:`WritesWithWriter`, once their configuration has a ``writes:`` section); the
outbox writes through the gateway's guarded source (:func:`writer_for`). A source that does not
write cannot receive referrals nor take progress reports, and :class:`WritesUnsupported` says
which agency that is. Each write carries an idempotency key:
sent again with the same key (the gateway's outbox retries, gateway/outbox.py), it changes
nothing more and answers what the first one did, so a retry after a lost answer never makes
a second case. Writers take canonical values and translate them back through the source's own
vocabulary (:func:`native_of`): an agency's system receives its own codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sources._errors import SourceError, WritesUnsupported
from sources._interface import Source
from sources._model import CanonicalStatus, Channel, ReferralKind
from sources._settings import SourceSettings


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


STEPS = ("create", "status", "record", "note")
"""The steps of a write, as :meth:`CaseWriter.takes` names them."""


class WritesWithWriter:
    """:class:`~sources._abilities.WritesCases` for a kind whose writes are made by a writer
    of its own (the built-in kinds: the SQL kind's engine apart from its reads; the HTTP kinds
    through the source's own client and pool, sources/_http.py). The kind sets ``writer`` from
    its configuration (None without ``writes:``) and closes it when it closes. Listed before
    ``Source`` in the bases."""

    id: str
    writer: CaseWriter | None = None

    def takes(self, step: str) -> bool:
        return self.writer is not None and self.writer.takes(step)

    async def create_case(self, case: NewCase, key: str) -> str:
        return await self._writing().create_case(case, key)

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        await self._writing().set_status(local_id, status, note, at, key)

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        await self._writing().record_referral(local_id, referral, key)

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        await self._writing().add_note(local_id, note, at, key)

    async def close_writer(self) -> None:
        """Close the writer's own engine or client (the kind's ``close`` calls it)."""
        if self.writer is not None:
            await self.writer.close()

    def _writing(self) -> CaseWriter:
        if self.writer is None:
            raise WritesUnsupported(self.id, "its configuration has no writes: section")
        return self.writer


class _ThroughSource:
    """A :class:`CaseWriter` that writes through a source (its :class:`WritesCases`): the
    gateway's guarded source, so that writes keep its deadline, bulkhead and circuit."""

    def __init__(self, settings: SourceSettings, source: Source, owned: bool) -> None:
        self.source_id = settings.id
        self._settings = settings
        self.source = source
        self.owned = owned

    @property
    def settings(self) -> SourceSettings:
        return self._settings

    def takes(self, step: str) -> bool:
        return self.source.takes(step)

    async def create_case(self, case: NewCase, key: str) -> str:
        return await self.source.create_case(case, key)

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        await self.source.set_status(local_id, status, note, at, key)

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        await self.source.record_referral(local_id, referral, key)

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        await self.source.add_note(local_id, note, at, key)

    async def close(self) -> None:
        if self.owned:
            await self.source.close()


def writer_for(settings: SourceSettings, source: Source | None = None) -> CaseWriter | None:
    """The writer of the source configured by ``settings``, or None when it writes nothing (its
    kind has no :class:`~sources._abilities.WritesCases`, or its configuration no ``writes:``).

    ``source`` is the gateway's own, guarded source for ``settings``: writes go through it.
    Without one, a source of the kind is made for writing alone (unopened: kinds connect in
    ``open`` or on first use): its own writer when it has one (:class:`WritesWithWriter`), else
    the source itself, closed with the writer."""
    if source is not None:
        return _ThroughSource(settings, source, owned=False) if _writes(source) else None
    # The registry imports the kinds, whose writers import this module.
    from sources._registry import source_class

    made = source_class(settings.kind)(settings)
    if not _writes(made):
        return None
    if isinstance(made, WritesWithWriter) and made.writer is not None:
        return made.writer
    return _ThroughSource(settings, made, owned=True)


def _writes(source: Source) -> bool:
    return any(source.takes(step) for step in STEPS)


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
