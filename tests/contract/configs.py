"""The fixture agency's configuration for each kind: the same agency, vocabulary and meaning,
mapped onto each backend's own shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.config import parse_config
from sources import Source, source_class
from tests.contract.agency import AGENCIES, AGENCY, CATEGORIES, CHANNELS, REFERRAL_KINDS, SOURCE
from tests.contract.agency import STATUSES as NATIVE_STATUSES

CATEGORY_NAMES = {"ROADS": "ถนน", "WATER": "น้ำ", "ELECTRICITY": "ไฟฟ้า"}


@dataclass(frozen=True)
class Traits:
    """What a kind maps of the fixture agency, as the kind itself can (not as a test skips):
    Open311 publishes no personal data and no closing time, and its case number is its id;
    the GraphQL agency's schema (PostGraphile over the case tables) is read for cases and
    their history only; the CSV file of tests/plugin_kind holds one row per case, no history."""

    referrals: bool = True
    complainants: bool = True
    closed_at: bool = True
    own_reference: bool = True
    timelines: bool = True


TRAITS = {
    "postgresql": Traits(),
    "sqlite": Traits(),
    "mariadb": Traits(),
    "rest": Traits(),
    "open311": Traits(complainants=False, closed_at=False, own_reference=False),
    "graphql": Traits(referrals=False, complainants=False),
    "minimal": Traits(complainants=False, own_reference=False),
    "keyset": Traits(complainants=False, own_reference=False),
    "csv": Traits(referrals=False, complainants=False, own_reference=False, timelines=False),
}


def _vocabulary() -> dict[str, Any]:
    return {
        "statuses": {native: status.value for native, status in NATIVE_STATUSES.items()},
        "categories": CATEGORIES,
        "channels": {native: channel.value for native, channel in CHANNELS.items()},
        "agencies": AGENCIES,
        "referral_kinds": {native: kind.value for native, kind in REFERRAL_KINDS.items()},
    }


def _common(kind: str) -> dict[str, Any]:
    return {
        "id": SOURCE,
        "kind": kind,
        "agency": {"code": AGENCY, "name_th": "สำนักงานเขตทดสอบ", "name_en": "Contract office"},
        "vocabulary": _vocabulary(),
    }


def sql(url: str) -> dict[str, Any]:
    return _common("sql") | {
        "url": url,
        "timezone": "Asia/Bangkok",
        "cases": {
            "table": "ct_case",
            "id": "id",
            "reference_number": "ref_no",
            "title": "title",
            "description": "detail",
            "channel": "channel",
            "category": "category",
            "status": "status",
            "received_at": "received_at",
            "updated_at": "updated_at",
            "due_at": "due_at",
            "closed_at": "closed_at",
        },
        "location": {"province_code": "province", "district_code": "district"},
        "timeline": {
            "table": "ct_log",
            "case_id": "case_id",
            "at": "at",
            "status": "status",
            "note": "note",
            "tie_breaker": "id",
        },
        "referrals": {
            "table": "ct_referral",
            "case_id": "case_id",
            "to_agency": "to_agency",
            "at": "at",
            "kind": "kind",
            "status": "state",
            "their_reference": "their_ref",
            "tie_breaker": "id",
        },
        "complainant": {
            "table": "ct_person",
            "case_id": "case_id",
            "name": "name",
            "citizen_id": "citizen_id",
            "phone": "phone",
            "address": "address",
            "is_anonymous": "anonymous",
            "is_confidential": "confidential",
            "citizen_key": "citizen_key",
        },
    }


def rest(url: str) -> dict[str, Any]:
    return _common("rest") | {
        "base_url": url,
        "timezone": "Asia/Bangkok",
        "list": {
            "path": "/cases",
            "items": "items",
            "total": "total",
            "pagination": {"style": "offset", "page_size": 5},
            "filters": {
                "status": "state",
                "province_code": "province",
                "received_from": "from",
                "received_before": "before",
            },
            "sort": {
                "param": "sort",
                "received_at_desc": "-created",
                "received_at_asc": "created",
                "updated_at_desc": "-modified",
                "updated_at_asc": "modified",
            },
        },
        "fetch": {"path": "/cases/batch", "ids_param": "ids", "items": "items"},
        "history": {
            "embedded": "history",
            "in_list": True,
            "fields": {"at": "at", "status": "state", "note": "remark"},
        },
        "referrals": {
            "embedded": "handovers",
            "fields": {
                "to_agency": "to",
                "at": "at",
                "kind": "type",
                "status": "state",
                "their_reference": "ref",
            },
        },
        "complainant": {
            "name": "person.name",
            "citizen_id": "person.id_card",
            "phone": "person.phone",
            "address": "person.address",
            "is_anonymous": "person.anonymous",
            "is_confidential": "person.confidential",
            "citizen_key": "person.key",
            "find_param": "person",
        },
        "fields": {
            "id": "case_no",
            "reference_number": "ref",
            "title": "subject",
            "description": "detail",
            "channel": "via",
            "category": "type",
            "status": "state",
            "received_at": "created",
            "updated_at": "modified",
            "due_at": "due",
            "closed_at": "finished",
            "province_code": "area.province",
            "district_code": "area.district",
        },
    }


def open311(url: str) -> dict[str, Any]:
    return _common("open311") | {
        "base_url": f"{url}/open311/v2",
        "status_field": "state_th",
        "page_size": 4,
        "extensions": {
            "title": "title",
            "channel": "channel",
            "province_code": "province",
            "district_code": "district",
            "notes": "notes",
            "note_status": "state_th",
            "referrals": "referrals",
        },
    }


GRAPHQL_FIELDS = (
    "id refNo title detail channel category status province district receivedAt updatedAt "
    "dueAt closedAt"
)
GRAPHQL_LOGS = "ctLogsByCaseId(orderBy: [AT_ASC, ID_ASC]) { nodes { at status note } }"


def csv(path: str) -> dict[str, Any]:
    """The third-party kind of tests/plugin_kind over the file backends.write_csv wrote."""
    return _common("csv") | {"path": path}


def graphql(url: str) -> dict[str, Any]:
    return _common("graphql") | {
        "url": url,
        "id_type": "int",
        "timezone": "Asia/Bangkok",
        "list": {
            "query": (
                "query Page($first: Int!, $after: Cursor, $filter: CtCaseFilter,"
                " $orderBy: [CtCasesOrderBy!]) {"
                " allCtCases(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {"
                f" nodes {{ {GRAPHQL_FIELDS} {GRAPHQL_LOGS} }}"
                " pageInfo { hasNextPage endCursor } totalCount } }"
            ),
            "items": "allCtCases.nodes",
            "total": "allCtCases.totalCount",
            "pagination": {
                "style": "relay",
                "page_size": 6,
                "end_cursor": "allCtCases.pageInfo.endCursor",
                "has_next_page": "allCtCases.pageInfo.hasNextPage",
            },
            "filters": {
                "status": "status.in",
                "category": "category.in",
                "district_code": "district.in",
                "received_from": "receivedAt.greaterThanOrEqualTo",
                "received_before": "receivedAt.lessThan",
            },
            "sort": {
                "received_at_desc": ["RECEIVED_AT_DESC", "ID_DESC"],
                "received_at_asc": ["RECEIVED_AT_ASC", "ID_ASC"],
                "updated_at_desc": ["UPDATED_AT_DESC", "ID_DESC"],
                "updated_at_asc": ["UPDATED_AT_ASC", "ID_ASC"],
            },
        },
        "fetch": {
            "batch": "ids",
            "query": (
                "query Cases($ids: [Int!]) { allCtCases(filter: {id: {in: $ids}}) {"
                f" nodes {{ {GRAPHQL_FIELDS} {GRAPHQL_LOGS} }} }} }}"
            ),
            "items": "allCtCases.nodes",
        },
        "history": {
            "embedded": "ctLogsByCaseId.nodes",
            "fields": {"at": "at", "status": "status", "note": "note"},
        },
        "fields": {
            "id": "id",
            "reference_number": "refNo",
            "title": "title",
            "description": "detail",
            "channel": "channel",
            "category": "category",
            "status": "status",
            "received_at": "receivedAt",
            "updated_at": "updatedAt",
            "due_at": "dueAt",
            "closed_at": "closedAt",
            "province_code": "province",
            "district_code": "district",
        },
    }


def source(settings: dict[str, Any]) -> Source:
    """The adapter for ``settings``, configured as the gateway would (``parse_config``)."""
    categories = [
        {"code": code, "name_th": name, "name_en": code.title()}
        for code, name in CATEGORY_NAMES.items()
    ]
    document = {"categories": categories, "sources": [settings]}
    (parsed,) = parse_config(json.dumps(document, ensure_ascii=False), {}).sources
    return source_class(parsed.kind)(parsed)
