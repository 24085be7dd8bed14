"""The six single-database workloads of issue 20 §3, as each server is asked them.

Every workload has a document per *dialect*: ``cg`` (complaint-graph's unified graph, which the
asyncpg floor answers too), ``pg5`` (PostGraphile 5's amber preset: ``rowId`` columns,
``complaintByRowId``) and ``pg4`` (PostGraphile 4: ``id`` columns, ``complaintById``). Both
PostGraphiles see the tables as they are; complaint-graph maps them to the unified graph. To
check that every server answers the same data, each answer is reduced to a canonical form: per
case the values both can give (reference number, title, status mapped through the agency's
vocabulary in samples/config.yaml, times as UTC instants, timeline, referrals, province code),
the keys each workload names.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bench import documents as docs

CONFIG = Path(__file__).parent.parent / "samples" / "config.yaml"
PAGE = 100
SCALARS_PAGE = 500


@dataclass(frozen=True)
class Shape:
    """One workload: its title, its documents by dialect, the canonical keys compared."""

    key: str
    title: str
    documents: dict[str, str]
    variables: dict[str, dict[str, Any]]
    compared: tuple[str, ...]
    floor: bool
    """Whether the asyncpg floor answers it (with complaint-graph's exact JSON)."""


# --- documents ---------------------------------------------------------------------------------

_CG_TIMELINE_REFERRALS = """
query Page($first: Int!, $filter: CaseFilterInput) {
  cases(first: $first, filter: $filter) {
    edges { node {
      id referenceNumber title status receivedAt
      location { province { code nameTh } }
      timeline { at status sourceStatus note }
      referrals { at kind status receivingReference toAgency { code } }
    } }
  }
}
"""

_PG_TIMELINE_REFERRALS = """
query Page($first: Int!) {
  allComplaints(first: $first, orderBy: [RECEIVED_AT_DESC, ID_DESC]) {
    edges { node {
      ID refNo subject statusCode receivedAt provinceCode
      complaintStatusLogsByComplaintId(orderBy: [CHANGED_AT_ASC, ID_ASC]) {
        nodes { changedAt statusCode remark }
      }
      complaintReferralsByComplaintId(orderBy: [REFERRED_AT_ASC, ID_ASC]) {
        nodes { referredAt kindCode statusText theirRef toOrg }
      }
    } }
  }
}
"""

_PG_DASHBOARD = docs.POSTGRAPHILE_DASHBOARD.replace("      id refNo", "      ID refNo")

_CG_DETAIL = """
query Detail($id: ID!) {
  case(id: $id) {
    id referenceNumber title description status sourceStatus channel
    receivedAt updatedAt dueAt closedAt sourceCategory
    category { code nameTh } owningAgency { code }
    location {
      province { code nameTh } district { code nameTh } subdistrict { code nameTh }
      address latitude longitude
    }
    timeline { at status sourceStatus note }
    referrals { at kind status receivingReference toAgency { code } }
  }
}
"""

_PG_DETAIL = """
query Detail($id: ID_TYPE) {
  BY_ID(ID: $id) {
    ID refNo subject detail statusCode channelCode typeCode
    receivedAt updatedAt dueAt closedAt
    provinceCode districtCode subdistrictCode address lat lng
    complaintStatusLogsByComplaintId(orderBy: [CHANGED_AT_ASC, ID_ASC]) {
      nodes { changedAt statusCode remark }
    }
    complaintReferralsByComplaintId(orderBy: [REFERRED_AT_ASC, ID_ASC]) {
      nodes { referredAt kindCode statusText theirRef toOrg }
    }
  }
}
"""

_CG_SCALARS = """
query Scalars($first: Int!, $filter: CaseFilterInput) {
  cases(first: $first, filter: $filter) {
    edges { node { id referenceNumber title status receivedAt updatedAt } }
  }
}
"""

_PG_SCALARS = """
query Scalars($first: Int!) {
  allComplaints(first: $first, orderBy: [RECEIVED_AT_DESC, ID_DESC]) {
    edges { node { ID refNo subject statusCode receivedAt updatedAt } }
  }
}
"""

_CG_EVERY_SCALAR = """
query EveryScalar($first: Int!, $filter: CaseFilterInput) {
  cases(first: $first, filter: $filter) {
    edges { node {
      id referenceNumber title description sourceStatus receivedAt updatedAt dueAt closedAt
      status channel sourceCategory isOverdue responsibleAgencies statusNotes photoUrls
    } }
  }
}
"""

_PG_EVERY_SCALAR = """
query EveryScalar($first: Int!) {
  allComplaints(first: $first, orderBy: [RECEIVED_AT_DESC, ID_DESC]) {
    edges { node {
      ID refNo subject detail statusCode receivedAt updatedAt dueAt closedAt channelCode typeCode
    } }
  }
}
"""

_PG_SEARCH = docs.POSTGRAPHILE_SEARCH.replace("cursor node { id refNo", "cursor node { ID refNo")


def _dialects(pg: str) -> dict[str, str]:
    """A PostGraphile document in each version's names: 4 keeps the ``id`` column as ``id``
    (its node id is ``nodeId``); 5's amber preset calls it ``rowId`` (``id`` is the node id)."""
    v4 = pg.replace("ID_TYPE", "BigInt!").replace("BY_ID(ID:", "complaintById(id:")
    v5 = pg.replace("ID_TYPE", "BigInt!").replace("BY_ID(ID:", "complaintByRowId(rowId:")
    v4 = v4.replace(" ID ", " id ").replace("\n      ID ", "\n      id ")
    v5 = v5.replace(" ID ", " rowId ").replace("\n      ID ", "\n      rowId ")
    v5 = v5.replace("ID_DESC", "ROW_ID_DESC").replace("ID_ASC", "ROW_ID_ASC")
    return {"pg4": v4, "pg5": v5}


ONLY_DDC = {"source": ["damrongdhama"]}


def shapes() -> list[Shape]:
    """The six workloads; (e)'s cursor variables are filled in by the runner (they differ by
    server), the rest are complete."""
    page = {"first": PAGE, "filter": ONLY_DDC}
    return [
        Shape(
            "a",
            "dashboard page, 100 cases with timeline",
            {"cg": docs.DASHBOARD, **_dialects(_PG_DASHBOARD)},
            {"cg": page, "pg": {"first": PAGE}},
            ("ref", "title", "status", "receivedAt", "category", "timeline"),
            floor=True,
        ),
        Shape(
            "h",
            "held-out page: 100 cases, timeline, referrals, province",
            {"cg": _CG_TIMELINE_REFERRALS, **_dialects(_PG_TIMELINE_REFERRALS)},
            {"cg": page, "pg": {"first": PAGE}},
            ("ref", "title", "status", "receivedAt", "province", "timeline", "referrals"),
            floor=True,
        ),
        Shape(
            "b",
            "one case in full detail (timeline, referrals, location)",
            {"cg": _CG_DETAIL, **_dialects(_PG_DETAIL)},
            {
                "cg": {"id": docs.case_id("damrongdhama", docs.DETAIL_CASE)},
                "pg": {"id": docs.DETAIL_CASE},
            },
            (
                "ref",
                "title",
                "description",
                "status",
                "sourceStatus",
                "channel",
                "sourceCategory",
                "receivedAt",
                "updatedAt",
                "dueAt",
                "closedAt",
                "province",
                "district",
                "subdistrict",
                "address",
                "latitude",
                "longitude",
                "timeline",
                "referrals",
            ),
            floor=False,
        ),
        Shape(
            "s",
            "500 cases, scalars only",
            {"cg": _CG_SCALARS, **_dialects(_PG_SCALARS)},
            {"cg": {"first": SCALARS_PAGE, "filter": ONLY_DDC}, "pg": {"first": SCALARS_PAGE}},
            ("ref", "title", "status", "receivedAt", "updatedAt"),
            floor=True,
        ),
        Shape(
            "e",
            f"filtered deep keyset page: page {docs.SEARCH_DEPTH} of {docs.SEARCH_PAGE}",
            {"cg": docs.SEARCH, **_dialects(_PG_SEARCH)},
            {"cg": {"first": docs.SEARCH_PAGE, "filter": docs.SEARCH_FILTER}, "pg": {}},
            ("ref", "title", "status", "receivedAt"),
            floor=False,
        ),
        Shape(
            "v",
            "every scalar of Case, 100 cases",
            {"cg": _CG_EVERY_SCALAR, **_dialects(_PG_EVERY_SCALAR)},
            {"cg": page, "pg": {"first": PAGE}},
            (
                "ref",
                "title",
                "description",
                "sourceStatus",
                "status",
                "channel",
                "sourceCategory",
                "receivedAt",
                "updatedAt",
                "dueAt",
                "closedAt",
            ),
            floor=False,
        ),
    ]


# --- the canonical form of an answer ---------------------------------------------------------


@cache
def vocabulary() -> dict[str, dict[str, str]]:
    """The Damrongdhama Center's vocabulary (statuses, categories, channels, referral kinds,
    agencies) as samples/config.yaml maps it: what complaint-graph answers for its codes."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    source = next(s for s in config["sources"] if s["id"] == "damrongdhama")
    found: dict[str, dict[str, str]] = source["vocabulary"]
    return found


def _instant(text: str | None) -> str | None:
    """A timestamp as a UTC instant, whichever offset the server wrote it with."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat()


def _cg_case(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plain = {
        "referenceNumber": "ref",
        "title": "title",
        "description": "description",
        "status": "status",
        "sourceStatus": "sourceStatus",
        "channel": "channel",
        "sourceCategory": "sourceCategory",
    }
    for key, name in plain.items():
        if key in node:
            out[name] = node[key]
    for key in ("receivedAt", "updatedAt", "dueAt", "closedAt"):
        if key in node:
            out[key] = _instant(node[key])
    if "category" in node:
        out["category"] = node["category"] and node["category"]["code"]
    location = node.get("location") or {}
    for level in ("province", "district", "subdistrict"):
        if level in location:
            out[level] = location[level] and location[level]["code"]
    for key in ("address", "latitude", "longitude"):
        if key in location:
            out[key] = location[key]
    if "timeline" in node:
        out["timeline"] = [[_instant(e["at"]), e["status"]] for e in node["timeline"]]
    if "referrals" in node:
        out["referrals"] = [
            [
                _instant(r["at"]),
                r["kind"],
                r["toAgency"] and r["toAgency"]["code"],
                r["receivingReference"],
                r["status"],
            ]
            for r in node["referrals"]
        ]
    return out


def _pg_case(node: dict[str, Any]) -> dict[str, Any]:
    words = vocabulary()
    out: dict[str, Any] = {}
    plain = {
        "refNo": "ref",
        "subject": "title",
        "detail": "description",
        "statusCode": "sourceStatus",
        "typeCode": "sourceCategory",
        "provinceCode": "province",
        "districtCode": "district",
        "subdistrictCode": "subdistrict",
        "address": "address",
        "lat": "latitude",
        "lng": "longitude",
    }
    for key, name in plain.items():
        if key in node:
            out[name] = node[key]
    if "statusCode" in node:
        out["status"] = words["statuses"].get(node["statusCode"])
    if "typeCode" in node:
        out["category"] = words["categories"].get(node["typeCode"])
    if "channelCode" in node:
        out["channel"] = words["channels"].get(node["channelCode"])
    for key in ("receivedAt", "updatedAt", "dueAt", "closedAt"):
        if key in node:
            out[key] = _instant(node[key])
    logs = node.get("complaintStatusLogsByComplaintId")
    if logs is not None:
        out["timeline"] = [
            [_instant(e["changedAt"]), words["statuses"].get(e["statusCode"])]
            for e in logs["nodes"]
        ]
    referrals = node.get("complaintReferralsByComplaintId")
    if referrals is not None:
        out["referrals"] = [
            [
                _instant(r["referredAt"]),
                words["referral_kinds"].get(r["kindCode"]),
                words["agencies"].get(r["toOrg"]),
                r["theirRef"],
                r["statusText"],
            ]
            for r in referrals["nodes"]
        ]
    return out


def _nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The case objects of an answer's data, whichever root field holds them."""
    (root,) = data.values()
    if root is None:
        return []
    if "edges" in root:
        return [edge["node"] for edge in root["edges"]]
    return [root]


def canonical(shape: Shape, dialect: str) -> Callable[[dict[str, Any]], list[str]]:
    """The answer reduced to the values every server gives, one JSON text per case in order;
    a server that lacks one of the compared values fails with the key it lacks."""
    convert = _cg_case if dialect == "cg" else _pg_case

    def reduce(body: dict[str, Any]) -> list[str]:
        out = []
        for node in _nodes(body["data"]):
            case = convert(node)
            missing = [key for key in shape.compared if key not in case]
            if missing:
                raise SystemExit(f"({shape.key}) a {dialect} answer lacks {missing}")
            out.append(json.dumps([case[key] for key in shape.compared], ensure_ascii=False))
        return out

    return reduce
