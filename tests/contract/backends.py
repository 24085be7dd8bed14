"""The fixture agency (tests/contract/agency.py) as each kind of backend holds it.

SQL: the same four tables in PostgreSQL, SQLite and MariaDB, times as naive Bangkok wall-clock
values. GraphQL: PostGraphile 4 over those tables in the test PostgreSQL. JSON API and Open311:
small Starlette apps serving the fixture from memory on a loopback port, filtering, sorting and
paging as such APIs do (each pushes down a part of the filters, never all of them).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract.agency import BANGKOK, CASES, Case

metadata = MetaData()
ct_case = Table(
    "ct_case",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("ref_no", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Column("channel", String(40), nullable=False),
    Column("category", String(4), nullable=False),
    Column("status", String(40), nullable=False),
    Column("province", String(2), nullable=False),
    Column("district", String(4), nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("due_at", DateTime),
    Column("closed_at", DateTime),
)
ct_log = Table(
    "ct_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("case_id", Integer, ForeignKey("ct_case.id"), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
    Column("status", String(40)),
    Column("note", Text),
)
ct_referral = Table(
    "ct_referral",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("case_id", Integer, ForeignKey("ct_case.id"), nullable=False, index=True),
    Column("to_agency", String(20), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("state", String(40)),
    Column("their_ref", String(20)),
)
ct_person = Table(
    "ct_person",
    metadata,
    Column("case_id", Integer, ForeignKey("ct_case.id"), primary_key=True, autoincrement=False),
    Column("name", String(100)),
    Column("citizen_id", String(13)),
    Column("phone", String(20)),
    Column("address", String(200)),
    Column("anonymous", Boolean, nullable=False),
    Column("confidential", Boolean, nullable=False),
    Column("citizen_key", String(64)),
)


async def load_sql(url: str) -> None:
    """Create the fixture's tables in the database at ``url`` and fill them."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(ct_case), [_case_row(c) for c in CASES])
            await connection.execute(
                insert(ct_log),
                [
                    {"case_id": c.id, "at": e.at, "status": e.status, "note": e.note}
                    | {"id": c.id * 10 + n}
                    for c in CASES
                    for n, e in enumerate(c.timeline)
                ],
            )
            await connection.execute(
                insert(ct_referral),
                [
                    {
                        "id": c.id * 10 + n,
                        "case_id": c.id,
                        "to_agency": r.to,
                        "at": r.at,
                        "kind": r.kind,
                        "state": r.status,
                        "their_ref": r.their_reference,
                    }
                    for c in CASES
                    for n, r in enumerate(c.referrals)
                ],
            )
            await connection.execute(insert(ct_person), [_person_row(c) for c in CASES])
    finally:
        await engine.dispose()


def _case_row(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "ref_no": case.reference,
        "title": case.title,
        "detail": case.description,
        "channel": case.channel,
        "category": case.category,
        "status": case.status,
        "province": case.province,
        "district": case.district,
        "received_at": case.received,
        "updated_at": case.updated,
        "due_at": case.due,
        "closed_at": case.closed,
    }


def _person_row(case: Case) -> dict[str, Any]:
    person = case.person
    return {
        "case_id": case.id,
        "name": person.name,
        "citizen_id": person.citizen_id,
        "phone": person.phone,
        "address": person.address,
        "anonymous": person.anonymous,
        "confidential": person.confidential,
        "citizen_key": person.citizen_key,
    }


# -- a JSON API ------------------------------------------------------------------------------


def _local(value: datetime | None) -> str | None:
    """As the JSON API writes times: Bangkok wall clock, no offset."""
    return None if value is None else value.isoformat()


def _json_case(case: Case) -> dict[str, Any]:
    return {
        "case_no": str(case.id),
        "ref": case.reference,
        "subject": case.title,
        "detail": case.description,
        "via": case.channel,
        "type": case.category,
        "state": case.status,
        "area": {"province": case.province, "district": case.district},
        "created": _local(case.received),
        "modified": _local(case.updated),
        "due": _local(case.due),
        "finished": _local(case.closed),
        "history": [
            {"at": _local(e.at), "state": e.status, "remark": e.note} for e in case.timeline
        ],
        "handovers": [
            {
                "to": r.to,
                "at": _local(r.at),
                "type": r.kind,
                "state": r.status,
                "ref": r.their_reference,
            }
            for r in case.referrals
        ],
        "person": {
            "name": case.person.name,
            "id_card": case.person.citizen_id,
            "phone": case.person.phone,
            "address": case.person.address,
            "anonymous": case.person.anonymous,
            "confidential": case.person.confidential,
            "key": case.person.citizen_key,
        },
    }


def _naive(text: str) -> datetime:
    """A bound as the gateway sends it to this API: local Bangkok time without an offset."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is None, f"the JSON API takes local times, got {text!r}"
    return parsed


_JSON_SORTS: dict[str, tuple[Callable[[Case], Any], bool]] = {
    "-created": (lambda c: (c.received, c.id), True),
    "created": (lambda c: (c.received, c.id), False),
    "-modified": (lambda c: (c.updated, c.id), True),
    "modified": (lambda c: (c.updated, c.id), False),
}


def json_api() -> Starlette:
    """``GET /cases`` filters by state, province and received time (not by type, district or
    text: the gateway applies those), sorts, pages by offset and says the total;
    ``GET /cases/batch?ids=`` reads cases by id, their history, hand-overs and complainant
    inside each."""

    async def listing(request: Request) -> Response:
        q = request.query_params
        found = list(CASES)
        if "state" in q:
            found = [c for c in found if c.status in q["state"].split(",")]
        if "province" in q:
            found = [c for c in found if c.province in q["province"].split(",")]
        if "from" in q:
            found = [c for c in found if c.received >= _naive(q["from"])]
        if "before" in q:
            found = [c for c in found if c.received < _naive(q["before"])]
        if "person" in q:
            found = [c for c in found if c.person.citizen_key in q["person"].split(",")]
        key, descending = _JSON_SORTS[q.get("sort", "-created")]
        found.sort(key=key, reverse=descending)
        offset, limit = int(q.get("offset", "0")), int(q.get("limit", "10"))
        page = found[offset : offset + limit]
        return JSONResponse({"items": [_json_case(c) for c in page], "total": len(found)})

    async def batch(request: Request) -> Response:
        ids = set(request.query_params["ids"].split(","))
        return JSONResponse({"items": [_json_case(c) for c in CASES if str(c.id) in ids]})

    return Starlette(routes=[Route("/cases", listing), Route("/cases/batch", batch)])


# -- an Open311 server -----------------------------------------------------------------------


def _with_offset(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=BANGKOK).isoformat()


def _request(case: Case) -> dict[str, Any]:
    return {
        "service_request_id": str(case.id),
        "status": "closed" if case.closed is not None else "open",
        "state_th": case.status,
        "service_code": case.category,
        "description": case.description,
        "title": case.title,
        "channel": case.channel,
        "province": case.province,
        "district": case.district,
        "requested_datetime": _with_offset(case.received),
        "updated_datetime": _with_offset(case.updated),
        "expected_datetime": _with_offset(case.due),
        "notes": [
            {"datetime": _with_offset(e.at), "description": e.note, "state_th": e.status}
            for e in case.timeline
        ],
        "referrals": [
            {
                "to": r.to,
                "at": _with_offset(r.at),
                "type": r.kind,
                "state": r.status,
                "ref": r.their_reference,
            }
            for r in case.referrals
        ],
    }


def open311_server() -> Starlette:
    """GeoReport v2 ``requests.json``: filters by ``service_code`` and the received window
    (``start_date`` inclusive, ``end_date`` exclusive), newest first, ``page``/``page_size``,
    by ids with ``service_request_id``."""

    async def requests(request: Request) -> Response:
        q = request.query_params
        found = list(CASES)
        if "service_request_id" in q:
            ids = set(q["service_request_id"].split(","))
            return JSONResponse([_request(c) for c in found if str(c.id) in ids])
        if "service_code" in q:
            found = [c for c in found if c.category in q["service_code"].split(",")]
        if "start_date" in q:
            start = datetime.fromisoformat(q["start_date"])
            found = [c for c in found if c.received.replace(tzinfo=BANGKOK) >= start]
        if "end_date" in q:
            end = datetime.fromisoformat(q["end_date"])
            found = [c for c in found if c.received.replace(tzinfo=BANGKOK) < end]
        found.sort(key=lambda c: (c.received, c.id), reverse=True)
        size, page = int(q.get("page_size", "1000")), int(q.get("page", "1"))
        return JSONResponse([_request(c) for c in found[(page - 1) * size : page * size]])

    async def services(request: Request) -> Response:
        return JSONResponse([{"service_code": code} for code in ("R", "W", "E")])

    return Starlette(
        routes=[
            Route("/open311/v2/requests.json", requests),
            Route("/open311/v2/services.json", services),
        ]
    )


CSV_COLUMNS = (
    *("id", "title", "description", "channel", "category", "status", "province", "district"),
    *("received_at", "updated_at", "due_at", "closed_at"),
)


def write_csv(path: Path) -> None:
    """The fixture as the CSV file of tests/plugin_kind publishes it: the Bangkok times with
    their offset, an empty cell for no due date or closing time; no history, no referrals."""

    def moment(local: datetime | None) -> str:
        return "" if local is None else local.replace(tzinfo=BANGKOK).isoformat()

    with path.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(CSV_COLUMNS)
        for case in CASES:
            out.writerow(
                [
                    case.local_id,
                    case.title,
                    case.description,
                    case.channel,
                    case.category,
                    case.status,
                    case.province,
                    case.district,
                    moment(case.received),
                    moment(case.updated),
                    moment(case.due),
                    moment(case.closed),
                ]
            )
