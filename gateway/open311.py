"""The federated cases as a read-only Open311 GeoReport v2 endpoint, for existing Open311 apps.

``/open311/v2/services.json`` lists the unified categories; ``/open311/v2/requests.json`` takes
the standard filters (``service_request_id``, ``service_code``, ``start_date``, ``end_date``,
``status``) plus the common ``page_size`` extension (at most 1000; newest first);
``/open311/v2/requests/{id}.json`` is one case by its global id. Only JSON is served. When a
source fails, the cases of the others are still listed and the response header
``X-Complaint-Graph-Failed-Sources`` names the ones missing.

The caller's key comes as GeoReport v2 passes it, the ``api_key`` request parameter (in the
query string, or in the form body of a POST), or as on /graphql in ``Authorization: Bearer``;
HTTP Basic credentials carrying the key (as password, or as user name with no password) count
too, so that a client that sends no ``api_key`` of its own can be given one in its base URL
(``http://api_key:KEY@host/open311/v2``). ``services.json`` is public, as the specification has
it: the unified categories are no secret. A POST of a new service request files a complaint
into the responsible agency's own system (gateway/open311_filing.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import geothai
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import Authenticator, authenticate_context
from gateway.open311_filing import Open311Filing
from resolvers import Context, Directory, Limits
from resolvers.access import AccessError, AuditUnavailable, CaseAccess, Unauthenticated
from resolvers.loaders import Loaders
from resolvers.writes import Writes
from sources import (
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    CaseRecord,
    Federation,
    SourceError,
    Unmapped,
    moment_problem,
)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_OPEN = frozenset(status for status in CanonicalStatus if not status.is_finished)
_CLOSED = frozenset(status for status in CanonicalStatus if status.is_finished)


def global_id(record: CaseRecord) -> str:
    """The same opaque id the graph gives the case (``node(id)`` resolves it)."""
    return base64.b64encode(f"Case:{record.source}:{record.local_id}".encode()).decode()


def _key(request_id: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(request_id, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, rest = decoded.partition(":")
    source, separator, local_id = rest.partition(":")
    return (source, local_id) if kind == "Case" and separator else None


async def _authorization(request: Request) -> str | None:
    """The caller's credentials as an ``Authorization`` value for the gateway's authenticator:
    the ``api_key`` parameter (query string, or form body of a POST) as a bearer key, else the
    ``Authorization`` header, where Basic credentials give their password, or user name, as
    the key."""
    key = request.query_params.get("api_key")
    if key is None and request.method == "POST":
        key = await _form_api_key(request)
    if key is not None:
        return f"Bearer {key}"
    header = request.headers.get("authorization")
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return header
    try:
        user, _, password = (
            base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return header  # not Basic after all: the authenticator refuses it as it stands
    return f"Bearer {password or user}"


async def _form_api_key(request: Request) -> str | None:
    """``api_key`` from an ``application/x-www-form-urlencoded`` body, GeoReport v2's POST
    encoding (parsed here: starlette's form parser needs python-multipart, not installed)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    values = fields.get("api_key")
    return values[0] if values else None


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


def _undecided(exc: SourceError | AuditUnavailable) -> JSONResponse:
    """Whether the caller may see a case could not be decided (a source the access rule reads
    failed, or the audit log cannot record a denial): a 503 saying which, never a 500."""
    where = f"source {exc.source}: " if isinstance(exc, SourceError) else ""
    return _error(503, f"{where}{exc}")


class Open311Endpoint:
    def __init__(
        self,
        federation: Federation,
        directory: Directory,
        authenticator: Authenticator | None,
        writes: Writes | None = None,
    ) -> None:
        self.federation = federation
        self.directory = directory
        self.authenticator = authenticator
        self.filing = Open311Filing(federation, directory, writes)

    async def _context(self, request: Request) -> Context:
        """The caller's request context, authenticated exactly as on /graphql."""
        context = Context.for_request(self.federation, self.directory, Limits())
        await authenticate_context(context, self.authenticator, await _authorization(request))
        return context

    async def _access(self, request: Request) -> CaseAccess | Response:
        """The caller's access, exactly as on /graphql; a 401 when it may read no case."""
        access = (await self._context(request)).case_access
        try:
            access.require_role()
        except AccessError as exc:
            return _error(401 if isinstance(exc, Unauthenticated) else 403, str(exc))
        return access

    def routes(self) -> list[Route]:
        return [
            Route("/open311/v2/services.json", self.services),
            Route("/open311/v2/services/{code}.json", self.service_definition),
            Route("/open311/v2/requests.json", self.requests, methods=["GET", "POST"]),
            Route("/open311/v2/requests/{id}.json", self.one_request),
            Route("/open311/v2/tokens/{token}.json", self.token),
        ]

    async def services(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "service_code": category.code,
                    "service_name": category.name_th,
                    "description": category.name_en,
                    "metadata": False,
                    "type": "realtime",
                    "keywords": None,
                    "group": None,
                }
                for category in self.directory.categories.values()
            ]
        )

    async def service_definition(self, request: Request) -> Response:
        """GeoReport's per-service attributes: none here (every service has ``metadata``
        false), so a client asking anyway gets a 404 in the specification's error format."""
        code = request.path_params["code"]
        known = code in self.directory.categories
        return _error(404, f"service {code} has no definition" if known else f"no service {code}")

    async def requests(self, request: Request) -> Response:
        if request.method == "POST":  # who may file is the filing's to say: not a reader's
            return await self.filing.post(await self._context(request), request)
        access = await self._access(request)
        if isinstance(access, Response):
            return access
        query = request.query_params
        if query.get("service_request_id"):
            return await self._by_ids(query["service_request_id"].split(","), access)
        try:
            where = self._filter(query.get("service_code"), query.get("status"), query)
            size = int(query.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError as exc:
            return _error(400, str(exc))
        if not 1 <= size <= MAX_PAGE_SIZE:
            return _error(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        where = await access.restrict(where)
        page = await self.federation.page(where, CaseOrder(), None, size)
        failed = sorted(error.source for error in page.failures)
        return self._listing([self._request(record) for record in page.records], failed)

    async def token(self, request: Request) -> Response:
        context = await self._context(request)
        if context.case_access.refusal is not None:
            return _error(401, context.case_access.refusal)
        return await self.filing.token(context, request.path_params["token"])

    async def one_request(self, request: Request) -> Response:
        access = await self._access(request)
        if isinstance(access, Response):
            return access
        key = _key(request.path_params["id"])
        source = self.federation.get(key[0]) if key is not None else None
        if key is None or source is None:
            return _error(404, "no such service request")
        found = await source.load_cases([key[1]])
        record = found.get(key[1])
        try:
            shown = record is not None and await access.visible(record, Loaders(self.federation))
        except (SourceError, AuditUnavailable) as exc:
            return _undecided(exc)
        if record is None or not shown:
            return _error(404, "no such service request")  # hidden and missing look the same
        return JSONResponse([self._request(record)])

    async def _by_ids(self, request_ids: Sequence[str], access: CaseAccess) -> Response:
        """The asked-for requests in the order asked, one batched load per source at once."""
        keys = {request_id: _key(request_id) for request_id in request_ids[:MAX_PAGE_SIZE]}
        wanted: dict[str, list[str]] = {}
        for key in keys.values():
            if key is not None and self.federation.get(key[0]) is not None:
                wanted.setdefault(key[0], []).append(key[1])
        sources = list(wanted)
        answers = await asyncio.gather(
            *(self.federation.sources[s].load_cases(wanted[s]) for s in sources),
            return_exceptions=True,
        )
        found: dict[tuple[str, str], CaseRecord] = {}
        failed: list[str] = []
        for source_id, answer in zip(sources, answers, strict=True):
            if isinstance(answer, SourceError):
                failed.append(source_id)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                found.update({(source_id, local_id): r for local_id, r in answer.items()})
        loaders = Loaders(self.federation)
        records = list(found.values())
        try:
            shown = await asyncio.gather(*(access.visible(r, loaders) for r in records))
        except (SourceError, AuditUnavailable) as exc:
            return _undecided(exc)
        found = {(r.source, r.local_id): r for r, ok in zip(records, shown, strict=True) if ok}
        listed = [self._request(found[k]) for k in keys.values() if k is not None and k in found]
        return self._listing(listed, failed)

    def _listing(self, listed: list[dict[str, Any]], failed: list[str]) -> Response:
        headers = {"X-Complaint-Graph-Failed-Sources": ",".join(failed)} if failed else None
        return JSONResponse(listed, headers=headers)

    def _filter(self, codes: str | None, status: str | None, query: Any) -> CaseFilter:
        statuses = None
        if status is not None:
            if status not in ("open", "closed"):
                raise ValueError("status must be 'open' or 'closed'")
            statuses = _OPEN if status == "open" else _CLOSED
        start = datetime.fromisoformat(query["start_date"]) if query.get("start_date") else None
        end = datetime.fromisoformat(query["end_date"]) if query.get("end_date") else None
        for name, value in (("start_date", start), ("end_date", end)):
            problem = moment_problem(name, value) if value is not None else None
            if problem is not None:
                raise ValueError(f"{problem} (W3C date-time)")
        return CaseFilter(
            statuses=statuses,
            categories=frozenset(codes.split(",")) if codes else None,
            received_from=start,
            # GeoReport's end_date is inclusive; the filter's bound is exclusive.
            received_before=end + timedelta(microseconds=1) if end is not None else None,
        )

    def _request(self, record: CaseRecord) -> dict[str, Any]:
        category = None if isinstance(record.category, Unmapped) else record.category
        named = self.directory.categories.get(category) if category else None
        finished = isinstance(record.status, CanonicalStatus) and record.status.is_finished
        place = record.location
        subdistrict = (
            geothai.subdistrict(place.subdistrict_code) if place.subdistrict_code else None
        )
        agency = self.federation.sources[record.source].agency
        text = f"{record.title}\n\n{record.description}" if record.description else record.title
        return {
            "service_request_id": global_id(record),
            "status": "closed" if finished else "open",
            "status_notes": record.status_notes or record.source_status,
            "service_name": named.name_th if named else None,
            "service_code": category or record.source_category,
            "description": text[:4000],
            "agency_responsible": agency.name_th,
            "service_notice": None,
            "requested_datetime": record.received_at.isoformat(),
            "updated_datetime": record.updated_at.isoformat(),
            "expected_datetime": record.due_at.isoformat() if record.due_at else None,
            "address": place.address,
            "address_id": None,
            "zipcode": subdistrict.postal_codes[0]
            if subdistrict and subdistrict.postal_codes
            else None,
            "lat": place.latitude,
            "long": place.longitude,
            "media_url": record.media_urls[0] if record.media_urls else None,
        }
