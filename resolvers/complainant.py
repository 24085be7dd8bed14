"""Who filed a case: personal data under the PDPA, masked unless the caller must see it.

The rule, in one place: the complainant's name, citizen ID, phone and address are the agency's
own values only for a caller with the ``pii:read`` scope, a role other than ``analyst``, and a
case it may see; every such reveal is recorded in the audit log before it is answered.
Anonymous and confidential (whistle-blowing) complaints are never revealed, to anyone.
Everyone else reads masks: ``x-xxxx-xxxxx-12-3`` for a citizen ID that ``stdnum.th.pin``
accepts, initials for a name, the last four digits of a phone, the last part of an address.

``Complainant.cases`` finds the same person's cases in every agency by a keyed HMAC of the
citizen ID: the gateway computes HMAC-SHA256(``auth.personal_data.match_key``, ID) from the ID
it holds and asks each source for cases whose stored key matches; the ID itself never leaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated

import strawberry
from stdnum.th import pin
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from resolvers.access import PII_READ, Forbidden, Principal, Role
from resolvers.audited_field import audited_for
from resolvers.context import GraphInfo
from sources import CaseRecord, ComplainantRecord

if TYPE_CHECKING:
    from resolvers.case import Case

PERSONAL_FIELDS = ("name", "citizenId", "phone", "address")
"""The fields whose reveal is audited (GraphQL names)."""

CITIZEN_ID_MASK = "x-xxxx-xxxxx-xx-x"


def mask_citizen_id(value: str | None) -> str | None:
    """``x-xxxx-xxxxx-12-3``: the last three digits of a valid ID, nothing of an invalid one."""
    if value is None:
        return None
    if not pin.is_valid(value):
        return CITIZEN_ID_MASK
    digits = pin.compact(value)
    return f"x-xxxx-xxxxx-{digits[10:12]}-{digits[12]}"


def mask_name(value: str | None) -> str | None:
    """Each word's first letter: ``สมชาย ใจดี`` -> ``ส*** ใ***``."""
    if value is None:
        return None
    return " ".join(word[0] + "***" for word in value.split())


def mask_phone(value: str | None) -> str | None:
    """Only the last four digits: ``0812345678`` -> ``xxxxxx5678``."""
    if value is None:
        return None
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 4:
        return "xxxx"
    return "x" * (len(digits) - 4) + "".join(digits[-4:])


def mask_address(value: str | None) -> str | None:
    """Only the last part, district or province level: ``… อ.เมือง`` -> ``*** อ.เมือง``."""
    if value is None:
        return None
    parts = value.split()
    return "***" if len(parts) < 2 else f"*** {parts[-1]}"


def citizen_key(match_key: str, citizen_id: str) -> str:
    """HMAC-SHA256 of the 13 digits under the matching key, in hex: what agencies store."""
    return hmac.new(match_key.encode(), citizen_id.encode(), hashlib.sha256).hexdigest()


def may_reveal(principal: Principal) -> bool:
    """The scope, and a role that may ever see personal data (an analyst never does)."""
    return principal.has_scope(PII_READ) and bool(principal.roles & {Role.INSPECTOR, Role.AGENCY})


@strawberry.type(
    description=(
        "Who filed the case. Masked by default; the agency's own values only for a caller with "
        "the pii:read scope on a case it may see (every reveal is audited), and never for an "
        "anonymous or confidential complaint (then the personal fields are null)."
    )
)
class Complainant:
    name: str | None
    citizen_id: str | None = strawberry.field(
        description="13 digits as 1-2345-67890-12-3 when revealed; masked x-xxxx-xxxxx-12-3."
    )
    citizen_id_valid: bool | None = strawberry.field(
        description="Whether the citizen ID passes its check digit (stdnum.th.pin); null: none."
    )
    phone: str | None
    address: str | None
    is_anonymous: bool = strawberry.field(description="Filed without a name: nothing to reveal.")
    is_confidential: bool = strawberry.field(
        description="Whistle-blowing: the agency must not disclose who filed it, ever."
    )
    revealed: bool = strawberry.field(
        description="True when the personal fields are the agency's own values, not masks."
    )
    _record: strawberry.Private[ComplainantRecord]
    _case: strawberry.Private[CaseRecord]

    @classmethod
    def of(cls, record: ComplainantRecord, case: CaseRecord, *, reveal: bool) -> Complainant:
        withheld = record.is_anonymous or record.is_confidential
        citizen = record.citizen_id
        valid = None if citizen is None or withheld else pin.is_valid(citizen)
        if withheld:
            name = citizen_id = phone = address = None
        elif reveal:
            name, phone, address = record.name, record.phone, record.address
            citizen_id = pin.format(citizen) if citizen is not None and valid else citizen
        else:
            name, citizen_id = mask_name(record.name), mask_citizen_id(citizen)
            phone, address = mask_phone(record.phone), mask_address(record.address)
        return cls(
            name=name,
            citizen_id=citizen_id,
            citizen_id_valid=valid,
            phone=phone,
            address=address,
            is_anonymous=record.is_anonymous,
            is_confidential=record.is_confidential,
            revealed=reveal and not withheld,
            _record=record,
            _case=case,
        )

    @strawberry.field(
        description=(
            "The same person's cases in every agency (this one included), oldest first, "
            "matched by a keyed HMAC of the citizen ID: only the cases the caller may see, "
            "only with the pii:read scope, and none for anonymous or confidential complaints."
        )
    )
    async def cases(
        self, info: GraphInfo
    ) -> list[Annotated[Case, strawberry.lazy("resolvers.case")]]:
        # A non-null list: a failed audit nulls the complainant, as GraphQL propagates it.
        with audited_for(info.path, null_at=info.path.prev):
            return await self._cases(info)

    async def _cases(self, info: GraphInfo) -> list[Case]:
        from resolvers.case import Case

        context = info.context
        access = context.case_access
        record, case = self._record, self._case
        if record.is_anonymous or record.is_confidential:
            return []
        if not self.revealed:
            await access.audit.denied(
                access.principal, case.source, case.local_id, "Complainant.cases needs pii:read"
            )
            raise Forbidden("Complainant.cases needs the pii:read scope")
        if access.match_key is None:
            raise Forbidden(
                "Complainant.cases is off: the gateway has no auth.personal_data.match_key"
            )
        if record.citizen_id is None or not pin.is_valid(record.citizen_id):
            return []
        key = citizen_key(access.match_key, pin.compact(record.citizen_id))
        loaders = context.loaders
        askable = [
            source.id
            for source in context.federation.sources.values()
            if source.capabilities.finds_complainants
        ]
        found = await asyncio.gather(*(loaders.cases_by_complainant(s).load(key) for s in askable))
        records = [r for per_source in found for r in per_source]
        loaders.prime_cases(records)
        shown = await asyncio.gather(*(access.visible(r, loaders) for r in records))
        visible = sorted(
            (r for r, ok in zip(records, shown, strict=True) if ok),
            key=lambda r: (r.received_at, r.source, r.local_id),
        )
        if visible:
            await access.audit.revealed(access.principal, case.source, case.local_id, ["cases"])
        return [Case.of(r, context.directory) for r in visible]


async def complainant_of(info: GraphInfo, case: CaseRecord) -> Complainant | None:
    """The case's complainant as this caller may see it; null when the source keeps none."""
    with audited_for(info.path):
        return await _complainant_of(info, case)


async def _complainant_of(info: GraphInfo, case: CaseRecord) -> Complainant | None:
    context = info.context
    record: ComplainantRecord | None = await context.loaders.complainants().load(
        (case.source, case.local_id)
    )
    if record is None:
        return None
    access = context.case_access
    withheld = record.is_anonymous or record.is_confidential
    reveal = (
        not withheld
        and may_reveal(access.principal)
        and await access.visible(case, context.loaders)
    )
    if reveal:
        fields = [f for f in PERSONAL_FIELDS if f in _requested(info.selected_fields)]
        if fields:
            await access.audit.revealed(access.principal, case.source, case.local_id, fields)
    return Complainant.of(record, case, reveal=reveal)


def _requested(selected: Iterable[object]) -> set[str]:
    """Names of the fields selected under the current one, through fragments."""
    names: set[str] = set()
    for node in selected:
        if isinstance(node, SelectedField | InlineFragment | FragmentSpread):
            for child in node.selections:
                if isinstance(child, SelectedField):
                    names.add(child.name)
                else:
                    names |= _requested([child])
    return names


__all__: Sequence[str] = (
    "Complainant",
    "citizen_key",
    "complainant_of",
    "mask_address",
    "mask_citizen_id",
    "mask_name",
    "mask_phone",
)
