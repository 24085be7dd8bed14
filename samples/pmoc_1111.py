"""A Prime Minister's Office 1111-style complaint service: a JSON API with its own shape.

Its own case codes (``PMOC-2569-000123``), numeric status ids, Thai channel names, times with a
+07:00 offset, an API key header, offset paging, and a batch endpoint. Each complaint's history
is inside it in the batch, and in the list when asked (``embed=history``); a timeline endpoint
gives the same entries by complaint codes. A small Starlette app serving synthetic cases from
memory, so tests and the demo can run it on loopback.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from samples import links
from samples._stats_protocol import Facts, aggregate, period
from samples._vocabulary import CATEGORIES
from samples.generator import FINISHED as _FINISHED
from samples.generator import SyntheticCase, citizen_key, complainant_of, generate_cases

DEFAULT_SEED = 1111
API_KEY_HEADER = "X-PMOC-Key"

STATUS_IDS = {
    "1": "RECEIVED",
    "2": "ACCEPTED",
    "3": "FORWARDED",
    "4": "IN_PROGRESS",
    "5": "ON_HOLD",
    "6": "RESOLVED",
    "7": "CLOSED",
    "8": "REJECTED",
    "9": "DUPLICATE",
    "10": "CANCELLED",
    "11": "REOPENED",
}
CATEGORY_IDS = {str(index): code for index, (code, _, _) in enumerate(CATEGORIES, start=101)}
CHANNEL_NAMES = {
    "สายด่วน 1111": "HOTLINE_1111",
    "ตู้ ปณ. 1111": "LETTER",
    "เว็บไซต์ 1111.go.th": "WEB",
    "ไลน์ @1111": "LINE",
    "แอปพลิเคชัน": "MOBILE_APP",
    "ศูนย์บริการประชาชน": "WALK_IN",
    "รับโอนจากหน่วยงานอื่น": "REFERRAL",
    "โทรศัพท์": "PHONE",
    "อีเมล": "EMAIL",
    "สายด่วน 1567": "HOTLINE_1567",
    "อื่น ๆ": "OTHER",
}

_BANGKOK = timezone(timedelta(hours=7))
_STATUS_ID = {canonical: native for native, canonical in STATUS_IDS.items()}
_CATEGORY_ID = {code: int(native) for native, code in CATEGORY_IDS.items()}
_CHANNEL = {channel: name for name, channel in CHANNEL_NAMES.items()}
_SORTS = {
    "-received_date": ("received_date", True),
    "received_date": ("received_date", False),
    "-updated_date": ("updated_date", True),
    "updated_date": ("updated_date", False),
}


def _local(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(_BANGKOK).isoformat()


AGENCY_CODES = {"TRAFFY": "BMA-TRAFFY", "DDC": "MOI-DDC", "PMOC": "OPM-1111"}
ACTIONS = {"ส่งต่อ": "FORWARD", "ยกระดับ": "ESCALATE", "ส่งกลับ": "RETURN"}


def _operatings(case: SyntheticCase) -> list[dict[str, Any]]:
    """Which agency the centre asked to act: chain cases go on to the city platform."""
    if not links.in_chain(case.number):
        return []
    return [
        {
            "org_code": "TRAFFY",
            "assigned_at": _local(case.received_at + timedelta(days=2)),
            "action": "ส่งต่อ",
            "result": "อยู่ระหว่างดำเนินการ",
            "secrecy": "ลับ" if case.category == "CORRUPTION" else "ปกติ",
            "their_case": links.traffy_id(case.number),
        }
    ]


def _complainant(seed: int, case: SyntheticCase) -> dict[str, Any]:
    """The caller as the 1111 centre records them; ``match_key`` is HMAC(key, citizen id)."""
    who = complainant_of(seed, case.number)
    person = who.person
    return {
        "full_name": person.name if person else None,
        "id_card": person.citizen_id if person else None,
        "mobile": person.phone if person else None,
        "contact_address": person.address if person else None,
        "anonymous": who.is_anonymous,
        "confidential": who.is_confidential,
        "match_key": citizen_key(person.citizen_id) if person else None,
    }


def native_case(case: SyntheticCase, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    return {
        "complaint_code": links.pmoc_id(case.number),
        "topic": case.title,
        "detail": case.description,
        "status_id": int(_STATUS_ID[case.status]),
        "channel_name": _CHANNEL[case.channel],
        "category": {"id": _CATEGORY_ID[case.category]},
        "received_date": _local(case.received_at),
        "updated_date": _local(case.updated_at),
        "due_date": _local(case.due_at),
        "closed_date": _local(case.closed_at),
        "area": {
            "province_id": case.province_code,
            "district_id": case.district_code,
            "subdistrict_id": case.subdistrict_code,
            "address": case.address,
            "lat": case.latitude,
            "lng": case.longitude,
        },
        "operatings": _operatings(case),
        "complainant": _complainant(seed, case),
        "_history": [
            {"at": _local(e.at), "status_id": int(_STATUS_ID[e.status]), "remark": e.note}
            for e in case.history
        ],
    }


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}


def _with_history(item: dict[str, Any]) -> dict[str, Any]:
    return {**_public(item), "history": item["_history"]}


@dataclass
class Intake:
    """What the service's write endpoints were asked, for tests to look at, and a way to make
    them wait: with ``hold`` set, a create is stored, ``arrived`` is set and the answer waits
    until ``hold`` is cleared (a sender that dies meanwhile never hears the new code)."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Idempotency-Key -> the first answer given for it."""
    created: list[str] = field(default_factory=list)
    create_requests: int = 0
    """Create requests received, repeated keys included."""
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def create_app(
    *,
    seed: int = DEFAULT_SEED,
    count: int = 10_000,
    api_key: str | None = None,
    intake: Intake | None = None,
) -> Starlette:
    """The service over ``count`` synthetic cases; requests need ``api_key`` when one is set.
    Writes (create, status, operatings) take an ``Idempotency-Key`` header: a repeated key
    gets the first answer and changes nothing more."""
    cases = [native_case(case, seed) for case in generate_cases(seed=seed, count=count)]
    intake = intake if intake is not None else Intake()
    by_code = {item["complaint_code"]: item for item in cases}
    by_code_order = sorted(cases, key=lambda c: c["complaint_code"])  # stable across pages
    sorted_by = {
        name: sorted(cases, key=lambda c: (c[field], c["complaint_code"]), reverse=descending)
        for name, (field, descending) in _SORTS.items()
    }

    def refused(request: Request) -> Response | None:
        if api_key is not None and request.headers.get(API_KEY_HEADER) != api_key:
            return JSONResponse({"error": "invalid or missing API key"}, status_code=401)
        return None

    async def list_complaints(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        try:
            offset = int(q.get("offset", "0"))
            limit = min(int(q.get("limit", "50")), 500)
        except ValueError as exc:
            return JSONResponse({"error": f"bad parameter: {exc}"}, status_code=400)
        source = sorted_by.get(q.get("sort", "-received_date"))
        if source is None:
            return JSONResponse({"error": "unknown sort"}, status_code=400)
        found = _matching(source, q)
        if isinstance(found, Response):
            return found
        shown = _with_history if q.get("embed") == "history" else _public
        page = [shown(item) for item in found[offset : offset + limit]]
        return JSONResponse({"result": {"items": page, "total": len(found)}})

    async def statistics(request: Request) -> Response:
        """Counts, open, overdue, resolved and duration histograms by ``group_by``, over the
        complaints the list filters select, at ``as_of`` (complaint-graph's stats protocol)."""
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        names = [name for name in q.get("group_by", "").split(",") if name]
        unknown = [name for name in names if name not in _GROUPS]
        if unknown:
            return JSONResponse({"error": f"cannot group by {unknown}"}, status_code=400)
        try:
            as_of = datetime.fromisoformat(q["as_of"]) if q.get("as_of") else datetime.now(UTC)
        except ValueError as exc:
            return JSONResponse({"error": f"bad parameter: {exc}"}, status_code=400)
        found = _matching(cases, q)
        if isinstance(found, Response):
            return found
        return JSONResponse({"result": _statistics(found, names, as_of)})

    async def batch(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        codes = request.query_params.get("codes", "").split(",")
        items = [_with_history(by_code[code]) for code in codes if code in by_code]
        return JSONResponse({"result": {"items": items}})

    async def timelines(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        codes = request.query_params.get("codes", "").split(",")
        entries = [
            {"complaint_code": code, **entry}
            for code in codes
            if code in by_code
            for entry in by_code[code]["_history"]
        ]
        return JSONResponse({"result": entries})

    async def operatings(request: Request) -> Response:
        """Handling records by target: which complaints were sent to agency ``org`` as its
        cases ``their_case`` (a comma list), each entry naming its own complaint. Without
        ``their_case``: every handling record (of ``org`` when given), paged by ``offset`` and
        ``limit`` like the complaint list, in complaint order."""
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        org = q.get("org")
        if "their_case" not in q:
            try:
                offset = int(q.get("offset", "0"))
                limit = min(int(q.get("limit", "50")), 500)
            except ValueError as exc:
                return JSONResponse({"error": f"bad parameter: {exc}"}, status_code=400)
            every = [
                {"complaint_code": item["complaint_code"], **operating}
                for item in by_code_order
                for operating in item["operatings"]
                if org is None or operating["org_code"] == org
            ]
            return JSONResponse({"result": every[offset : offset + limit]})
        wanted = set(q["their_case"].split(","))
        entries = [
            {"complaint_code": item["complaint_code"], **operating}
            for item in cases
            for operating in item["operatings"]
            if operating["org_code"] == org and operating["their_case"] in wanted
        ]
        return JSONResponse({"result": entries})

    async def set_status(request: Request) -> Response:
        """The agency's own staff moving a case on (so partners can be told)."""
        if (denied := refused(request)) is not None:
            return denied
        item = by_code.get(request.path_params["code"])
        status_id = (await request.json()).get("status_id")
        if item is None or str(status_id) not in STATUS_IDS:
            return JSONResponse({"error": "no such complaint or status"}, status_code=400)
        now = _local(datetime.now(UTC))
        item["status_id"] = int(status_id)
        item["updated_date"] = now
        item["_history"].append({"at": now, "status_id": int(status_id), "remark": None})
        resort()
        return JSONResponse({"result": _public(item)})

    def resort() -> None:
        for name, (field_name, descending) in _SORTS.items():
            sorted_by[name].sort(
                key=lambda c: (c[field_name], c["complaint_code"]), reverse=descending
            )

    async def written(request: Request, write: Callable[[Any], Response]) -> Response:
        """One write under its Idempotency-Key: a key seen before gets its first answer."""
        if (denied := refused(request)) is not None:
            return denied
        key = request.headers.get("idempotency-key")
        if key is None:
            return JSONResponse({"error": "Idempotency-Key header required"}, status_code=400)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        # No await from here to the answer being kept: two requests with one key, arriving
        # together, cannot both find it unseen.
        if key in intake.answers:
            return JSONResponse(intake.answers[key])
        answer = write(body)
        if answer.status_code == 200:
            intake.answers[key] = orjson.loads(bytes(answer.body))
        return answer

    def create(body: Any) -> Response:
        if str(body.get("status_id")) not in STATUS_IDS or not body.get("topic"):
            return JSONResponse({"error": "topic and a known status_id required"}, status_code=400)
        code = f"PMOC-W{len(intake.created) + 1:05d}"
        now = _local(datetime.now(UTC))
        item: dict[str, Any] = {
            "complaint_code": code,
            "topic": body["topic"],
            "detail": body.get("detail") or "",
            "status_id": int(body["status_id"]),
            "channel_name": body.get("channel_name") or "รับโอนจากหน่วยงานอื่น",
            "category": {"id": int(body.get("category_id") or 112)},
            "received_date": now,
            "updated_date": now,
            "due_date": None,
            "closed_date": None,
            "area": body.get("area") or {},
            "operatings": [],
            "complainant": {
                "anonymous": not any((body.get("complainant") or {}).values()),
                "confidential": False,
                **(body.get("complainant") or {}),
            },
            "origin": body.get("origin"),
            "_history": [
                {"at": now, "status_id": int(body["status_id"]), "remark": body.get("remark")}
            ],
        }
        cases.append(item)
        by_code[code] = item
        by_code_order.append(item)
        for ordered in sorted_by.values():
            ordered.append(item)
        resort()
        intake.created.append(code)
        return JSONResponse({"result": {"complaint_code": code}})

    def update_status(code: str, body: Any) -> Response:
        item = by_code.get(code)
        status_id = body.get("status_id")
        if item is None or str(status_id) not in STATUS_IDS:
            return JSONResponse({"error": "no such complaint or status"}, status_code=400)
        now = _local(datetime.now(UTC))
        item["status_id"] = int(status_id)
        item["updated_date"] = now
        item["_history"].append(
            {"at": now, "status_id": int(status_id), "remark": body.get("remark")}
        )
        resort()
        return JSONResponse({"result": _public(item)})

    def add_operating(code: str, body: Any) -> Response:
        item = by_code.get(code)
        if item is None or not body.get("org_code") or not body.get("their_case"):
            return JSONResponse({"error": "no such complaint, org_code or their_case"}, 400)
        item["operatings"].append(
            {
                "org_code": body["org_code"],
                "assigned_at": body.get("assigned_at") or _local(datetime.now(UTC)),
                "action": body.get("action") or "ส่งต่อ",
                "result": body.get("result"),
                "their_case": body["their_case"],
                "secrecy": None,
            }
        )
        item["updated_date"] = _local(datetime.now(UTC))
        resort()
        return JSONResponse({"result": _public(item)})

    def add_remark(code: str, body: Any) -> Response:
        item = by_code.get(code)
        if item is None or not body.get("remark"):
            return JSONResponse({"error": "no such complaint, or no remark"}, status_code=400)
        now = _local(datetime.now(UTC))
        item["_history"].append(
            {"at": now, "status_id": item["status_id"], "remark": body["remark"]}
        )
        item["updated_date"] = now
        resort()
        return JSONResponse({"result": _public(item)})

    async def post_remark(request: Request) -> Response:
        code = request.path_params["code"]
        return await written(request, lambda body: add_remark(code, body))

    async def create_complaint(request: Request) -> Response:
        intake.create_requests += 1
        if intake.hold is not None and intake.hold.is_set():
            answer = await written(request, create)
            intake.arrived.set()
            await asyncio.to_thread(intake.release.wait)
            return answer
        return await written(request, create)

    async def patch_complaint(request: Request) -> Response:
        code = request.path_params["code"]
        return await written(request, lambda body: update_status(code, body))

    async def post_operating(request: Request) -> Response:
        code = request.path_params["code"]
        return await written(request, lambda body: add_operating(code, body))

    async def complaints(request: Request) -> Response:
        if request.method == "POST":
            return await create_complaint(request)
        return await list_complaints(request)

    return Starlette(
        routes=[
            Route("/api/v1/complaints/{code}/status", set_status, methods=["POST"]),
            Route("/api/v1/complaints/{code}/operatings", post_operating, methods=["POST"]),
            Route("/api/v1/complaints/{code}/remarks", post_remark, methods=["POST"]),
            Route("/api/v1/complaints", complaints, methods=["GET", "POST"]),
            Route("/api/v1/complaints/{code}", patch_complaint, methods=["PATCH"]),
            Route("/api/v1/complaints/stats", statistics),
            Route("/api/v1/complaints/batch", batch),
            Route("/api/v1/complaints/timeline", timelines),
            Route("/api/v1/operatings", operatings),
        ]
    )


def _ints(value: str | None) -> set[int] | None:
    return None if not value else {int(part) for part in value.split(",")}


def _matching(items: list[dict[str, Any]], q: Any) -> list[dict[str, Any]] | Response:
    """The complaints the list filters select, in the order given."""
    try:
        statuses = _ints(q.get("status"))
        categories = _ints(q.get("category"))
        provinces = set(q["province"].split(",")) if q.get("province") else None
        since = datetime.fromisoformat(q["from"]) if q.get("from") else None
        before = datetime.fromisoformat(q["to"]) if q.get("to") else None
        changed = datetime.fromisoformat(q["updated_since"]) if q.get("updated_since") else None
    except ValueError as exc:
        return JSONResponse({"error": f"bad parameter: {exc}"}, status_code=400)
    text = q.get("q")
    keys = set(q["match_key"].split(",")) if q.get("match_key") else None
    return [
        item
        for item in items
        if (statuses is None or item["status_id"] in statuses)
        and (categories is None or item["category"]["id"] in categories)
        and (provinces is None or item["area"]["province_id"] in provinces)
        and (since is None or datetime.fromisoformat(item["received_date"]) >= since)
        and (before is None or datetime.fromisoformat(item["received_date"]) < before)
        and (not text or text in item["topic"] or text in item["detail"])
        and (changed is None or datetime.fromisoformat(item["updated_date"]) >= changed)
        and (keys is None or item["complainant"]["match_key"] in keys)
    ]


# -- the statistics endpoint ------------------------------------------------------------------

_FINISHED_IDS = {int(n) for n, s in STATUS_IDS.items() if s in _FINISHED}
_RESOLVED_IDS = {int(n) for n, s in STATUS_IDS.items() if s in ("RESOLVED", "CLOSED")}


def _received(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["received_date"])


_GROUPS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "province": lambda item: [item["area"]["province_id"]],
    "district": lambda item: [item["area"]["district_id"]],
    "category": lambda item: [item["category"]["id"]],
    "status": lambda item: [item["status_id"]],
    "channel": lambda item: [item["channel_name"]],
    "received_day": lambda item: [period(_received(item), "day")],
    "received_week": lambda item: [period(_received(item), "week")],
    "received_month": lambda item: [period(_received(item), "month")],
    "referred_to": lambda item: sorted({o["org_code"] for o in item["operatings"]}) or [None],
}


def _facts(item: dict[str, Any]) -> Facts:
    status = item["status_id"]
    return Facts(
        received=_received(item),
        state="open"
        if status not in _FINISHED_IDS
        else ("resolved" if status in _RESOLVED_IDS else "other"),
        due=datetime.fromisoformat(item["due_date"]) if item["due_date"] else None,
        closed=datetime.fromisoformat(item["closed_date"]) if item["closed_date"] else None,
    )


def _statistics(found: list[dict[str, Any]], names: list[str], as_of: datetime) -> dict[str, Any]:
    return aggregate(found, names, as_of, _GROUPS, _facts)
