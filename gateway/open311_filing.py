"""POST ``/open311/v2/requests.json``: a civic reporting app files a complaint into the graph.

GeoReport v2's "POST Service Request", form-encoded: ``service_code`` is a unified category
(``services.json`` lists them), a location (``lat`` and ``long``, ``address_string`` or
``address_id``) is required, ``description`` is the complaint, ``first_name``, ``last_name``
and ``phone`` say who complains. Thai areas ride in ``attribute[province_code]``,
``attribute[district_code]`` and ``attribute[subdistrict_code]`` (the specification's
extension point), ``attribute[agency]`` names an agency instead of the routing rules, and an
``Idempotency-Key`` header makes a resend safe (without one, every POST is a new complaint).

It is ``fileComplaint`` (resolvers/intake.py) with the same key rules, routing, outbox and
audit. The answer is ``[{"service_request_id": …}]`` once the agency's system created the
case (the graph's global id: ``requests/{id}.json`` and ``node(id)`` open it), or
``[{"token": …}]`` while its system cannot be reached; ``tokens/{token}.json`` then gives the
id when the outbox has created it. Refusals are the specification's error array: 400 bad
input, 401/403 credentials, 404 an unknown service_code, 409 a reused Idempotency-Key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolvers import Context, Directory
from resolvers.access import AccessError, Role, Unauthenticated
from resolvers.intake import Complaint, created_case_id, file_complaint_as, filer_principal
from resolvers.write_results import Refusal, WriteErrorCode
from resolvers.writes import Writes
from sources import Channel, Federation, WriteEntry

_STATUS = {
    WriteErrorCode.INVALID_INPUT: 400,
    WriteErrorCode.NO_ROUTE: 400,
    WriteErrorCode.AGENCY_CANNOT_RECEIVE: 400,
    WriteErrorCode.IDEMPOTENCY_KEY_REUSED: 409,
}

_AREAS = {
    "province_code": "attribute[province_code]",
    "district_code": "attribute[district_code]",
    "subdistrict_code": "attribute[subdistrict_code]",
}


class BadRequest(ValueError):
    """A POST the specification's rules refuse; ``status`` is its HTTP code."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status


def error(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


async def form_fields(request: Request) -> dict[str, str]:
    """The request's parameters: the query string, then the form body over it (GeoReport v2
    posts ``application/x-www-form-urlencoded``; starlette's form parser needs an extra)."""
    fields = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/x-www-form-urlencoded":
        body = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        fields.update({name: values[0] for name, values in body.items()})
    return fields


def _number(fields: Mapping[str, str], name: str) -> float | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequest(400, f"{name} must be a number, not {value!r}") from None


def complaint_of(fields: Mapping[str, str], directory: Directory) -> Complaint:
    """The complaint a POST describes, or :class:`BadRequest` for what GeoReport v2 requires."""
    code = fields.get("service_code", "").strip()
    if not code:
        raise BadRequest(400, "service_code was not provided")
    service = directory.categories.get(code)
    if service is None:
        raise BadRequest(404, f"service_code {code} was not found (see services.json)")
    latitude, longitude = _number(fields, "lat"), _number(fields, "long")
    address = fields.get("address_string", "").strip() or fields.get("address_id", "").strip()
    if (latitude is None) != (longitude is None):
        raise BadRequest(400, "lat and long go together")
    if latitude is None and not address:
        raise BadRequest(400, "a location is required: lat and long, address_string or address_id")
    description = fields.get("description", "").strip()
    if len(description) > 4000:
        raise BadRequest(400, "description must be at most 4000 characters")
    first_line = description.splitlines()[0].strip() if description else ""
    name = " ".join(
        part for part in (fields.get("first_name", "").strip(), fields.get("last_name", "")) if part
    ).strip()
    person = {"name": name, "phone": fields.get("phone", "").strip()}
    areas = {key: fields.get(name, "").strip() or None for key, name in _AREAS.items()}
    return Complaint(
        title=(first_line or service.name_th)[:200],
        description=description,
        category=code,
        channel=Channel.MOBILE_APP if fields.get("device_id") else Channel.WEB,
        province_code=areas["province_code"],
        district_code=areas["district_code"],
        subdistrict_code=areas["subdistrict_code"],
        address=address or None,
        latitude=latitude,
        longitude=longitude,
        to_agency=fields.get("attribute[agency]", "").strip() or None,
        complainant={k: v for k, v in person.items() if v},
    )


def answer(entry: WriteEntry, agency: str) -> Response:
    """A created case's id; a token while its agency's system is being retried."""
    if entry.state == "DONE":
        notice = f"received by {agency}"
        return JSONResponse(
            [
                {
                    "service_request_id": created_case_id(entry),
                    "service_notice": notice,
                    "account_id": None,
                }
            ]
        )
    if entry.state == "PENDING":
        notice = "the agency's system is not answering now: ask tokens/{token}.json later"
        return JSONResponse([{"token": entry.key, "service_notice": notice, "account_id": None}])
    return error(502, f"the agency's system refused the request: {entry.last_error}")


class Open311Filing:
    """The POST and the token lookup; the read endpoints are gateway/open311.py's."""

    def __init__(self, federation: Federation, directory: Directory, writes: Writes | None):
        self.federation = federation
        self.directory = directory
        self.writes = writes

    async def post(self, context: Context, request: Request) -> Response:
        context.writes = self.writes
        try:
            writes, principal = filer_principal(context)
        except AccessError as exc:
            return error(401 if isinstance(exc, Unauthenticated) else 403, str(exc))
        try:
            complaint = complaint_of(await form_fields(request), self.directory)
        except BadRequest as exc:
            return error(exc.status, str(exc))
        key = request.headers.get("idempotency-key") or f"open311-{uuid.uuid4().hex}"
        try:
            filed = await file_complaint_as(context, writes, principal, complaint, key)
        except Refusal as refusal:
            where = f" ({refusal.field})" if refusal.field else ""
            return error(_STATUS.get(refusal.code, 400), refusal.message + where)
        agency = self.directory.agencies[filed.agency]
        return answer(filed.entry, f"{agency.name_th} ({agency.code})")

    async def token(self, context: Context, token: str) -> Response:
        """GeoReport v2's "GET service_request_id from a token": the caller's own filings
        (an inspector's: anyone's), the id once the agency's system has created the case."""
        principal = context.case_access.principal
        entry = await self.writes.get(token) if self.writes is not None else None
        mine = entry is not None and (
            entry.subject == principal.subject or Role.INSPECTOR in principal.roles
        )
        if entry is None or entry.action != "file" or not mine:
            return error(404, "no such token")
        if entry.state == "ABANDONED":
            return error(502, f"the agency's system refused the request: {entry.last_error}")
        found: dict[str, str] = {"token": token}
        if entry.state == "DONE":
            found["service_request_id"] = created_case_id(entry)
        return JSONResponse([found])
