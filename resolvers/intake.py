"""``fileComplaint``: a new complaint from an intake app, created in the responsible agency's own
system through the outbox, like a referral's first step.

The agency is the one the input names, or else the one the gateway's routing rules choose
(``writes.routing``: category and province to agency, first match wins, then a default). The
same :func:`file_complaint_as` serves the gateway's Open311 endpoint (POST ``requests.json``),
so a civic reporting app and a GraphQL client are checked, routed and audited alike.

Who may file: inspectors, agency keys (a front desk taking a complaint for whichever agency
must act) and keys with the ``complaints:file`` scope (an intake app's key, whatever its
role); callers without credentials only when ``writes.anonymous_filing`` is on. Analysts
without the scope file nothing.
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime

import geothai
import strawberry

from resolvers.access import Forbidden, Principal, Role, Unauthenticated
from resolvers.agency import Agency
from resolvers.case import Case, global_key, load_case_in
from resolvers.context import Context, GraphInfo
from resolvers.write_results import (
    Refusal,
    Write,
    WriteError,
    WriteErrorCode,
    refresh_after_write,
    submit_write,
)
from resolvers.writes import Route, Writes
from sources import CanonicalStatus, Channel, WriteEntry

FILE_SCOPE = "complaints:file"
"""The scope that lets a key file complaints whatever its role (an intake app's key)."""

MAX_TITLE, MAX_DESCRIPTION, MAX_PERSONAL = 200, 4000, 200


@strawberry.input(description="Who complains, as far as they choose to say (all optional).")
class ComplainantInput:
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    citizen_id: str | None = strawberry.field(default=None, description="13 digits.")


@strawberry.input
class FileComplaintInput:
    title: str = strawberry.field(description="1 to 200 characters.")
    description: str = strawberry.field(default="", description="Up to 4000 characters.")
    category: str = strawberry.field(description="A unified category code (Query.categories).")
    channel: Channel = Channel.WEB
    province_code: str | None = strawberry.field(
        default=None, description="2 digits; with district and subdistrict, routes the case."
    )
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    to_agency: str | None = strawberry.field(
        default=None, description="The receiving agency's code; absent: the routing rules choose."
    )
    complainant: ComplainantInput | None = strawberry.field(
        default=None,
        description=(
            "Sent to the receiving agency only as far as its configuration allows "
            "(writes.personal_data); the gateway keeps none of it once delivered."
        ),
    )
    idempotency_key: str = strawberry.field(
        description="Sent again (or concurrently) with the same key, one case is created."
    )


@strawberry.type
class FileComplaintPayload:
    case: Case | None = strawberry.field(
        description=(
            "The new case in the receiving agency's system: null while PENDING, and for a "
            "caller who may not read that agency's cases (see write.receivingReference)."
        )
    )
    case_id: strawberry.ID | None = strawberry.field(
        description="The new case's global id once created, whether or not the caller may read it."
    )
    agency: Agency | None = strawberry.field(description="The agency the complaint went to.")
    routed_by: str | None = strawberry.field(
        description="Why that agency: 'input' (named), 'rule N' (the Nth rule) or 'default'."
    )
    write: Write | None
    errors: list[WriteError]


@dataclass(frozen=True)
class Complaint:
    """A complaint to file, in canonical terms, however it arrived (GraphQL, Open311)."""

    title: str
    description: str
    category: str
    channel: Channel = Channel.WEB
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    to_agency: str | None = None
    complainant: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Filed:
    entry: WriteEntry
    agency: str
    routed_by: str


def filer_principal(context: Context) -> tuple[Writes, Principal]:
    """The outbox and the caller, when the caller may file; else an access error saying why."""
    access = context.case_access
    if access.refusal is not None:
        raise Unauthenticated(access.refusal)  # credentials sent and refused: say so
    writes = context.writes
    if writes is None:
        raise Forbidden("this gateway has no outbox: writes are not configured")
    principal = access.principal
    if not principal.authenticated:
        if not writes.anonymous_filing:
            raise Unauthenticated(
                "filing a complaint needs an API key or a token (this gateway takes no "
                "anonymous complaints: writes.anonymous_filing)"
            )
        return writes, principal
    if principal.roles & {Role.INSPECTOR, Role.AGENCY} or principal.has_scope(FILE_SCOPE):
        return writes, principal
    raise Forbidden(
        f"{principal.subject} may not file complaints: inspectors, agency keys and keys "
        f"with the {FILE_SCOPE} scope do"
    )


def _text(value: str | None, name: str, most: int, least: int = 0) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not least <= len(value) <= most:
        raise Refusal(
            WriteErrorCode.INVALID_INPUT, f"{name} must be {least} to {most} characters", name
        )
    return value or None


def _place(complaint: Complaint) -> tuple[str | None, str | None, str | None]:
    """The province, district and subdistrict codes, checked against the Thai
    administrative areas and each within the one above; a province implied by its district
    or subdistrict."""
    codes = [complaint.province_code, complaint.district_code, complaint.subdistrict_code]
    names = ("provinceCode", "districtCode", "subdistrictCode")
    lookups = (geothai.province, geothai.district, geothai.subdistrict)
    for index, (code, name, lookup) in enumerate(zip(codes, names, lookups, strict=True)):
        if code is None:
            continue
        if len(code) != 2 * (index + 1) or not code.isdigit() or lookup(code) is None:
            raise Refusal(WriteErrorCode.INVALID_INPUT, f"{name} {code!r} is no such area", name)
        above = codes[index - 1] if index else None
        if above is not None and not code.startswith(above):
            raise Refusal(
                WriteErrorCode.INVALID_INPUT, f"{name} {code} is not within {above}", name
            )
    deepest = next((c for c in reversed(codes) if c is not None), None)
    province = codes[0] or (deepest[:2] if deepest else None)
    return province, codes[1] or (codes[2][:4] if codes[2] else None), codes[2]


def _checked(context: Context, complaint: Complaint) -> Complaint:
    title = _text(complaint.title, "title", MAX_TITLE, least=1)
    description = _text(complaint.description, "description", MAX_DESCRIPTION) or ""
    if complaint.category not in context.directory.categories:
        known = ", ".join(context.directory.categories)
        raise Refusal(
            WriteErrorCode.INVALID_INPUT,
            f"category {complaint.category!r} is not a category here ({known})",
            "category",
        )
    for name, value, bound in (
        ("latitude", complaint.latitude, 90),
        ("longitude", complaint.longitude, 180),
    ):
        if value is not None and not -bound <= value <= bound:
            raise Refusal(WriteErrorCode.INVALID_INPUT, f"{name} must be within ±{bound}", name)
    province, district, subdistrict = _place(complaint)
    person = {
        name: checked
        for name, value in complaint.complainant.items()
        if (checked := _text(value, f"complainant.{name}", MAX_PERSONAL)) is not None
    }
    citizen = person.get("citizen_id")
    if citizen is not None and not (len(citizen) == 13 and citizen.isdigit()):
        raise Refusal(
            WriteErrorCode.INVALID_INPUT,
            "complainant.citizenId must be 13 digits",
            "complainant.citizenId",
        )
    return Complaint(
        title=title or "",
        description=description,
        category=complaint.category,
        channel=complaint.channel,
        province_code=province,
        district_code=district,
        subdistrict_code=subdistrict,
        address=_text(complaint.address, "address", MAX_DESCRIPTION),
        latitude=complaint.latitude,
        longitude=complaint.longitude,
        to_agency=complaint.to_agency,
        complainant=person,
    )


def _route(writes: Writes, complaint: Complaint) -> Route:
    if complaint.to_agency is not None:
        return Route(complaint.to_agency, "input")
    route = writes.route(complaint.category, complaint.province_code)
    if route is None:
        where = f" in province {complaint.province_code}" if complaint.province_code else ""
        raise Refusal(
            WriteErrorCode.NO_ROUTE,
            f"no routing rule takes {complaint.category} complaints{where}, and there is no "
            "default agency: name one in toAgency",
            "toAgency",
        )
    return route


def _receiver(context: Context, writes: Writes, complaint: Complaint, agency: str) -> str:
    """The source that will create the case, when it can take this one."""
    source = context.directory.source_for_agency(agency)
    if source is None or not writes.can_write(source, "create"):
        why = (
            "no such agency"
            if agency not in context.directory.agencies
            else "no linked system"
            if source is None
            else f"its system '{source}' takes no new cases"
        )
        raise Refusal(
            WriteErrorCode.AGENCY_CANNOT_RECEIVE,
            f"agency {agency} cannot receive complaints: {why}",
            "toAgency",
        )
    problem = writes.problem(
        source,
        category=complaint.category,
        status=CanonicalStatus.RECEIVED,
        channel=complaint.channel,
    )
    if problem is not None:
        raise Refusal(
            WriteErrorCode.AGENCY_CANNOT_RECEIVE,
            f"agency {agency} cannot receive this complaint: {problem}",
            "toAgency",
        )
    return source


async def file_complaint_as(
    context: Context, writes: Writes, principal: Principal, complaint: Complaint, key: str
) -> Filed:
    """Check, route and record the complaint, and create it now if the agency answers;
    :class:`Refusal` when it cannot be filed. A PENDING write is not a refusal."""
    complaint = _checked(context, complaint)
    route = _route(writes, complaint)
    source = _receiver(context, writes, complaint, route.agency)
    now = datetime.now(UTC).isoformat()
    request = {
        "title": complaint.title,
        "description": complaint.description,
        "category": complaint.category,
        "channel": complaint.channel.value,
        "provinceCode": complaint.province_code,
        "districtCode": complaint.district_code,
        "subdistrictCode": complaint.subdistrict_code,
        "address": complaint.address,
        "latitude": complaint.latitude,
        "longitude": complaint.longitude,
        "toAgency": complaint.to_agency,  # as asked: a resend matches whatever routing says now
        "personalData": sorted(complaint.complainant),  # which fields; never their values
    }
    payload = {
        "case": {
            "title": complaint.title,
            "description": complaint.description,
            "category": complaint.category,
            "channel": complaint.channel.value,
            "received_at": now,
            "sender_agency": principal.agency or "",
            "sender_reference": "",  # the outbox gives each filing one of its own
            "province_code": complaint.province_code,
            "district_code": complaint.district_code,
            "subdistrict_code": complaint.subdistrict_code,
            "address": complaint.address,
            "latitude": complaint.latitude,
            "longitude": complaint.longitude,
            "note": None,
            "complainant": complaint.complainant or None,
        },
        "at": now,
    }
    entry = await submit_write(
        writes, "file", principal, key, request, payload, "create", source, "", source
    )
    agency = context.directory.agency_of_source[str(entry.to_source)].code
    # A resend finds the first send's write: routed as it was then, if the rules changed since.
    return Filed(entry, agency, route.why if entry.to_source == source else "earlier rules")


async def file_complaint(info: GraphInfo, input: FileComplaintInput) -> FileComplaintPayload:
    writes, principal = filer_principal(info.context)
    person = input.complainant or ComplainantInput()
    complaint = Complaint(
        title=input.title,
        description=input.description,
        category=input.category,
        channel=input.channel,
        province_code=input.province_code,
        district_code=input.district_code,
        subdistrict_code=input.subdistrict_code,
        address=input.address,
        latitude=input.latitude,
        longitude=input.longitude,
        to_agency=input.to_agency,
        complainant={
            name: value
            for name, value in (
                ("name", person.name),
                ("phone", person.phone),
                ("address", person.address),
                ("citizen_id", person.citizen_id),
            )
            if value is not None
        },
    )
    try:
        filed = await file_complaint_as(
            info.context, writes, principal, complaint, input.idempotency_key
        )
    except Refusal as refusal:
        return FileComplaintPayload(
            case=None, case_id=None, agency=None, routed_by=None, write=None,
            errors=[refusal.error()],
        )  # fmt: skip
    entry = filed.entry
    refresh_after_write(info)
    created = entry.state == "DONE" and entry.their_reference is not None
    case = None
    if created and principal.roles and entry.to_source is not None:
        case = await load_case_in(info, entry.to_source, str(entry.their_reference))
    agency = info.context.directory.agencies.get(filed.agency)
    return FileComplaintPayload(
        case=case,
        case_id=strawberry.ID(created_case_id(entry)) if created else None,
        agency=Agency.of(agency) if agency is not None else None,
        routed_by=filed.routed_by,
        write=Write.of(entry),
        errors=[],
    )


def created_case_id(entry: WriteEntry) -> str:
    """The global id of the case a finished filing created (what ``node(id)`` resolves)."""
    key = global_key(str(entry.to_source), str(entry.their_reference))
    return b64encode(f"Case:{key}".encode()).decode()
