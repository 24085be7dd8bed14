"""The benchmark's GraphQL documents: complaint-graph's, and PostGraphile's equivalents.

Both servers read the same PostgreSQL tables. PostGraphile sees them as they are (``typeCode``,
``statusCode``, the status log as a relation); complaint-graph maps them to the unified graph,
so its documents also ask for what only it can answer (the owning agency, category names).
"""

from __future__ import annotations

import base64

PAGE = 100
"""Cases on the dashboard page, workloads (a) and (d)."""
SEARCH_PAGE = 20
SEARCH_DEPTH = 500
"""Workload (c) asks for page ``SEARCH_DEPTH`` of ``SEARCH_PAGE`` cases of a filtered search."""
DETAIL_CASE = 15
"""Workload (b): a Damrongdhama case in a referral chain through all four agencies (escalated)."""

DASHBOARD = """
query Dashboard($first: Int!, $filter: CaseFilterInput) {
  cases(first: $first, filter: $filter) {
    edges { node {
      id referenceNumber title status receivedAt
      category { code nameTh } owningAgency { code }
      timeline { at status }
    } }
  }
}
"""

POSTGRAPHILE_DASHBOARD = """
query Dashboard($first: Int!) {
  allComplaints(first: $first, orderBy: [RECEIVED_AT_DESC, ID_DESC]) {
    edges { node {
      id refNo subject statusCode receivedAt typeCode
      complaintStatusLogsByComplaintId(orderBy: [CHANGED_AT_ASC, ID_ASC]) {
        nodes { changedAt statusCode }
      }
    } }
  }
}
"""

_FULL_CASE = """
fragment Full on Case {
  id referenceNumber title description status sourceStatus channel
  receivedAt updatedAt dueAt closedAt isOverdue sourceCategory photoUrls responsibleAgencies
  category { code nameTh nameEn } owningAgency { code nameTh } source { id }
  location {
    province { code nameTh } district { code nameTh } subdistrict { code nameTh }
    address latitude longitude
  }
  timeline { at status sourceStatus note }
}
fragment Hop on Referral {
  at kind status receivingReference fromAgency { code } toAgency { code }
}
"""

DETAIL = (
    """
query Detail($id: ID!) {
  case(id: $id) {
    ...Full
    referrals { ...Hop counterpart {
      ...Full
      referrals { ...Hop counterpart {
        ...Full
        referrals { ...Hop counterpart { id referenceNumber status } }
      } }
    } }
    referredFrom { ...Hop origin { id referenceNumber status owningAgency { code } } }
    relatedCases { ...Full }
  }
}
"""
    + _FULL_CASE
)

SEARCH = """
query Search($first: Int!, $after: String, $filter: CaseFilterInput) {
  cases(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id referenceNumber title status receivedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

POSTGRAPHILE_SEARCH = """
query Search($first: Int!, $after: Cursor) {
  allComplaints(
    first: $first, after: $after, orderBy: [RECEIVED_AT_DESC, ID_DESC]
    condition: {statusCode: "WIP", typeCode: "T02"}
  ) {
    edges { cursor node { id refNo subject statusCode receivedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SEARCH_FILTER = {"source": ["damrongdhama"], "status": ["IN_PROGRESS"], "category": ["ROADS"]}
"""The same cases as PostGraphile's condition: WIP is IN_PROGRESS, T02 is ROADS."""


def case_id(source: str, local_id: int) -> str:
    """complaint-graph's global id of a case (a Relay id: base64 of type and node key)."""
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()
