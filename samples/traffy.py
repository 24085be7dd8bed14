"""A city reporting platform in the style of Traffy Fondue, spoken to through Open311 GeoReport v2.

Citizens send a photo and a GPS point (kept natively as ``"lon,lat"``); one report can be routed
to several agencies; its state is one of start / forward / inprogress / finish / irrelevant. The
platform publishes GeoReport v2 (``services.json``, ``requests.json`` with the page/page_size
extension, ``requests/{id}.json``) and puts what the standard lacks in ``extended_attributes``
and ``notes``. A small Starlette app over synthetic data, for the demo and the tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from samples import links
from samples._stats_protocol import Facts, aggregate, period
from samples._vocabulary import CATEGORIES
from samples.generator import SyntheticCase, generate_cases

DEFAULT_SEED = 2024
PROVINCES = ("10", "40")

SERVICE_CODES = {
    "encroachment": "LAND_DISPUTE",
    "road": "ROADS",
    "flooding": "WATER",
    "light": "ELECTRICITY",
    "noise": "NUISANCE",
    "corruption": "CORRUPTION",
    "vendor": "CONSUMER",
    "debt": "DEBT",
    "waste": "ENVIRONMENT",
    "drugs": "DRUGS",
    "welfare": "WELFARE",
    "other": "OTHER",
}
STATES = {
    "start": "RECEIVED",
    "forward": "FORWARDED",
    "inprogress": "IN_PROGRESS",
    "finish": "RESOLVED",
    "irrelevant": "REJECTED",
}
CHANNELS = {"line": "LINE", "app": "MOBILE_APP", "web": "WEB", "other": "OTHER"}
AGENCY_CODES = {"DDC": "MOI-DDC", "1111": "OPM-1111"}
REFERRAL_TYPES = {"forward": "FORWARD", "escalate": "ESCALATE", "return": "RETURN"}

_BANGKOK = timezone(timedelta(hours=7))
_SERVICE = {unified: code for code, unified in SERVICE_CODES.items()}
_NAMES = {code: th for code, th, _ in CATEGORIES}
_STATE_OF = {
    "RECEIVED": "start",
    "ACCEPTED": "start",
    "FORWARDED": "forward",
    "IN_PROGRESS": "inprogress",
    "ON_HOLD": "inprogress",
    "REOPENED": "inprogress",
    "RESOLVED": "finish",
    "CLOSED": "finish",
    "REJECTED": "irrelevant",
    "DUPLICATE": "irrelevant",
    "CANCELLED": "irrelevant",
}
_CHANNEL_OF = {"LINE": "line", "MOBILE_APP": "app", "WEB": "web"}
_ROUTED_TO = ("สำนักงานเขต", "การไฟฟ้านครหลวง", "การประปานครหลวง", "สำนักการโยธา", "สำนักสิ่งแวดล้อม")


def seen_status(canonical: str) -> str:
    """The canonical status the graph shows after the platform's five states have coarsened it."""
    return STATES[_STATE_OF[canonical]]


def _local(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(_BANGKOK).isoformat()


def _referrals(case: SyntheticCase) -> list[dict[str, Any]]:
    """Chain cases report back to the Damrongdhama Center that first took them."""
    if not links.in_chain(case.number):
        return []
    return [
        {
            "to": "DDC",
            "at": _local(case.received_at + timedelta(days=3)),
            "type": "return",
            "state": "finish",
            "ref": links.damrongdhama_id(case.number),
        }
    ]


def georeport(case: SyntheticCase) -> dict[str, Any]:
    """One report as a GeoReport v2 service request, with the platform's extensions."""
    state = _STATE_OF[case.status]
    routed = [_ROUTED_TO[(case.number + i) % len(_ROUTED_TO)] for i in range(1 + case.number % 3)]
    request_id = links.traffy_id(case.number)
    return {
        "service_request_id": request_id,
        "status": "closed" if state in ("finish", "irrelevant") else "open",
        "status_notes": state,
        "service_name": _NAMES[case.category],
        "service_code": _SERVICE[case.category],
        "description": case.description,
        "agency_responsible": ", ".join(routed),
        "service_notice": None,
        "requested_datetime": _local(case.received_at),
        "updated_datetime": _local(case.updated_at),
        "expected_datetime": _local(case.due_at),
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": case.latitude,
        "long": case.longitude,
        "media_url": f"https://photos.traffy.example/{request_id}.jpg",
        "extended_attributes": {
            "state": state,
            "title": case.title,
            "channel": _CHANNEL_OF.get(case.channel, "other"),
            "coords": f"{case.longitude},{case.latitude}",
            "province_code": case.province_code,
            "district_code": case.district_code,
            "subdistrict_code": case.subdistrict_code,
            "referrals": _referrals(case),
        },
        "notes": [
            {"datetime": _local(e.at), "description": e.note or None, "state": _STATE_OF[e.status]}
            for e in case.history
        ],
    }


def services() -> list[dict[str, Any]]:
    return [
        {
            "service_code": code,
            "service_name": _NAMES[unified],
            "description": None,
            "metadata": False,
            "type": "realtime",
            "keywords": None,
            "group": None,
        }
        for code, unified in SERVICE_CODES.items()
    ]


@dataclass
class Intake:
    """What POST requests.json was sent, for tests to look at, and how the platform answers.

    ``answer_with`` "token" answers a token whose id ``GET tokens/{token}.json`` gives only after
    ``token_delay`` asks of it (a platform that files reports in the background)."""

    posts: list[dict[str, str]] = field(default_factory=list)
    """Each POST's form as received (api_key included), refused ones too."""
    post_headers: list[dict[str, str]] = field(default_factory=list)
    """Each POST's headers, in the order of ``posts``."""
    answered: list[tuple[dict[str, str], int]] = field(default_factory=list)
    """Each POST's headers and the status it was answered, in the order of the answers."""
    created: list[str] = field(default_factory=list)
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Idempotency-Key -> the first answer given for it."""
    answer_with: Literal["id", "token"] = "id"
    token_delay: int = 1
    tokens: dict[str, str] = field(default_factory=dict)
    token_asks: dict[str, int] = field(default_factory=dict)
    unavailable: bool = False
    """While set, every POST answers 503 and files nothing (the platform is down)."""
    delay_seconds: float = 0.0
    """How long filing a POST takes the platform before it answers (a slow platform)."""


POST_ATTRIBUTES = ("title", "province_code", "district_code", "subdistrict_code")
"""The service attributes (``attribute[code]``) the platform keeps in extended_attributes,
beside ``idempotency_key``, by which ``requests.json?idempotency_key=`` finds a request."""


def _error(status: int, description: str) -> Response:
    """GeoReport v2's error format: an array of {code, description}."""
    return JSONResponse([{"code": status, "description": description}], status_code=status)


def _new_report(request_id: str, form: dict[str, str], now: datetime) -> dict[str, Any]:
    """A posted request as the platform lists it: state start, its attributes extended."""
    attribute = {
        name: form.get(f"attribute[{name}]") for name in (*POST_ATTRIBUTES, "idempotency_key")
    }
    description = form.get("description", "")
    lat, lon = form.get("lat"), form.get("long")
    latitude = float(lat) if lat else None
    longitude = float(lon) if lon else None
    code = form["service_code"]
    return {
        "service_request_id": request_id,
        "status": "open",
        "status_notes": "start",
        "service_name": _NAMES[SERVICE_CODES[code]],
        "service_code": code,
        "description": description,
        "agency_responsible": _ROUTED_TO[0],
        "service_notice": None,
        "requested_datetime": _local(now),
        "updated_datetime": _local(now),
        "expected_datetime": None,
        "address": form.get("address_string"),
        "address_id": form.get("address_id"),
        "zipcode": None,
        "lat": latitude,
        "long": longitude,
        "media_url": form.get("media_url"),
        "extended_attributes": {
            "state": "start",
            "title": attribute["title"] or description.split("\n", 1)[0],
            "channel": "other",
            "coords": f"{longitude},{latitude}" if latitude is not None else None,
            "province_code": attribute["province_code"],
            "district_code": attribute["district_code"],
            "subdistrict_code": attribute["subdistrict_code"],
            "idempotency_key": attribute["idempotency_key"],
            "referrals": [],
        },
        "notes": [{"datetime": _local(now), "description": None, "state": "start"}],
    }


def _posted_problem(form: dict[str, str]) -> str | None:
    """Why GeoReport v2 refuses this POST (400), or None."""
    if not form.get("service_code"):
        return "service_code is required"
    if form["service_code"] not in SERVICE_CODES:
        return f"service_code {form['service_code']!r} is not a service"
    has_point = bool(form.get("lat")) and bool(form.get("long"))
    if not (has_point or form.get("address_string") or form.get("address_id")):
        return "a location is required: lat and long, address_string or address_id"
    try:
        float(form.get("lat") or 0), float(form.get("long") or 0)
    except ValueError:
        return "lat and long must be numbers"
    if len(form.get("description", "")) > 4000:
        return "description is longer than 4000 characters"
    return None


def create_app(
    *,
    seed: int = DEFAULT_SEED,
    count: int = 10_000,
    api_key: str | None = None,
    intake: Intake | None = None,
) -> Starlette:
    """The platform over ``count`` synthetic reports. POST requests.json files a new one when
    its form's ``api_key`` is ``api_key`` (none set: the platform takes no POST); a repeated
    ``Idempotency-Key`` header gets the first answer and files nothing more."""
    intake = intake if intake is not None else Intake()
    numbers = itertools.count(1)
    reports = sorted(
        (
            georeport(case)
            for case in generate_cases(seed=seed, count=count, province_codes=PROVINCES)
        ),
        key=lambda r: (r["requested_datetime"], r["service_request_id"]),
        reverse=True,
    )
    by_id = {report["service_request_id"]: report for report in reports}

    async def list_services(request: Request) -> Response:
        return JSONResponse(services())

    async def list_requests(request: Request) -> Response:
        q = request.query_params
        try:
            since = datetime.fromisoformat(q["start_date"]) if q.get("start_date") else None
            before = datetime.fromisoformat(q["end_date"]) if q.get("end_date") else None
            changed = datetime.fromisoformat(q["updated_after"]) if q.get("updated_after") else None
            page = int(q.get("page", "1"))
            size = min(int(q.get("page_size", "1000")), 1000)
        except ValueError as exc:
            return JSONResponse({"code": 400, "description": str(exc)}, status_code=400)
        if q.get("service_request_id"):
            wanted = q["service_request_id"].split(",")
            return JSONResponse([by_id[i] for i in wanted if i in by_id])
        found = _matching(reports, q, since, before, changed)
        return JSONResponse(found[(page - 1) * size : page * size])

    async def statistics(request: Request) -> Response:
        """The platform's statistics extension (complaint-graph's stats protocol): the
        requests.json filters, ``group_by`` and ``as_of``."""
        q = request.query_params
        names = [name for name in q.get("group_by", "").split(",") if name]
        if any(name not in _GROUPS for name in names):
            return JSONResponse({"code": 400, "description": "unknown group_by"}, status_code=400)
        try:
            since = datetime.fromisoformat(q["start_date"]) if q.get("start_date") else None
            before = datetime.fromisoformat(q["end_date"]) if q.get("end_date") else None
            as_of = datetime.fromisoformat(q["as_of"]) if q.get("as_of") else datetime.now(UTC)
        except ValueError as exc:
            return JSONResponse({"code": 400, "description": str(exc)}, status_code=400)
        found = _matching(reports, q, since, before, None)
        return JSONResponse(aggregate(found, names, as_of, _GROUPS, _facts))

    async def post_request(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        headers = dict(request.headers)
        intake.posts.append(form)
        intake.post_headers.append(headers)
        response = await filed(form, headers)
        intake.answered.append((headers, response.status_code))
        return response

    async def filed(form: dict[str, str], headers: dict[str, str]) -> Response:
        """A new request filed from ``form``, or GeoReport v2's refusal."""
        if intake.unavailable:
            return _error(503, "the platform is down for maintenance")
        if intake.delay_seconds:
            await asyncio.sleep(intake.delay_seconds)
        if api_key is None or form.get("api_key") != api_key:
            return _error(403, "api_key is missing or not valid")
        if (problem := _posted_problem(form)) is not None:
            return _error(400, problem)
        key = headers.get("idempotency-key")
        # No await from here to the answer being kept: two requests with one key, arriving
        # together, cannot both find it unseen.
        if key is not None and key in intake.answers:
            return JSONResponse(intake.answers[key])
        request_id = f"TF-W{next(numbers):05d}"
        report = _new_report(request_id, form, datetime.now(UTC))
        reports.insert(0, report)  # newest first
        by_id[request_id] = report
        intake.created.append(request_id)
        answer: dict[str, Any] = {"service_notice": "ส่งเรื่องถึงหน่วยงานแล้ว", "account_id": None}
        if intake.answer_with == "token":
            token = f"tk-{request_id.lower()}"
            intake.tokens[token] = request_id
            answer["token"] = token
        else:
            answer["service_request_id"] = request_id
        if key is not None:
            intake.answers[key] = [answer]
        return JSONResponse([answer])

    async def token(request: Request) -> Response:
        """The id behind a token, once the platform has filed it (``token_delay`` asks)."""
        name = request.path_params["token"]
        if name not in intake.tokens:
            return _error(404, "no such token")
        asked = intake.token_asks[name] = intake.token_asks.get(name, 0) + 1
        if asked <= intake.token_delay:
            return JSONResponse([{"token": name}])
        return JSONResponse([{"token": name, "service_request_id": intake.tokens[name]}])

    async def one_request(request: Request) -> Response:
        report = by_id.get(request.path_params["id"])
        if report is None:
            return JSONResponse([{"code": 404, "description": "not found"}], status_code=404)
        return JSONResponse([report])

    return Starlette(
        routes=[
            Route("/open311/v2/services.json", list_services),
            Route("/open311/v2/requests.json", list_requests, methods=["GET"]),
            Route("/open311/v2/requests.json", post_request, methods=["POST"]),
            Route("/open311/v2/tokens/{token}.json", token),
            Route("/open311/v2/stats.json", statistics),
            Route("/open311/v2/requests/{id}.json", one_request),
        ]
    )


def _matching(
    reports: list[dict[str, Any]],
    q: Any,
    since: datetime | None,
    before: datetime | None,
    changed: datetime | None,
) -> list[dict[str, Any]]:
    codes = set(q["service_code"].split(",")) if q.get("service_code") else None
    status = q.get("status")
    key = q.get("idempotency_key")
    return [
        r
        for r in reports
        if (codes is None or r["service_code"] in codes)
        and (status is None or r["status"] == status)
        and (since is None or datetime.fromisoformat(r["requested_datetime"]) >= since)
        and (before is None or datetime.fromisoformat(r["requested_datetime"]) < before)
        and (changed is None or datetime.fromisoformat(r["updated_datetime"]) >= changed)
        and (key is None or r["extended_attributes"].get("idempotency_key") == key)
    ]


def _received(report: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(report["requested_datetime"])


_GROUPS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "province": lambda r: [r["extended_attributes"]["province_code"]],
    "district": lambda r: [r["extended_attributes"]["district_code"]],
    "category": lambda r: [r["service_code"]],
    "status": lambda r: [r["extended_attributes"]["state"]],
    "channel": lambda r: [r["extended_attributes"]["channel"]],
    "received_day": lambda r: [period(_received(r), "day")],
    "received_week": lambda r: [period(_received(r), "week")],
    "received_month": lambda r: [period(_received(r), "month")],
    "referred_to": lambda r: (
        sorted({x["to"] for x in r["extended_attributes"]["referrals"]}) or [None]
    ),
}


def _facts(report: dict[str, Any]) -> Facts:
    """The platform publishes no closing time, so its statistics measure no resolution time."""
    state = report["extended_attributes"]["state"]
    due = report["expected_datetime"]
    return Facts(
        received=_received(report),
        state="resolved" if state == "finish" else ("other" if state == "irrelevant" else "open"),
        due=datetime.fromisoformat(due) if due else None,
        closed=None,
    )
