"""Every role against every kind of source: what each demo key sees, pushed into each query."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import pytest

from gateway.demo import demo_agency_key
from samples import links, pmoc_1111, provincial, traffy
from samples.generator import generate_cases
from tests.conftest import (
    KKN_REFERRED,
    OPEN311_CASES,
    OPEN311_SEED,
    REST_CASES,
    REST_SEED,
    SQLITE_CASES,
    SQLITE_SEED,
    AccessWorld,
    RunningGateway,
)
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
)

Key = tuple[str, str]  # (source id, local id)

INSPECTOR, ANALYST = "demo-inspector", "demo-analyst"
DDC, KKN, OPM, TRAFFY = "MOI-DDC", "KKN-PO", "OPM-1111", "BMA-TRAFFY"


def global_id(source: str, local_id: str) -> str:
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()


def key_of(global_id_text: str) -> Key:
    _, source, local_id = base64.b64decode(global_id_text).decode().split(":", 2)
    return source, local_id


@cache
def petitions() -> dict[int, str]:
    return {
        c.number: provincial.petition_no(c)
        for c in generate_cases(
            seed=SQLITE_SEED, count=SQLITE_CASES, province_codes=[provincial.PROVINCE]
        )
    }


def every_case(world: AccessWorld) -> dict[str, set[str]]:
    """Every case id per source, from the agencies' own data, not through the gateway."""
    return {
        POSTGRES_SOURCE: set(world.ddc_cases),
        SQLITE_SOURCE: set(petitions().values()),
        REST_SOURCE: {links.pmoc_id(n) for n in range(1, REST_CASES + 1)},
        OPEN311_SOURCE: {links.traffy_id(n) for n in range(1, OPEN311_CASES + 1)},
    }


def referrals(world: AccessWorld) -> set[tuple[str, str, str, str]]:
    """(from agency, from case id, to agency, their reference) of every referral recorded."""
    found: set[tuple[str, str, str, str]] = set()
    ddc_codes = {"OPM1111": OPM, "BMA-TF": TRAFFY, "KKN": KKN, "DDC": DDC}
    for case_id, to, ref in world.ddc_referrals:
        found.add((DDC, case_id, ddc_codes[to], ref))
    found |= _api_referrals()
    return found


@cache
def _api_referrals() -> set[tuple[str, str, str, str]]:
    found: set[tuple[str, str, str, str]] = set()
    for case in generate_cases(seed=REST_SEED, count=REST_CASES):
        native = pmoc_1111.native_case(case)
        for entry in native["operatings"]:
            target = pmoc_1111.AGENCY_CODES[entry["org_code"]]
            found.add((OPM, native["complaint_code"], target, entry["their_case"]))
    traffy_codes = {"DDC": DDC, "1111": OPM}
    for case in generate_cases(
        seed=OPEN311_SEED, count=OPEN311_CASES, province_codes=traffy.PROVINCES
    ):
        report = traffy.georeport(case)
        for entry in report["extended_attributes"]["referrals"]:
            target = traffy_codes[entry["to"]]
            found.add((TRAFFY, report["service_request_id"], target, entry["ref"]))
    return found


OWNER = {POSTGRES_SOURCE: DDC, SQLITE_SOURCE: KKN, REST_SOURCE: OPM, OPEN311_SOURCE: TRAFFY}
SOURCE_OF = {agency: source for source, agency in OWNER.items()}
# SQL sources with their_reference, REST sources with referrals.find.list_all (the 1111 API),
# and the city's Open311 server by reading its request pages (referrals_listed_by_scan).
LISTS_ITS_REFERRALS = {DDC, OPM, TRAFFY}


def visible(world: AccessWorld, who: str) -> set[Key]:
    """The rule, evaluated on raw data: own cases, cases referred to the agency, and cases the
    agency's own system referred elsewhere (when that system can list its referrals)."""
    everything = {(s, i) for s, ids in every_case(world).items() for i in ids}
    if who in (INSPECTOR, ANALYST):
        return everything
    agency = who.removeprefix("demo-agency-")
    shown = {(s, i) for s, i in everything if OWNER[s] == agency}
    for origin, case_id, target, reference in referrals(world):
        if target == agency:
            shown.add((SOURCE_OF[origin], case_id))
        if origin == agency and agency in LISTS_ITS_REFERRALS and target in SOURCE_OF:
            shown.add((SOURCE_OF[target], reference))
    return shown & everything


class Caller:
    def __init__(self, gateway: RunningGateway, key: str | None) -> None:
        self.gateway = gateway
        self.headers = {"authorization": f"Bearer {key}"} if key else {}

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.gateway.client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


PAGE = """query($filter: CaseFilterInput, $after: String) {
  cases(first: 500, filter: $filter, after: $after) {
    totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }"""

ROLES = [INSPECTOR, ANALYST, *(demo_agency_key(a) for a in (DDC, KKN, OPM, TRAFFY))]


@pytest.mark.parametrize("who", ROLES)
async def test_each_demo_key_sees_exactly_its_cases_in_every_kind_of_source(
    closed_gateway: RunningGateway, access_world: AccessWorld, who: str
) -> None:
    caller = Caller(closed_gateway, who)
    expected = visible(access_world, who)
    for source in ALL_SOURCES:
        seen: list[Key] = []
        after, total = None, None
        while True:
            data = await caller.query(PAGE, {"filter": {"source": [source]}, "after": after})
            connection = data["cases"]
            total = connection["totalCount"]
            seen.extend(key_of(edge["node"]["id"]) for edge in connection["edges"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        wanted = {k for k in expected if k[0] == source}
        assert len(seen) == len(set(seen)), f"{who}: a case twice across pages of {source}"
        assert set(seen) == wanted, f"{who} in {source}"
        assert total == len(wanted), f"{who}: totalCount of {source}"
    everywhere = await caller.query("{ cases(first: 0) { totalCount } }")
    assert everywhere["cases"]["totalCount"] == len(expected)


async def test_an_agency_sees_a_subset_and_the_inspector_everything(
    access_world: AccessWorld,
) -> None:
    """The ground truth itself must discriminate, or the test above proves nothing."""
    everything = visible(access_world, INSPECTOR)
    kkn = visible(access_world, demo_agency_key(KKN))
    ddc = visible(access_world, demo_agency_key(DDC))
    assert (POSTGRES_SOURCE, "7") in kkn and (POSTGRES_SOURCE, "9") not in kkn
    assert (SQLITE_SOURCE, petitions()[3]) in ddc  # DDC referred it to Khon Kaen
    assert (REST_SOURCE, links.pmoc_id(15)) in ddc and (REST_SOURCE, links.pmoc_id(16)) not in ddc
    assert (OPEN311_SOURCE, links.traffy_id(15)) in ddc  # the city returned it to DDC
    assert len(kkn) < len(everything) and len(ddc) < len(everything)
    opm = visible(access_world, demo_agency_key(OPM))
    assert (OPEN311_SOURCE, links.traffy_id(15)) in opm  # 1111 forwarded it to the city
    assert (OPEN311_SOURCE, links.traffy_id(16)) not in opm


NODE = "query($id: ID!) { node(id: $id) { id } case(id: $id) { referenceNumber } }"


@pytest.mark.parametrize(
    ("who", "source", "local_id", "shown"),
    [
        (KKN, POSTGRES_SOURCE, "7", True),  # referred to Khon Kaen
        (KKN, POSTGRES_SOURCE, "9", False),  # guessed: another agency's own case
        (KKN, REST_SOURCE, links.pmoc_id(15), False),
        (KKN, OPEN311_SOURCE, links.traffy_id(15), False),
        (OPM, SQLITE_SOURCE, 3, False),  # DDC referred petition 3 to Khon Kaen, not to OPM
        (OPM, POSTGRES_SOURCE, "15", True),  # referred to the 1111 service
        (TRAFFY, REST_SOURCE, links.pmoc_id(15), True),  # 1111 forwarded it to the city
        (TRAFFY, REST_SOURCE, links.pmoc_id(16), False),
        (DDC, OPEN311_SOURCE, links.traffy_id(15), True),  # the city returned it
        (DDC, OPEN311_SOURCE, links.traffy_id(16), False),
        (DDC, SQLITE_SOURCE, 3, True),  # DDC referred petition 3 to Khon Kaen
        (DDC, SQLITE_SOURCE, 5, False),
    ],
)
async def test_a_guessed_id_of_a_hidden_case_is_null_in_node_and_case(
    closed_gateway: RunningGateway, who: str, source: str, local_id: str | int, shown: bool
) -> None:
    if isinstance(local_id, int):
        local_id = petitions()[local_id]
    caller = Caller(closed_gateway, demo_agency_key(who))
    data = await caller.query(NODE, {"id": global_id(source, local_id)})
    assert (data["node"] is not None, data["case"] is not None) == (shown, shown)


async def test_an_inspector_reads_any_case_by_id(closed_gateway: RunningGateway) -> None:
    caller = Caller(closed_gateway, INSPECTOR)
    data = await caller.query(NODE, {"id": global_id(SQLITE_SOURCE, petitions()[5])})
    assert data["node"] is not None


FOLLOW = """query($id: ID!) { case(id: $id) {
  referrals { toAgency { code } counterpart { id } }
  relatedCases { id } } }"""


async def test_following_counterpart_never_opens_a_case_referred_elsewhere(
    closed_gateway: RunningGateway,
) -> None:
    """Damrongdhama case 10 went to the 1111 service and to Khon Kaen: each of the two sees
    the case and its own counterpart, never the other's."""
    case_10 = global_id(POSTGRES_SOURCE, "10")
    pmoc_10 = global_id(REST_SOURCE, links.pmoc_id(10))
    petition = global_id(SQLITE_SOURCE, petitions()[KKN_REFERRED[10]])
    for who, mine, theirs in ((OPM, pmoc_10, petition), (KKN, petition, pmoc_10)):
        data = await Caller(closed_gateway, demo_agency_key(who)).query(FOLLOW, {"id": case_10})
        counterparts = {
            r["toAgency"]["code"]: (r["counterpart"] or {}).get("id")
            for r in data["case"]["referrals"]
        }
        assert mine in counterparts.values(), who
        assert theirs not in counterparts.values(), who
        related = {c["id"] for c in data["case"]["relatedCases"]}
        assert mine in related and theirs not in related, who
    inspector = await Caller(closed_gateway, INSPECTOR).query(FOLLOW, {"id": case_10})
    assert {r["counterpart"]["id"] for r in inspector["case"]["referrals"]} == {pmoc_10, petition}


async def test_an_agency_whose_own_system_is_an_api_finds_what_it_referred(
    closed_gateway: RunningGateway, access_world: AccessWorld
) -> None:
    """Following its own referral reaches the city's case 15 (the referral proves it was handed
    there), and so do its id and the searches: the 1111 API lists what it referred
    (``referrals.find.list_all``)."""
    caller = Caller(closed_gateway, demo_agency_key(OPM))
    data = await caller.query(
        """query($id: ID!) { case(id: $id) { referrals { counterpart { id
             referrals { counterpart { id } } } } } }""",
        {"id": global_id(REST_SOURCE, links.pmoc_id(15))},
    )
    (referral,) = data["case"]["referrals"]
    city = referral["counterpart"]
    assert city["id"] == global_id(OPEN311_SOURCE, links.traffy_id(15))
    # The city returned it to Damrongdhama, whose case 15 was referred to the 1111 service:
    (returned,) = city["referrals"]
    assert returned["counterpart"]["id"] == global_id(POSTGRES_SOURCE, "15")
    # By id too: the 1111 API can be asked which of its referrals name a case (referrals.find).
    assert (await caller.query(NODE, {"id": city["id"]}))["node"] is not None
    # Searches and counts include the city's cases the 1111 data says it forwarded there.
    handed_on = {
        reference
        for origin, _, target, reference in referrals(access_world)
        if origin == OPM and target == TRAFFY
    } & every_case(access_world)[OPEN311_SOURCE]
    expected = {i for s, i in visible(access_world, demo_agency_key(OPM)) if s == OPEN311_SOURCE}
    assert links.traffy_id(15) in handed_on and handed_on <= expected
    search = await caller.query(
        '{ cases(first: 500, filter: {source: ["traffy-city"]}) '
        "{ totalCount edges { node { id } } } }"
    )
    assert search["cases"]["totalCount"] == len(expected)
    assert {key_of(e["node"]["id"])[1] for e in search["cases"]["edges"]} == expected
    assert (await caller.query(NODE, {"id": global_id(POSTGRES_SOURCE, "16")}))["node"] is None


async def test_the_analyst_sees_every_case_and_aggregate(
    closed_gateway: RunningGateway, access_world: AccessWorld
) -> None:
    data = await Caller(closed_gateway, ANALYST).query("{ cases(first: 1) { totalCount } }")
    assert data["cases"]["totalCount"] == len(visible(access_world, INSPECTOR))


async def test_agency_searches_are_pushed_into_sql_not_filtered_afterwards(
    closed_gateway: RunningGateway,
) -> None:
    """One statement per SQL source per page and per count, whatever the agency may see: the
    rule is in the WHERE clause."""
    caller = Caller(closed_gateway, demo_agency_key(KKN))
    before = closed_gateway.round_trips(POSTGRES_SOURCE, "search_cases")
    data = await caller.query(
        '{ cases(first: 1, filter: {source: ["damrongdhama"]}) '
        "{ totalCount edges { node { id } } pageInfo { hasNextPage } } }"
    )
    assert closed_gateway.round_trips(POSTGRES_SOURCE, "search_cases") == before + 1
    assert data["cases"]["totalCount"] == len(KKN_REFERRED)
    assert data["cases"]["pageInfo"]["hasNextPage"] is True


async def test_no_key_and_a_bad_key_read_nothing(closed_gateway: RunningGateway) -> None:
    for headers in ({}, {"authorization": "Bearer not-a-key"}):
        response = await closed_gateway.client.post(
            "/graphql", json={"query": "{ cases { totalCount } }"}, headers=headers
        )
        body = response.json()
        assert body.get("data") is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
