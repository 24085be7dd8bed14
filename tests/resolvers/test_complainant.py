"""Complainants: masked by default, revealed only with pii:read on a visible case, never for
anonymous or confidential complaints, matched across agencies by a keyed HMAC, and audited."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from stdnum.th import pin

from gateway.audit import AuditLog
from gateway.auth import PersonalDataSettings
from gateway.demo import demo_agency_key
from resolvers.access import Principal, Role
from resolvers.audit import AuditQuery, AuditRecord
from resolvers.complainant import mask_citizen_id, may_reveal
from samples import links, provincial
from samples.generator import (
    DEMO_MATCH_KEY,
    SyntheticComplainant,
    complainant_of,
    generate_cases,
)
from tests.conftest import (
    REST_CASES,
    REST_SEED,
    SQLITE_CASES,
    SQLITE_SEED,
    AccessWorld,
    RunningGateway,
    running,
)
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
)

INSPECTOR, ANALYST = "demo-inspector", "demo-analyst"
DDC_SEED, DDC_CASES = 1567, 60  # the access world's own Damrongdhama database
PERSONAL = "name citizenId phone address revealed isAnonymous isConfidential citizenIdValid"


def global_id(source: str, local_id: str) -> str:
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()


@dataclass(frozen=True)
class Filed:
    """One case as the agency stored it, with who filed it (from the generator, not the API)."""

    source: str
    local_id: str
    who: SyntheticComplainant


def every_filed() -> list[Filed]:
    filed = [
        Filed(POSTGRES_SOURCE, str(n), complainant_of(DDC_SEED, n)) for n in range(1, DDC_CASES + 1)
    ]
    for case in generate_cases(
        seed=SQLITE_SEED, count=SQLITE_CASES, province_codes=[provincial.PROVINCE]
    ):
        filed.append(
            Filed(
                SQLITE_SOURCE,
                provincial.petition_no(case),
                complainant_of(SQLITE_SEED, case.number),
            )
        )
    filed += [
        Filed(REST_SOURCE, links.pmoc_id(n), complainant_of(REST_SEED, n))
        for n in range(1, REST_CASES + 1)
    ]
    return filed


def first_named(source: str) -> Filed:
    return next(
        f
        for f in every_filed()
        if f.source == source and f.who.person is not None and not f.who.is_confidential
    )


@pytest.fixture
async def pii_gateway(
    access_world: AccessWorld, tmp_path: Path
) -> AsyncIterator[tuple[RunningGateway, str]]:
    """The closed access world with a matching key and an audit log of its own."""
    audit = f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite'}"
    auth = access_world.config.auth.model_copy(
        update={"personal_data": PersonalDataSettings(match_key=DEMO_MATCH_KEY, audit_store=audit)}
    )
    started = await running(replace(access_world.config, auth=auth))
    yield started, audit
    await started.client.aclose()
    await started.gateway.stop()


async def ask(
    gateway: RunningGateway, key: str, document: str, purpose: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"}
    if purpose is not None:
        headers["x-purpose"] = purpose
    response = await gateway.client.post("/graphql", json={"query": document}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def complainant_query(filed: Filed, fields: str = PERSONAL) -> str:
    node = global_id(filed.source, filed.local_id)
    return f'{{ case(id: "{node}") {{ complainant {{ {fields} }} }} }}'


async def audit_entries(url: str) -> list[AuditRecord]:
    log = AuditLog(url)
    try:
        return await log.entries(AuditQuery(first=1000))
    finally:
        await log.close()


@pytest.mark.parametrize("source", [POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE])
async def test_inspector_with_pii_read_sees_the_agencys_own_values(
    pii_gateway: tuple[RunningGateway, str], source: str
) -> None:
    gateway, _ = pii_gateway
    filed = first_named(source)
    person = filed.who.person
    assert person is not None
    body = await ask(gateway, INSPECTOR, complainant_query(filed))
    assert "errors" not in body, body
    assert body["data"]["case"]["complainant"] == {
        "name": person.name,
        "citizenId": pin.format(person.citizen_id),
        "phone": person.phone,
        "address": person.address,
        "revealed": True,
        "isAnonymous": False,
        "isConfidential": False,
        "citizenIdValid": True,
    }


@pytest.mark.parametrize("source", [POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE])
async def test_analyst_reads_masks_only(
    pii_gateway: tuple[RunningGateway, str], source: str
) -> None:
    gateway, audit = pii_gateway
    filed = first_named(source)
    person = filed.who.person
    assert person is not None
    body = await ask(gateway, ANALYST, complainant_query(filed))
    shown = body["data"]["case"]["complainant"]
    cid = person.citizen_id
    assert shown["citizenId"] == f"x-xxxx-xxxxx-{cid[10:12]}-{cid[12]}"
    assert shown["phone"] == "x" * 6 + person.phone[-4:]
    assert shown["name"] == " ".join(word[0] + "***" for word in person.name.split())
    assert shown["address"] == "*** " + person.address.split()[-1]
    assert shown["revealed"] is False
    assert not any(e.action == "reveal" for e in await audit_entries(audit))


async def test_an_agency_sees_its_own_complainants_and_nothing_of_a_case_it_may_not_see(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, audit = pii_gateway
    own = first_named(SQLITE_SOURCE)
    assert own.who.person is not None
    kkn = demo_agency_key("KKN-PO")
    mine = await ask(gateway, kkn, complainant_query(own, "name revealed"))
    assert mine["data"]["case"]["complainant"] == {"name": own.who.person.name, "revealed": True}
    # A Damrongdhama case never referred to Khon Kaen: the case itself is withheld.
    other = next(
        f
        for f in every_filed()
        if f.source == POSTGRES_SOURCE
        and f.who.person is not None
        and f.local_id not in ("7", "10")
    )
    theirs = await ask(gateway, kkn, complainant_query(other, "name citizenId"), "follow-up")
    assert theirs["data"] == {"case": None}
    denials = [e for e in await audit_entries(audit) if e.action == "deny"]
    assert [(e.source, e.case_id, e.agency, e.purpose) for e in denials] == [
        (POSTGRES_SOURCE, other.local_id, "KKN-PO", "follow-up")
    ]


@pytest.mark.parametrize("flag", ["is_anonymous", "is_confidential"])
@pytest.mark.parametrize("source", [POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE])
async def test_anonymous_and_confidential_complaints_are_never_revealed(
    pii_gateway: tuple[RunningGateway, str], source: str, flag: str
) -> None:
    gateway, audit = pii_gateway
    filed = next(f for f in every_filed() if f.source == source and getattr(f.who, flag))
    body = await ask(gateway, INSPECTOR, complainant_query(filed, PERSONAL + " cases { id }"))
    assert "errors" not in body, body
    assert body["data"]["case"]["complainant"] == {
        "name": None,
        "citizenId": None,
        "phone": None,
        "address": None,
        "revealed": False,
        "isAnonymous": flag == "is_anonymous",
        "isConfidential": flag == "is_confidential",
        "citizenIdValid": None,
        "cases": [],
    }
    assert await audit_entries(audit) == []


async def test_open311_keeps_no_personal_data(pii_gateway: tuple[RunningGateway, str]) -> None:
    gateway, _ = pii_gateway
    node = global_id(OPEN311_SOURCE, links.traffy_id(1))
    body = await ask(gateway, INSPECTOR, f'{{ case(id: "{node}") {{ complainant {{ name }} }} }}')
    assert body["data"]["case"] == {"complainant": None}


def test_citizen_id_mask_shows_the_last_three_digits_of_a_valid_id_only() -> None:
    assert mask_citizen_id("1101700230708") == "x-xxxx-xxxxx-70-8"
    assert mask_citizen_id("1-1017-00230-70-8") == "x-xxxx-xxxxx-70-8"
    assert mask_citizen_id("1101700230709") == "x-xxxx-xxxxx-xx-x"  # bad check digit
    assert mask_citizen_id(None) is None


async def test_reveals_are_audited_with_fields_and_purpose(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, audit = pii_gateway
    filed = first_named(REST_SOURCE)
    body = await ask(
        gateway, INSPECTOR, complainant_query(filed, "name phone isAnonymous"), "case review 42"
    )
    assert body["data"]["case"]["complainant"]["name"] is not None
    (entry,) = await audit_entries(audit)
    assert (entry.action, entry.source, entry.case_id) == ("reveal", REST_SOURCE, filed.local_id)
    assert entry.fields == ("name", "phone")
    assert entry.purpose == "case review 42"
    assert entry.roles == ("inspector",)
    assert entry.subject.startswith("key:")


def cases_of(citizen_id: str) -> set[tuple[str, str]]:
    """Every case this person filed under their name, in every agency's own data."""
    return {
        (f.source, f.local_id)
        for f in every_filed()
        if f.who.person is not None
        and f.who.person.citizen_id == citizen_id
        and not f.who.is_confidential
    }


def someone_in_every_agency() -> Filed:
    """A Damrongdhama case whose complainant also complained in Khon Kaen and to 1111."""
    for filed in every_filed():
        if filed.source != POSTGRES_SOURCE or filed.who.person is None or filed.who.is_confidential:
            continue
        sources = {s for s, _ in cases_of(filed.who.person.citizen_id)}
        if {SQLITE_SOURCE, REST_SOURCE} <= sources:
            return filed
    raise AssertionError("the generator has no complainant in every agency")


def key_of(global_id_text: str) -> tuple[str, str]:
    _, source, local_id = base64.b64decode(global_id_text).decode().split(":", 2)
    return source, local_id


async def test_complainant_cases_finds_the_same_person_in_postgres_sqlite_and_rest(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, audit = pii_gateway
    filed = someone_in_every_agency()
    assert filed.who.person is not None
    before = {s: gateway.round_trips(s, "cases_by_complainant") for s in ALL_SOURCES}
    body = await ask(gateway, INSPECTOR, complainant_query(filed, "cases { id }"), "linkage")
    assert "errors" not in body, body
    found = {key_of(c["id"]) for c in body["data"]["case"]["complainant"]["cases"]}
    assert found == cases_of(filed.who.person.citizen_id)
    assert {s for s, _ in found} == {POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE}
    spent = {s: gateway.round_trips(s, "cases_by_complainant") - before[s] for s in ALL_SOURCES}
    assert spent == {POSTGRES_SOURCE: 1, SQLITE_SOURCE: 1, REST_SOURCE: 1, OPEN311_SOURCE: 0}
    linked = [e for e in await audit_entries(audit) if e.fields == ("cases",)]
    assert [(e.case_id, e.purpose) for e in linked] == [(filed.local_id, "linkage")]


async def test_complainant_cases_of_a_whole_page_cost_one_round_trip_per_source(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, _ = pii_gateway
    before = {s: gateway.round_trips(s, "cases_by_complainant") for s in ALL_SOURCES}
    body = await ask(
        gateway,
        INSPECTOR,
        "{ cases(first: 60) { edges { node { id complainant { revealed cases { id } } } } } }",
    )
    assert "errors" not in body, body
    nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
    linked = [n for n in nodes if n["complainant"] and n["complainant"]["cases"]]
    assert len(linked) > 10  # many people, one batch per source
    for node in linked:
        assert key_of(node["id"]) in {key_of(c["id"]) for c in node["complainant"]["cases"]}
    spent = {s: gateway.round_trips(s, "cases_by_complainant") - before[s] for s in ALL_SOURCES}
    assert spent == {POSTGRES_SOURCE: 1, SQLITE_SOURCE: 1, REST_SOURCE: 1, OPEN311_SOURCE: 0}


async def test_an_agency_finds_only_the_persons_cases_it_may_see(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, _ = pii_gateway
    own = next(
        f
        for f in every_filed()
        if f.source == SQLITE_SOURCE
        and f.who.person is not None
        and not f.who.is_confidential
        and {s for s, _ in cases_of(f.who.person.citizen_id)} > {SQLITE_SOURCE}
    )
    assert own.who.person is not None
    body = await ask(gateway, demo_agency_key("KKN-PO"), complainant_query(own, "cases { id }"))
    assert "errors" not in body, body
    found = {key_of(c["id"]) for c in body["data"]["case"]["complainant"]["cases"]}
    everywhere = cases_of(own.who.person.citizen_id)
    referred_to_kkn = {(POSTGRES_SOURCE, "7"), (POSTGRES_SOURCE, "10")}
    assert found == {k for k in everywhere if k[0] == SQLITE_SOURCE or k in referred_to_kkn}
    assert found < everywhere


async def test_without_pii_read_complainant_cases_is_forbidden_and_audited(
    pii_gateway: tuple[RunningGateway, str],
) -> None:
    gateway, audit = pii_gateway
    filed = first_named(POSTGRES_SOURCE)
    body = await ask(gateway, ANALYST, complainant_query(filed, "name cases { id }"), "stats")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "pii:read" in error["message"]
    (entry,) = await audit_entries(audit)
    assert (entry.action, entry.case_id, entry.roles, entry.purpose) == (
        "deny",
        filed.local_id,
        ("analyst",),
        "stats",
    )


async def test_every_reveal_on_a_page_is_audited(pii_gateway: tuple[RunningGateway, str]) -> None:
    gateway, audit = pii_gateway
    body = await ask(
        gateway,
        INSPECTOR,
        "{ cases(first: 80) { edges { node { id complainant { name revealed } } } } }",
        "monthly review",
    )
    nodes = [edge["node"] for edge in body["data"]["cases"]["edges"]]
    revealed = {key_of(n["id"]) for n in nodes if n["complainant"] and n["complainant"]["revealed"]}
    assert len(revealed) > 20
    entries = await audit_entries(audit)
    assert {(e.source, e.case_id) for e in entries} == revealed
    assert len(entries) == len(revealed)
    assert {(e.action, e.fields, e.purpose) for e in entries} == {
        ("reveal", ("name",), "monthly review")
    }


def test_an_analyst_never_sees_personal_data_even_with_the_scope() -> None:
    pii = frozenset({"pii:read"})
    assert not may_reveal(Principal("key:a", frozenset({Role.ANALYST}), None, pii))
    assert not may_reveal(Principal("key:i", frozenset({Role.INSPECTOR})))
    assert may_reveal(Principal("key:i", frozenset({Role.INSPECTOR}), None, pii))
    assert may_reveal(Principal("key:k", frozenset({Role.AGENCY}), "KKN-PO", pii))
