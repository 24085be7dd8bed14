"""What the graph's mutations need from the gateway's outbox (gateway/outbox.py), as a protocol:
the graph layer records and reads writes, it never opens the store itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from resolvers.access import Principal
from sources import WriteEntry


@dataclass(frozen=True, slots=True)
class Route:
    """Where a new complaint goes: an agency's code, and why (``input``, ``rule N``,
    ``default``)."""

    agency: str
    why: str


class Writes(Protocol):
    @property
    def anonymous_filing(self) -> bool:
        """Whether callers without credentials may file complaints (a public form)."""
        ...

    def route(self, category: str, province: str | None) -> Route | None:
        """The agency the routing rules give a new complaint, or None (no rule, no default)."""
        ...

    def can_write(self, source: str, step: str | None = None) -> bool:
        """Whether the source has a ``writes:`` section (a writer), configured for ``step``
        (create, status, record, note) when one is named."""
        ...

    def personal_fields(self, source: str) -> tuple[str, ...]:
        """The complainant's fields ``source`` may receive with a referral (none by default)."""
        ...

    def problem(self, source: str, **values: Any) -> str | None:
        """Why the source could not be written these canonical values (``status``,
        ``category``, ``channel``, ``agency``, ``kind``), or None."""
        ...

    async def submit(
        self,
        action: str,
        principal: Principal,
        idempotency_key: str,
        request: Mapping[str, Any],
        payload: Mapping[str, Any],
        first_step: str,
        source: str,
        case_id: str,
        to_source: str | None = None,
    ) -> WriteEntry: ...

    async def get(self, key: str) -> WriteEntry | None:
        """The write with this id (``Write.id``), or None."""
        ...

    async def pending_count(self, source: str) -> int:
        """PENDING writes whose case is in ``source`` or that create a case there."""
        ...

    async def entries(
        self, state: str | None = None, subject: str | None = None, first: int = 100
    ) -> list[WriteEntry]: ...

    async def pending_referrals(
        self, cases: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[WriteEntry]]:
        """Referrals of these (source, local id) cases the outbox has not written into both
        systems: PENDING, or ABANDONED with its reason (a hand-over that failed stays on its
        case), oldest first."""
        ...
