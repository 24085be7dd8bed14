"""The floor (issue 20 §3): complaint-graph's answers written by hand, asyncpg and orjson only.

``python -m bench.floor --dsn DSN --port PORT [--workers N]`` serves, on uvicorn as
complaint-graph does, a bare ASGI app that answers the benchmark's complaint-graph documents
for the pages (workloads (a), (h) and (s) of ``bench/shapes.py``) with the very JSON
complaint-graph sends, with the same SQL round trips (a page that carries its timelines in an
``array_agg``, then one batch of referrals for the page), and no GraphQL: the document is
recognised by its operation name, the variables are ignored but ``first``. It shows how far
the graph layer is from what Python on this machine can do at all for the same answer.
"""

from __future__ import annotations

import argparse
import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import geothai
import orjson
import uvicorn

from bench.shapes import CONFIG, vocabulary

_AGENCY = "MOI-DDC"
_SOURCE = "damrongdhama"

_PAGE = """
SELECT c.id, c.ref_no, c.subject, c.status_code, c.received_at, c.type_code, c.province_code,
  (SELECT array_agg((l.changed_at, l.status_code, l.remark) ORDER BY l.changed_at, l.id)
     FROM complaint_status_log l WHERE l.complaint_id = c.id) AS timeline
FROM complaints c ORDER BY c.received_at DESC, c.id DESC LIMIT $1
"""
_SCALARS = """
SELECT c.id, c.ref_no, c.subject, c.status_code, c.received_at, c.updated_at
FROM complaints c ORDER BY c.received_at DESC, c.id DESC LIMIT $1
"""
_REFERRALS = """
SELECT complaint_id, referred_at, kind_code, status_text, their_ref, to_org
FROM complaint_referrals WHERE complaint_id = ANY($1::bigint[])
ORDER BY complaint_id, referred_at, id
"""

_OPERATION = re.compile(r"\bquery\s+(\w+)")


def _names() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    import yaml

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return {c["code"]: c["name_th"] for c in config["categories"]}, vocabulary()


_CATEGORY_NAMES, _WORDS = _names()
_STATUSES = _WORDS["statuses"]
_CATEGORIES = _WORDS["categories"]
_KINDS = _WORDS["referral_kinds"]
_AGENCIES = _WORDS["agencies"]


def _case_id(local: int) -> str:
    return base64.b64encode(f"Case:{_SOURCE}:{local}".encode()).decode()


def _province(code: str | None) -> dict[str, Any] | None:
    if not code:
        return None
    found = geothai.province(code)
    return {"code": code, "nameTh": found.name_th if found is not None else None}


async def dashboard(pool: asyncpg.Pool, first: int) -> dict[str, Any]:
    """Workload (a): the page with category, owning agency and timeline; one round trip."""
    rows = await pool.fetch(_PAGE, first)
    edges = []
    for row in rows:
        category = _CATEGORIES.get(row["type_code"])
        edges.append(
            {
                "node": {
                    "id": _case_id(row["id"]),
                    "referenceNumber": row["ref_no"],
                    "title": row["subject"],
                    "status": _STATUSES.get(row["status_code"]),
                    "receivedAt": row["received_at"],
                    "category": category
                    and {"code": category, "nameTh": _CATEGORY_NAMES[category]},
                    "owningAgency": {"code": _AGENCY},
                    "timeline": [
                        {"at": at, "status": _STATUSES.get(status)}
                        for at, status, _ in row["timeline"] or ()
                    ],
                }
            }
        )
    return {"data": {"cases": {"edges": edges}}}


async def held_out_page(pool: asyncpg.Pool, first: int) -> dict[str, Any]:
    """Workload (h): the page with province, timeline and referrals; two round trips."""
    rows = await pool.fetch(_PAGE, first)
    referrals: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    for hop in await pool.fetch(_REFERRALS, list(referrals)):
        to = _AGENCIES.get(hop["to_org"])
        referrals[hop["complaint_id"]].append(
            {
                "at": hop["referred_at"],
                "kind": _KINDS.get(hop["kind_code"]),
                "status": hop["status_text"],
                "receivingReference": hop["their_ref"],
                "toAgency": to and {"code": to},
            }
        )
    edges = [
        {
            "node": {
                "id": _case_id(row["id"]),
                "referenceNumber": row["ref_no"],
                "title": row["subject"],
                "status": _STATUSES.get(row["status_code"]),
                "receivedAt": row["received_at"],
                "location": {"province": _province(row["province_code"])},
                "timeline": [
                    {
                        "at": at,
                        "status": _STATUSES.get(status),
                        "sourceStatus": status,
                        "note": note,
                    }
                    for at, status, note in row["timeline"] or ()
                ],
                "referrals": referrals[row["id"]],
            }
        }
        for row in rows
    ]
    return {"data": {"cases": {"edges": edges}}}


async def scalars(pool: asyncpg.Pool, first: int) -> dict[str, Any]:
    """Workload (s): the page's scalars only; one round trip."""
    rows = await pool.fetch(_SCALARS, first)
    edges = [
        {
            "node": {
                "id": _case_id(row["id"]),
                "referenceNumber": row["ref_no"],
                "title": row["subject"],
                "status": _STATUSES.get(row["status_code"]),
                "receivedAt": row["received_at"],
                "updatedAt": row["updated_at"],
            }
        }
        for row in rows
    ]
    return {"data": {"cases": {"edges": edges}}}


HANDLERS: dict[str, Callable[[asyncpg.Pool, int], Awaitable[dict[str, Any]]]] = {
    "Dashboard": dashboard,
    "Page": held_out_page,
    "Scalars": scalars,
}


class Floor:
    """The ASGI app: POST a complaint-graph body, get complaint-graph's JSON for it."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = orjson.loads(body)
        found = _OPERATION.search(request["query"])
        handler = HANDLERS.get(found.group(1)) if found else None
        if handler is None:  # the harness's liveness check, and anything else
            answer: dict[str, Any] = {"data": {"__typename": "Query"}}
        else:
            assert self.pool is not None
            answer = await handler(self.pool, int(request["variables"]["first"]))
        payload = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(self.dsn, min_size=5, max_size=5)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def app_factory() -> Floor:
    """For uvicorn's workers, which import the app: the DSN comes from the environment."""
    import os

    return Floor(os.environ["BENCH_FLOOR_DSN"])


def main() -> None:
    import os

    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["BENCH_FLOOR_DSN"] = args.dsn
    uvicorn.run(
        "bench.floor:app_factory",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
