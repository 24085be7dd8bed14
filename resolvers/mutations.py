"""Mutations: a case referred to another agency, progress reported on one, written through to
each agency's own system by the gateway's outbox (resolvers/writes.py, gateway/outbox.py).

New complaints from intake apps (``fileComplaint``) are resolvers/intake.py's.

Who may write: an agency's key refers and reports on cases its own agency owns; an inspector
may refer any case (and reports on none: progress is the owning agency's word); analysts and
anonymous callers write nothing (filing a complaint has rules of its own, in intake.py).
Expected refusals are typed user errors in the payload (``errors``), never a GraphQL error:
the caller acts on ``code``.

A write the receiver cannot take now (its system down) is not an error: the payload's
``write`` says PENDING, the outbox retries it, and ``pendingWrites`` shows it meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry import relay

from resolvers.access import Principal, Role
from resolvers.case import Case, load_case_in
from resolvers.context import GraphInfo
from resolvers.intake import FileComplaintPayload, file_complaint
from resolvers.referral import Referral
from resolvers.write_results import (
    Refusal,
    Write,
    WriteError,
    WriteErrorCode,
    WriteState,
    refresh_after_write,
    submit_write,
    writer_principal,
)
from sources import CanonicalStatus, CaseRecord, ReferralKind, Unmapped

__all__ = ["Mutation", "Write", "WriteError", "WriteErrorCode", "WriteState", "pending_writes"]


@strawberry.input
class ReferCaseInput:
    case_id: relay.GlobalID
    to_agency: str = strawberry.field(description="The receiving agency's code.")
    kind: ReferralKind = ReferralKind.FORWARD
    note: str | None = None
    idempotency_key: str = strawberry.field(
        description="Sent again (or concurrently) with the same key, nothing is written twice."
    )


@strawberry.type
class ReferCasePayload:
    case: Case | None = strawberry.field(
        description="The referring case, as its system now has it."
    )
    referred_case: Case | None = strawberry.field(
        description="The case in the receiving agency's system (null while PENDING)."
    )
    referral: Referral | None = strawberry.field(
        description="The referral as the sender's system recorded it (null while PENDING)."
    )
    write: Write | None
    errors: list[WriteError]


@strawberry.input
class ReportProgressInput:
    case_id: relay.GlobalID
    status: CanonicalStatus
    note: str | None = None
    idempotency_key: str


@strawberry.type
class ReportProgressPayload:
    case: Case | None
    write: Write | None
    errors: list[WriteError]


async def _own_case(info: GraphInfo, case_id: relay.GlobalID) -> CaseRecord:
    if case_id.type_name != "Case":
        raise Refusal(WriteErrorCode.INVALID_INPUT, "caseId is not a Case id", "caseId")
    source_id, _, local_id = case_id.node_id.partition(":")
    case = await load_case_in(info, source_id, local_id)
    if case is None:
        raise Refusal(WriteErrorCode.CASE_NOT_FOUND, "no case with this id", "caseId")
    return case.record


def _owner_check(
    info: GraphInfo, principal: Principal, record: CaseRecord, inspector_ok: bool
) -> None:
    if inspector_ok and Role.INSPECTOR in principal.roles:
        return
    owner = info.context.federation.sources[record.source].agency.code
    if Role.AGENCY not in principal.roles or principal.agency != owner:
        raise Refusal(
            WriteErrorCode.NOT_YOUR_CASE,
            f"the case belongs to {owner}; only {owner} may "
            + ("refer it (or an inspector)" if inspector_ok else "report on it"),
            "caseId",
        )


def _canonical(value: Any, what: str) -> Any:
    if isinstance(value, Unmapped):
        raise Refusal(
            WriteErrorCode.INVALID_INPUT,
            f"the case's {what} is not mapped ({value.message}): it cannot be sent",
        )
    return value


async def refer_case(info: GraphInfo, input: ReferCaseInput) -> ReferCasePayload:
    writes, principal = writer_principal(info)
    try:
        record = await _own_case(info, input.case_id)
        _owner_check(info, principal, record, inspector_ok=True)
        sender = info.context.federation.sources[record.source]
        receiver = info.context.directory.source_for_agency(input.to_agency)
        if input.to_agency == sender.agency.code:
            raise Refusal(
                WriteErrorCode.INVALID_INPUT, "a case is not referred to its own agency", "toAgency"
            )
        if receiver is None or not writes.can_write(receiver, "create"):
            why = (
                "no linked system"
                if receiver is None
                else f"its system '{receiver}' takes no writes"
            )
            raise Refusal(
                WriteErrorCode.AGENCY_CANNOT_RECEIVE,
                f"agency {input.to_agency} cannot receive referrals: {why}",
                "toAgency",
            )
        category = _canonical(record.category, "category")
        problem = writes.problem(receiver, category=category, status=CanonicalStatus.RECEIVED)
        if problem is not None:
            raise Refusal(
                WriteErrorCode.AGENCY_CANNOT_RECEIVE,
                f"agency {input.to_agency} cannot receive this case: {problem}",
                "toAgency",
            )
        sender_problem = (
            writes.problem(record.source, agency=input.to_agency, kind=input.kind)
            if writes.can_write(record.source, "record")
            else f"its system '{record.source}' records no referrals"
        )
        if sender_problem is not None:
            raise Refusal(
                WriteErrorCode.AGENCY_CANNOT_WRITE,
                f"the referral cannot be recorded in {sender.agency.code}'s system: "
                + sender_problem,
                "toAgency",
            )
        location = record.location
        personal = await _personal_data(info, record, writes.personal_fields(receiver))
        request = {
            "caseId": str(input.case_id),
            "toAgency": input.to_agency,
            "kind": input.kind.value,
            "note": input.note,
            "personalData": sorted(personal),
        }
        payload = {
            "case": {
                "title": record.title,
                "description": record.description,
                "category": category,
                "received_at": datetime.now(UTC).isoformat(),
                "sender_agency": sender.agency.code,
                "sender_reference": record.reference_number,
                "province_code": location.province_code,
                "district_code": location.district_code,
                "subdistrict_code": location.subdistrict_code,
                "address": location.address,
                "latitude": location.latitude,
                "longitude": location.longitude,
                "note": input.note,
                "complainant": personal or None,
            },
            "to_agency": input.to_agency,
            "kind": input.kind.value,
            "at": datetime.now(UTC).isoformat(),
            "note": input.note,
        }
        entry = await submit_write(
            writes,
            "refer",
            principal,
            input.idempotency_key,
            request,
            payload,
            "create",
            record.source,
            record.local_id,
            receiver,
        )
    except Refusal as refusal:
        return ReferCasePayload(
            case=None, referred_case=None, referral=None, write=None, errors=[refusal.error()]
        )
    refresh_after_write(info)
    case = await load_case_in(info, entry.source, entry.case_id)
    referred = referral = None
    if entry.state == "DONE" and entry.to_source is not None and entry.their_reference is not None:
        referred = await load_case_in(info, entry.to_source, entry.their_reference)
        records = await info.context.loaders.referrals(entry.source).load(entry.case_id)
        target = input.to_agency
        found = [
            r
            for r in records
            if r.their_reference == entry.their_reference and r.to_agency == target
        ]
        referral = Referral.of(found[-1]) if found else None
    return ReferCasePayload(
        case=case, referred_case=referred, referral=referral, write=Write.of(entry), errors=[]
    )


async def _personal_data(
    info: GraphInfo, record: CaseRecord, allowed: tuple[str, ...]
) -> dict[str, str]:
    """The complainant's data the receiver may have: only the fields its configuration
    allows, and nothing of an anonymous or confidential complaint."""
    if not allowed:
        return {}
    complainant = await info.context.loaders.complainants().load((record.source, record.local_id))
    if complainant is None or complainant.is_anonymous or complainant.is_confidential:
        return {}
    values = {name: getattr(complainant, name, None) for name in allowed}
    return {name: str(value) for name, value in values.items() if value}


REOPENING = frozenset({CanonicalStatus.REOPENED})
"""The only statuses a finished case (resolved, closed, rejected, ...) may move to."""


async def report_progress(info: GraphInfo, input: ReportProgressInput) -> ReportProgressPayload:
    writes, principal = writer_principal(info)
    try:
        record = await _own_case(info, input.case_id)
        _owner_check(info, principal, record, inspector_ok=False)
        if not writes.can_write(record.source, "status"):
            raise Refusal(
                WriteErrorCode.AGENCY_CANNOT_WRITE,
                f"the system '{record.source}' holding this case takes no status changes",
                "caseId",
            )
        current = record.status
        if (
            isinstance(current, CanonicalStatus)
            and current.is_finished
            and input.status not in REOPENING
        ):
            raise Refusal(
                WriteErrorCode.STATUS_NOT_ALLOWED,
                f"status {input.status.value} not allowed from {current.value}: a finished case "
                "may only be REOPENED",
                "status",
            )
        problem = writes.problem(record.source, status=input.status)
        if problem is not None:
            raise Refusal(
                WriteErrorCode.STATUS_NOT_ALLOWED,
                f"status {input.status.value} cannot be written: {problem}",
                "status",
            )
        request = {"caseId": str(input.case_id), "status": input.status.value, "note": input.note}
        payload = {
            "status": input.status.value,
            "note": input.note,
            "at": datetime.now(UTC).isoformat(),
        }
        entry = await submit_write(
            writes,
            "progress",
            principal,
            input.idempotency_key,
            request,
            payload,
            "status",
            record.source,
            record.local_id,
        )
    except Refusal as refusal:
        return ReportProgressPayload(case=None, write=None, errors=[refusal.error()])
    refresh_after_write(info)
    case = await load_case_in(info, entry.source, entry.case_id)
    return ReportProgressPayload(case=case, write=Write.of(entry), errors=[])


@strawberry.input
class AddNoteInput:
    case_id: relay.GlobalID
    note: str
    idempotency_key: str


@strawberry.type
class AddNotePayload:
    case: Case | None
    write: Write | None
    errors: list[WriteError]


async def add_note(info: GraphInfo, input: AddNoteInput) -> AddNotePayload:
    writes, principal = writer_principal(info)
    try:
        record = await _own_case(info, input.case_id)
        _owner_check(info, principal, record, inspector_ok=False)
        if not input.note.strip() or len(input.note) > 4000:
            raise Refusal(WriteErrorCode.INVALID_INPUT, "note must be 1 to 4000 characters", "note")
        if not writes.can_write(record.source, "note"):
            raise Refusal(
                WriteErrorCode.AGENCY_CANNOT_WRITE,
                f"the system '{record.source}' holding this case takes no notes",
                "caseId",
            )
        request = {"caseId": str(input.case_id), "note": input.note}
        payload = {"note": input.note, "at": datetime.now(UTC).isoformat()}
        entry = await submit_write(
            writes,
            "note",
            principal,
            input.idempotency_key,
            request,
            payload,
            "note",
            record.source,
            record.local_id,
        )
    except Refusal as refusal:
        return AddNotePayload(case=None, write=None, errors=[refusal.error()])
    refresh_after_write(info)
    case = await load_case_in(info, entry.source, entry.case_id)
    return AddNotePayload(case=case, write=Write.of(entry), errors=[])


@strawberry.type
class Mutation:
    refer_case: ReferCasePayload = strawberry.mutation(
        resolver=refer_case,
        description=(
            "Refer a case to another agency: the receiving agency's system creates the case "
            "(reference, category, location, description, and of the complainant only the "
            "fields the receiver's writes.personal_data names; nothing of an anonymous or "
            "confidential complaint), the sender's records the referral with the receiver's "
            "reference."
        ),
    )
    report_progress: ReportProgressPayload = strawberry.mutation(
        resolver=report_progress,
        description="The owning agency moves its own case on, with a note, in its own system.",
    )
    file_complaint: FileComplaintPayload = strawberry.mutation(
        resolver=file_complaint,
        description=(
            "File a new complaint from an intake app: created in the system of the agency "
            "named, or of the one the gateway's routing rules choose (category and province)."
        ),
    )
    add_note: AddNotePayload = strawberry.mutation(
        resolver=add_note,
        description="The owning agency adds a note to its own case, its status unchanged.",
    )


async def pending_writes(info: GraphInfo, first: int = 100) -> list[Write]:
    """Writes not yet done (PENDING) and those given up (ABANDONED): an inspector sees every
    caller's, anyone else their own."""
    writes, principal = writer_principal(info)
    first = max(1, min(first, 500))
    subject = None if Role.INSPECTOR in principal.roles else principal.subject
    entries = [
        entry
        for state in ("PENDING", "ABANDONED")
        for entry in await writes.entries(state=state, subject=subject, first=first)
    ]
    return [Write.of(entry) for entry in sorted(entries, key=lambda e: e.created_at)[:first]]
