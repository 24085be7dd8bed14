"""Saved example queries for analysts: GraphiQL opens with one tab each, /dashboard runs one.

Every document here is an ordinary GraphQL document against ``schema.graphql``; a test validates
each one and runs it, with its variables, against a gateway over the test agencies. GraphiQL gets
them through its ``defaultTabs`` prop, which it uses when the browser has no tabs of its own in
local storage yet (a returning analyst keeps the tabs they left). GraphiQL fills the variables
editor from a tab's variables only when the tab is switched to, so the first example takes its
variables from defaults in the document instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strawberry.relay import to_base64


@dataclass(frozen=True)
class Example:
    """One saved query; GraphiQL titles its tab with the operation's name."""

    name: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)

    def tab(self) -> dict[str, str]:
        """GraphiQL's ``TabDefinition``: the editors' contents as text."""
        tab = {"query": self.query}
        if self.variables:
            tab["variables"] = json.dumps(self.variables, ensure_ascii=False, indent=2)
        return tab


# The last quarter of the demo data: July to September 2026 (Bangkok time), the fourth quarter
# of the Thai fiscal year 2569.
QUARTER = {
    "receivedFrom": "2026-07-01T00:00:00+07:00",
    "receivedBefore": "2026-10-01T00:00:00+07:00",
}

DASHBOARD = Example(
    "Dashboard",
    """\
# complaint-graph: one graph over many agencies'
# complaint systems, read live. Ctrl-Enter runs it;
# the tabs above hold more saved queries for analysts.
#
# The query of the /dashboard page: cases by province,
# overdue cases by agency, received and resolved per
# week. Each caseStats is one GROUP BY in each agency's
# own database, merged here. The page passes its own
# period as $filter; here it is July-September 2026.
query Dashboard(
  $filter: CaseFilterInput = {
    receivedFrom: "2026-07-01T00:00:00+07:00"
    receivedBefore: "2026-10-01T00:00:00+07:00"
  }
) {
  byProvince: caseStats(filter: $filter, groupBy: [PROVINCE]) {
    total { count open overdue resolved }
    buckets { key { code label nameEn } count overdue }
  }
  byAgency: caseStats(filter: $filter, groupBy: [AGENCY]) {
    buckets { key { code label nameEn } count overdue }
  }
  byWeek: caseStats(filter: $filter, groupBy: [RECEIVED_WEEK]) {
    buckets { key { code date label } count resolved }
  }
}
""",
)

CASE_TRAIL = Example(
    "CaseTrail",
    """\
# One complaint followed across four agencies: the Damrongdhama Center (PostgreSQL)
# escalates it to the 1111 service (its JSON API), which forwards it to the city
# platform (Open311), which returns the result. Every hop is read live from the
# receiving agency's own system. $id is the global id of Damrongdhama case 15.
query CaseTrail($id: ID!) {
  case(id: $id) {
    referenceNumber status owningAgency { nameTh nameEn }
    timeline { at status note }
    referrals {
      kind at toAgency { nameEn }
      counterpart {
        referenceNumber status sourceStatus owningAgency { nameEn }
        referrals {
          kind at toAgency { nameEn }
          counterpart {
            referenceNumber status sourceStatus location { province { nameTh } }
            referrals { kind toAgency { nameEn } counterpart { referenceNumber status } }
          }
        }
      }
    }
    relatedCases { referenceNumber source { id } }
  }
}
""",
    {"id": to_base64("Case", "damrongdhama:15")},
)

STATS_BY_PROVINCE_AND_MONTH = Example(
    "StatsByProvinceAndMonth",
    """\
# Cases by province and month (Bangkok calendar, Buddhist Era years), every agency at once,
# with resolution times in hours. Add filter fields (category, agency, status …) to narrow.
query StatsByProvinceAndMonth($filter: CaseFilterInput) {
  caseStats(filter: $filter, groupBy: [PROVINCE, RECEIVED_MONTH]) {
    asOf
    total { count open overdue resolved }
    buckets {
      key { dimension code label yearBE monthTh }
      count open overdue resolved
      resolutionHours { median p90 mean }
    }
  }
}
""",
    {"filter": {"receivedFrom": "2025-10-01T00:00:00+07:00"}},
)

OVERDUE_BY_AGENCY = Example(
    "OverdueByAgency",
    """\
# Which agencies let cases go overdue: open cases past their due date, and how old the
# open ones are, per owning agency.
query OverdueByAgency($filter: CaseFilterInput) {
  caseStats(filter: $filter, groupBy: [AGENCY]) {
    asOf
    buckets {
      key { code label nameEn }
      count open overdue
      openAgeHours { median p90 }
    }
  }
}
""",
    {"filter": {}},
)

OVERDUE_LAND_DISPUTES = Example(
    "OverdueLandDisputesByProvince",
    """\
# Overdue land-dispute cases by province this quarter, across every agency: one query.
query OverdueLandDisputesByProvince($filter: CaseFilterInput) {
  caseStats(filter: $filter, groupBy: [PROVINCE]) {
    total { count overdue }
    buckets { key { code label } count overdue }
  }
}
""",
    {"filter": {"category": ["LAND_DISPUTE"], **QUARTER}},
)

LATEST_CASES = Example(
    "LatestCases",
    """\
# The newest cases of every agency, merged newest first; each read from its own system.
query LatestCases {
  cases(first: 5, orderBy: {field: RECEIVED_AT, direction: DESC}) {
    totalCount
    edges {
      node {
        id referenceNumber title status sourceStatus channel receivedAt isOverdue
        category { code nameTh }
        location { province { nameTh nameEn } district { nameTh } }
        owningAgency { code nameTh }
        source { id kind }
        timeline { at status sourceStatus note }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
""",
)

EXAMPLES: tuple[Example, ...] = (
    DASHBOARD,
    CASE_TRAIL,
    STATS_BY_PROVINCE_AND_MONTH,
    OVERDUE_BY_AGENCY,
    OVERDUE_LAND_DISPUTES,
    LATEST_CASES,
)

REFER_A_CASE = Example(
    "ReferACase",
    """\
# Writes into two agencies' systems: needs an agency key (in Headers:
# {"Authorization": "Bearer demo-agency-MOI-DDC"}) or an inspector's.
# The 1111 service creates the case, the Damrongdhama Center records the
# referral with its reference. Sent again with the same idempotencyKey,
# nothing is written twice: take a new key for a new referral.
mutation ReferACase($input: ReferCaseInput!) {
  referCase(input: $input) {
    errors { code message field }
    write { state step attempts lastError receivingReference }
    case { referenceNumber status }
    referredCase { id referenceNumber status sourceStatus channel owningAgency { code } }
    referral { kind receivingReference toAgency { code } counterpart { referenceNumber } }
  }
}
""",
    {
        "input": {
            "caseId": to_base64("Case", "damrongdhama:12"),
            "toAgency": "OPM-1111",
            "kind": "FORWARD",
            "note": "โปรดตรวจสอบและดำเนินการ",
            "idempotencyKey": "graphiql-refer-1",
        }
    },
)

REPORT_PROGRESS = Example(
    "ReportProgress",
    """\
# The owning agency moves its own case on (Headers:
# {"Authorization": "Bearer demo-agency-OPM-1111"}): written into the 1111
# service in its own words (RESOLVED is its status id 6), with the note.
mutation ReportProgress($input: ReportProgressInput!) {
  reportProgress(input: $input) {
    errors { code message field }
    write { state lastError }
    case { referenceNumber status sourceStatus timeline { at status note } }
  }
}
""",
    {
        "input": {
            "caseId": to_base64("Case", "pmoc-1111:PMOC-000004"),
            "status": "RESOLVED",
            "note": "ดำเนินการแก้ไขเรียบร้อยแล้ว",
            "idempotencyKey": "graphiql-progress-1",
        }
    },
)

FILE_A_COMPLAINT = Example(
    "FileAComplaint",
    """\
# A new complaint, as an intake app files it (Headers:
# {"Authorization": "Bearer demo-inspector"}, an agency key, or a key with
# the complaints:file scope). No toAgency: the routing rules choose by
# category and province (writes.routing; here Khon Kaen's office, rule 1).
# A new idempotencyKey for each new complaint.
mutation FileAComplaint($input: FileComplaintInput!) {
  fileComplaint(input: $input) {
    errors { code message field }
    routedBy agency { code nameEn }
    write { state lastError receivingReference }
    caseId
    case { referenceNumber status sourceStatus channel category { code } }
  }
}
""",
    {
        "input": {
            "title": "ถนนชำรุดเป็นหลุมบ่อ บ้านโนนสูง",
            "description": "หลุมลึกกลางถนน รถจักรยานยนต์ล้มบ่อยช่วงฝนตก",
            "category": "ROADS",
            "provinceCode": "40",
            "districtCode": "4001",
            "channel": "MOBILE_APP",
            "idempotencyKey": "graphiql-file-1",
        }
    },
)

WRITE_EXAMPLES: tuple[Example, ...] = (REFER_A_CASE, REPORT_PROGRESS, FILE_A_COMPLAINT)
"""Tabs that change data: not run by the read examples' test (they need an agency's key and
change the agencies' systems); tests/gateway/test_writes.py runs them against agencies of its
own."""

TABS: tuple[Example, ...] = EXAMPLES + WRITE_EXAMPLES
"""GraphiQL's saved tabs."""

_QUERY_START = "const EXAMPLE_QUERY = `"
_PROPS_START = "React.createElement(GraphiQL, {"
_HEADERS_STATE = "React.useState(parameters.headers)"
_HEADERS_STATE_DEFAULT = "React.useState(parameters.headers || COMPLAINT_GRAPH_HEADERS)"


def script_json(value: object) -> str:
    """JSON that is safe inside an HTML ``<script>``: no ``</`` can end the element early."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def graphiql_html(
    template: str,
    examples: tuple[Example, ...] = TABS,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Strawberry's GraphiQL page with ``examples`` as its default tabs, the first one open,
    and ``headers`` (the demo's key) in the headers editor of each.

    The page's ``EXAMPLE_QUERY`` (its controlled ``query``) becomes the first example, which
    GraphiQL matches to the first tab; ``defaultTabs`` is added to GraphiQL's props. Raises
    ValueError when the template no longer has the places it changes, rather than serving a
    page without examples.
    """
    start = template.index(_QUERY_START)
    end = template.index("`;", start) + len("`;")
    props = template.index(_PROPS_START, end) + len(_PROPS_START)
    header_text = json.dumps(dict(headers), indent=2) if headers else None
    tabs = [e.tab() | ({"headers": header_text} if header_text else {}) for e in examples]
    constants = (
        f"const EXAMPLE_QUERY = {script_json(examples[0].query)};\n"
        f"      const COMPLAINT_GRAPH_TABS = {script_json(tabs)};\n"
        f"      const COMPLAINT_GRAPH_HEADERS = {script_json(header_text)};"
    )
    page = (
        template[:start]
        + constants
        + template[end:props]
        + "\n          defaultTabs: COMPLAINT_GRAPH_TABS,"
        + template[props:]
    )
    if headers:
        if _HEADERS_STATE not in page:
            raise ValueError("GraphiQL's page no longer has its headers state")
        page = page.replace(_HEADERS_STATE, _HEADERS_STATE_DEFAULT)
    return page
