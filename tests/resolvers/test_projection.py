"""A page of cases is read for the fields its document selects (resolvers/projection.py):
every ``Case`` field, asked alone on a page, answers what the whole record answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resolvers import plan as plan_module
from resolvers.case import Case
from resolvers.loaders import Loaders
from resolvers.schema import build_schema
from sources import CaseFilter, CaseOrder, CaseRecord
from sources._federation import Federation
from tests.conftest import RunningGateway
from tests.resolvers.expected import OPEN311_SOURCE, POSTGRES_SOURCE, REST_SOURCE, SQLITE_SOURCE

AGENCY = "code nameTh nameEn"
REFERRAL = (
    f"at kind status receivingReference secrecy fromAgency {{ {AGENCY} }} toAgency {{ code }}"
)
SELECTIONS = {
    "id": "id",
    "referenceNumber": "referenceNumber",
    "title": "title",
    "description": "description",
    "sourceStatus": "sourceStatus",
    "receivedAt": "receivedAt",
    "updatedAt": "updatedAt",
    "dueAt": "dueAt",
    "closedAt": "closedAt",
    "status": "status",
    "channel": "channel",
    "category": f"category {{ {AGENCY} }}",
    "sourceCategory": "sourceCategory",
    "isOverdue": "isOverdue",
    "location": (
        "location { province { code nameTh } district { code nameTh }"
        " subdistrict { code nameTh } address latitude longitude }"
    ),
    "responsibleAgencies": "responsibleAgencies",
    "statusNotes": "statusNotes",
    "photoUrls": "photoUrls",
    "source": "source { id kind }",
    "owningAgency": f"owningAgency {{ {AGENCY} }}",
    "complainant": "complainant { name citizenId phone address isAnonymous isConfidential }",
    "timeline": "timeline { at status sourceStatus note }",
    "referrals": f"referrals {{ {REFERRAL} }}",
    "referredFrom": f"referredFrom {{ {REFERRAL} }}",
    "relatedCases": "relatedCases { id title }",
}
"""Each field of ``Case`` with a full selection: the test below fails for a field added to
the schema without one (and without declaring its reads)."""

PAGE = 60
SOURCES: list[str | None] = [POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE, OPEN311_SOURCE, None]
"""Each agency alone (SQL rows and API records are projected), and all four (None)."""


def case_fields() -> set[str]:
    definition = build_schema()._schema.type_map["Case"]
    return set(definition.fields)  # type: ignore[attr-defined]


def declared_reads(name: str) -> frozenset[str] | None:
    """What ``Case.<name>`` declares it reads: ``metadata=reads(...)`` on the field, or the
    type's ``INHERITED_READS`` for relay's ``id``."""
    field = build_schema()._schema.type_map["Case"].fields[name]  # type: ignore[attr-defined]
    metadata = field.extensions[plan_module.GraphQLCoreConverter.DEFINITION_BACKREF].metadata
    found = metadata.get(plan_module.READS, Case.INHERITED_READS.get(name))
    return found if found is None else frozenset(found)


def test_every_case_field_says_which_record_fields_it_reads() -> None:
    record_fields = {field.name for field in dataclasses.fields(CaseRecord)}
    assert set(SELECTIONS) == case_fields()
    for name in case_fields():
        reads = declared_reads(name)
        assert reads is not None, name
        assert reads <= record_fields - {"projection"}, name


async def whole_cases(gateway: RunningGateway, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each case with every field, loaded by id (``case(id:)``, whole records, no page), ten
    to a request (the gateway's cost limit)."""
    everything = "fragment All on Case { " + " ".join(SELECTIONS.values()) + " }"
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 10):
        batch = ids[start : start + 10]
        aliases = " ".join(f'c{i}: case(id: "{key}") {{ ...All }}' for i, key in enumerate(batch))
        body = await gateway.query(f"{{ {aliases} }} {everything}")
        assert "errors" not in body, body["errors"][:3]
        found.update((node["id"], node) for node in body["data"].values())
    return found


@pytest.mark.parametrize("source", SOURCES)
async def test_each_case_field_on_a_page_is_what_the_whole_record_answers(
    gateway: RunningGateway, source: str | None
) -> None:
    variables = {"filter": {"source": [source]} if source else None}
    signature = "query($filter: CaseFilterInput)"
    ids_body = await gateway.query(
        f"{signature} {{ cases(first: {PAGE}, filter: $filter) {{ edges {{ node {{ id }} }} }} }}",
        variables,
    )
    ids = [edge["node"]["id"] for edge in ids_body["data"]["cases"]["edges"]]
    assert len(ids) == PAGE
    whole = await whole_cases(gateway, ids)
    answered: set[str] = set()
    for field, selection in SELECTIONS.items():
        document = (
            f"{signature} {{ cases(first: {PAGE}, filter: $filter) "
            f"{{ edges {{ node {{ id {selection} }} }} }} }}"
        )
        body = await gateway.query(document, variables)
        assert "errors" not in body, (field, body["errors"][:3])
        nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
        assert [node["id"] for node in nodes] == ids, field
        for node in nodes:
            assert node[field] == whole[node["id"]][field], (field, node["id"])
            if node[field] not in (None, [], ""):
                answered.add(field)
    # The comparison means something only where the data has values to lose.
    with_values = {f for f in SELECTIONS if any(c[f] not in (None, [], "") for c in whole.values())}
    assert answered == with_values
    assert with_values >= {"description", "updatedAt", "dueAt", "channel", "timeline"}
    if source in (POSTGRES_SOURCE, SQLITE_SOURCE):  # (the newest of the others are all open)
        assert "closedAt" in with_values


class _Asked:
    """The ``fields`` each ``Federation.page`` call was asked for (the real call still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fields: list[frozenset[str] | None] = []
        original: Callable[..., Awaitable[Any]] = Federation.page

        async def page(federation: Federation, *args: Any) -> Any:
            self.fields.append(args[4] if len(args) > 4 else None)
            return await original(federation, *args)

        monkeypatch.setattr(Federation, "page", page)


IDENTITY: frozenset[str] = frozenset()
REST = "fragment Rest on Case { isOverdue location { address } }"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            "{ cases(first: 3) { edges { node { id referenceNumber title status receivedAt"
            " category { code } owningAgency { code } timeline { at } } } } }",
            {"reference_number", "title", "status", "received_at", "category", "timeline"},
        ),
        (
            "{ cases(first: 3) { pageInfo { endCursor hasNextPage } totalCount __typename } }",
            IDENTITY,
        ),
        ("{ cases(first: 3) { edges { cursor node { __typename id } } } }", IDENTITY),
        (
            "{ cases(first: 3) { ...Page } }"
            " fragment Page on CaseConnection { edges { node { ...Rest title } } } " + REST,
            {"title", "due_at", "status", "location"},
        ),
        (
            "{ cases(first: 3) { edges { ... on CaseEdge {"
            " node { ... on Case { title } ...Rest } } } } } " + REST,
            {"title", "due_at", "status", "location"},
        ),
        # what @skip and @include leave out is not read
        ("{ cases(first: 3) { edges { node { title @skip(if: true) dueAt } } } }", {"due_at"}),
        (
            "{ cases(first: 3) { edges { node { title ... @include(if: false) { dueAt } } } } }",
            {"title"},
        ),
    ],
)
async def test_the_fields_a_document_reads(
    gateway: RunningGateway,
    monkeypatch: pytest.MonkeyPatch,
    document: str,
    expected: set[str],
) -> None:
    asked = _Asked(monkeypatch)
    body = await gateway.query(document)
    assert "errors" not in body, body["errors"]
    assert asked.fields == [frozenset(expected)]


async def test_each_cases_field_of_a_document_reads_its_own_fields(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers are kept per document and response key: sent twice, the same again."""
    asked = _Asked(monkeypatch)
    document = (
        "{ a: cases(first: 2) { edges { node { title } } }"
        " b: cases(first: 2) { edges { node { dueAt } } } }"
    )
    for _ in range(2):
        body = await gateway.query(document)
        assert "errors" not in body, body["errors"]
    assert sorted(asked.fields, key=str) == [
        frozenset({"due_at"}),
        frozenset({"due_at"}),
        frozenset({"title"}),
        frozenset({"title"}),
    ]


async def test_the_reads_follow_include_and_skip_variables(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _Asked(monkeypatch)
    document = """query($due: Boolean!) {
      cases(first: 2) { edges { node { title dueAt @include(if: $due) } } } }"""
    for due in (True, False, True):
        body = await gateway.query(document, {"due": due})
        assert "errors" not in body, body["errors"]
    assert asked.fields == [
        frozenset({"title", "due_at"}),
        frozenset({"title"}),
        frozenset({"title", "due_at"}),
    ]


async def test_a_case_field_declaring_no_reads_reads_whole_records(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _Asked(monkeypatch)
    field = build_schema()._schema.type_map["Case"].fields["description"]  # type: ignore[attr-defined]
    definition = field.extensions[plan_module.GraphQLCoreConverter.DEFINITION_BACKREF]
    monkeypatch.setattr(definition, "metadata", {})
    monkeypatch.setattr(plan_module, "_plans", {})  # no plan kept from before
    body = await gateway.query("{ cases(first: 3) { edges { node { title description } } } }")
    assert "errors" not in body
    assert asked.fields == [None]
    assert all(edge["node"]["description"] for edge in body["data"]["cases"]["edges"])


async def test_a_record_read_for_some_fields_is_not_kept_for_later_lookups(
    gateway: RunningGateway,
) -> None:
    """``Loaders.case`` (node and case lookups, referral partners) must give whole cases."""
    federation = gateway.gateway.federation
    where = CaseFilter(sources=frozenset({POSTGRES_SOURCE}))
    page = await federation.page(where, CaseOrder(), None, 3, frozenset({"title"}))
    whole = await federation.page(where, CaseOrder(), None, 3)
    assert [r.projection for r in page.records] == [page.records[0].projection] * 3
    assert page.records[0].projection is not None and page.records[0].description is None
    loaders = Loaders(federation)
    loaders.prime_cases(page.records)
    for partial, expected in zip(page.records, whole.records, strict=True):
        found = await loaders.case(partial.source, partial.local_id)
        assert found == expected and found.projection is None
    loaders.prime_cases(whole.records)  # whole records are kept: no round trip for them
    before = gateway.round_trips(POSTGRES_SOURCE)
    fresh = Loaders(federation)
    fresh.prime_cases(whole.records)
    assert await fresh.case(POSTGRES_SOURCE, whole.records[0].local_id) == whole.records[0]
    assert gateway.round_trips(POSTGRES_SOURCE) == before


FILTERS: list[dict[str, Any]] = [
    {"status": ["IN_PROGRESS", "RECEIVED"]},
    {"text": "ถนน"},
    {"provinceCode": ["10", "40"]},
    {"overdue": True},
    {"category": ["ROADS", "WATER"], "receivedFrom": "2026-01-01T00:00:00+00:00"},
]
"""Conditions an API agency may not apply itself, which the gateway then re-checks on the
records: a page read for no field must still hold what the check reads."""


@pytest.mark.parametrize("source", [REST_SOURCE, OPEN311_SOURCE, SQLITE_SOURCE])
@pytest.mark.parametrize("where", FILTERS)
async def test_a_filtered_page_read_for_few_fields_finds_the_same_cases(
    gateway: RunningGateway, source: str, where: dict[str, Any]
) -> None:
    document = (
        "query($filter: CaseFilterInput) { cases(first: 50, filter: $filter) "
        "{ edges { node { id %s } } } }"
    )
    variables = {"filter": {**where, "source": [source]}}
    few = await gateway.query(document % "", variables)
    every = await gateway.query(document % " ".join(SELECTIONS.values()), variables)
    assert "errors" not in few and "errors" not in every, (few, every)
    ids = [edge["node"]["id"] for edge in few["data"]["cases"]["edges"]]
    assert ids == [edge["node"]["id"] for edge in every["data"]["cases"]["edges"]]
    assert ids  # the filter finds something to compare
