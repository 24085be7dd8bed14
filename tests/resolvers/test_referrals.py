"""Following one complaint across agencies: referrals resolved live, batched per source."""

from __future__ import annotations

import base64
from datetime import UTC, timedelta
from typing import Any

from samples import links
from samples.generator import SyntheticCase, generate_cases
from tests.conftest import REST_CASES, REST_SEED, RunningGateway
from tests.resolvers.expected import OPEN311_SOURCE, POSTGRES_SOURCE, REST_SOURCE, SQLITE_SOURCE


def case_id(source: str, local_id: str) -> str:
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()


STEP = """
  referrals {
    kind at receivingReference fromAgency { code } toAgency { code }
    counterpart { id referenceNumber source { id } status
"""

TRAIL = (
    "query Trail($id: ID!) { case(id: $id) { id source { id }"
    + STEP
    + STEP
    + STEP
    + " id source { id } } } } } } } } }"
)


async def test_one_query_follows_a_complaint_to_1111_the_city_and_back(
    gateway: RunningGateway,
) -> None:
    number = 15  # an escalated chain (samples.links)
    start = case_id(POSTGRES_SOURCE, links.damrongdhama_id(number))
    body = await gateway.query(TRAIL, {"id": start})
    assert "errors" not in body, body.get("errors")
    first = body["data"]["case"]["referrals"][0]
    assert first["kind"] == "ESCALATE"
    assert (first["fromAgency"]["code"], first["toAgency"]["code"]) == ("MOI-DDC", "OPM-1111")
    pmoc = first["counterpart"]
    assert pmoc["source"]["id"] == REST_SOURCE
    assert pmoc["referenceNumber"] == links.pmoc_id(number)
    second = pmoc["referrals"][0]
    assert second["kind"] == "FORWARD"
    assert second["toAgency"]["code"] == "BMA-TRAFFY"
    city = second["counterpart"]
    assert city["source"]["id"] == OPEN311_SOURCE
    assert city["referenceNumber"] == links.traffy_id(number)
    back = city["referrals"][0]
    assert back["kind"] == "RETURN"
    assert back["toAgency"]["code"] == "MOI-DDC"
    assert back["counterpart"]["id"] == start


async def test_referred_from_and_related_cases_link_both_ways(gateway: RunningGateway) -> None:
    number = 10
    body = await gateway.query(
        """query($id: ID!) { case(id: $id) {
             referredFrom { kind fromAgency { code } origin { id } counterpart { id } }
             relatedCases { id source { id } } } }""",
        {"id": case_id(REST_SOURCE, links.pmoc_id(number))},
    )
    assert "errors" not in body, body.get("errors")
    case = body["data"]["case"]
    (incoming,) = case["referredFrom"]
    origin = case_id(POSTGRES_SOURCE, links.damrongdhama_id(number))
    assert incoming["fromAgency"]["code"] == "MOI-DDC"
    assert incoming["origin"]["id"] == origin
    assert incoming["counterpart"]["id"] == case_id(REST_SOURCE, links.pmoc_id(number))
    related = {(c["source"]["id"], c["id"]) for c in case["relatedCases"]}
    assert related == {
        (POSTGRES_SOURCE, origin),
        (OPEN311_SOURCE, case_id(OPEN311_SOURCE, links.traffy_id(number))),
    }


def pmoc_case(number: int) -> SyntheticCase:
    (case,) = [c for c in generate_cases(seed=REST_SEED, count=REST_CASES) if c.number == number]
    return case


async def test_the_1111_operatings_arrive_with_every_field(gateway: RunningGateway) -> None:
    """The 1111 service's handling record: when, kind, its result, secrecy, their reference."""
    for number in (20, 30):  # a CORRUPTION case is secret ("ลับ"), the others "ปกติ"
        body = await gateway.query(
            "query($id: ID!) { case(id: $id) { referrals {"
            " at kind status secrecy receivingReference toAgency { code } } } }",
            {"id": case_id(REST_SOURCE, links.pmoc_id(number))},
        )
        assert "errors" not in body, body.get("errors")
        generated = pmoc_case(number)
        (referral,) = body["data"]["case"]["referrals"]
        assert referral == {
            "at": (generated.received_at + timedelta(days=2)).astimezone(UTC).isoformat(),
            "kind": "FORWARD",
            "status": "อยู่ระหว่างดำเนินการ",
            "secrecy": "ลับ" if generated.category == "CORRUPTION" else "ปกติ",
            "receivingReference": links.traffy_id(number),
            "toAgency": {"code": "BMA-TRAFFY"},
        }


async def test_a_city_case_is_referred_from_the_1111_service_an_api(
    gateway: RunningGateway,
) -> None:
    """The 1111 API declares a search by target, so its referrals count as incoming too."""
    number = 25
    body = await gateway.query(
        """query($id: ID!) { case(id: $id) {
             referredFrom { kind status fromAgency { code } receivingReference origin { id } }
           } }""",
        {"id": case_id(OPEN311_SOURCE, links.traffy_id(number))},
    )
    assert "errors" not in body, body.get("errors")
    assert body["data"]["case"]["referredFrom"] == [
        {
            "kind": "FORWARD",
            "status": "อยู่ระหว่างดำเนินการ",
            "fromAgency": {"code": "OPM-1111"},
            "receivingReference": links.traffy_id(number),
            "origin": {"id": case_id(REST_SOURCE, links.pmoc_id(number))},
        }
    ]


async def test_related_cases_reach_a_system_nobody_can_search_through_its_referrer(
    gateway: RunningGateway,
) -> None:
    """The city platform (Open311) cannot be asked what it returned to the Damrongdhama
    Center; the 1111 service that forwarded the case there names it."""
    number = 15
    body = await gateway.query(
        "query($id: ID!) { case(id: $id) { relatedCases { id } } }",
        {"id": case_id(POSTGRES_SOURCE, links.damrongdhama_id(number))},
    )
    assert "errors" not in body, body.get("errors")
    assert {c["id"] for c in body["data"]["case"]["relatedCases"]} == {
        case_id(REST_SOURCE, links.pmoc_id(number)),
        case_id(OPEN311_SOURCE, links.traffy_id(number)),
    }


INCOMING = """
query Incoming($first: Int) {
  cases(first: $first, filter: {source: ["traffy-city"]}, orderBy: {direction: ASC}) {
    edges { node { referredFrom { origin { id } } } }
  }
}
"""


async def test_referred_from_is_batched_per_searchable_source(gateway: RunningGateway) -> None:
    sources = (POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE)
    operations = ("find_referrals_to", "load_cases")

    async def costs(first: int) -> tuple[dict[tuple[str, str], float], int]:
        before = {(s, o): gateway.round_trips(s, o) for s in sources for o in operations}
        body = await gateway.query(INCOMING, {"first": first})
        assert "errors" not in body, body.get("errors")
        found = sum(len(e["node"]["referredFrom"]) for e in body["data"]["cases"]["edges"])
        after = {key: gateway.round_trips(*key) - value for key, value in before.items()}
        return {key: value for key, value in after.items() if value}, found

    small, found_small = await costs(20)
    large, found_large = await costs(200)
    assert 0 < found_small < found_large
    assert small == large
    assert large[(REST_SOURCE, "find_referrals_to")] == 1
    assert large[(REST_SOURCE, "load_cases")] == 1
    assert all(value == 1 for value in large.values())


async def test_a_case_nobody_referred_has_no_referrals(gateway: RunningGateway) -> None:
    body = await gateway.query(
        "query($id: ID!) { case(id: $id) {"
        " referrals { at } referredFrom { at } relatedCases { id } } }",
        {"id": case_id(POSTGRES_SOURCE, "7")},
    )
    assert body["data"]["case"] == {"referrals": [], "referredFrom": [], "relatedCases": []}


FOLLOW = """
query Follow($first: Int) {
  cases(first: $first, filter: {source: ["damrongdhama"]}, orderBy: {direction: ASC}) {
    edges { node { id
      referrals { counterpart { id timeline { at }
        referrals { counterpart { id title referrals { kind } } } } }
    } }
  }
}
"""


async def round_trips_following(gateway: RunningGateway, first: int) -> tuple[dict[str, Any], int]:
    operations = ("search_cases", "load_referrals", "load_cases", "load_timelines")
    sources = (POSTGRES_SOURCE, REST_SOURCE, OPEN311_SOURCE)
    before = {(s, o): gateway.round_trips(s, o) for s in sources for o in operations}
    body = await gateway.query(FOLLOW, {"first": first})
    assert "errors" not in body, body.get("errors")
    followed = sum(
        1
        for edge in body["data"]["cases"]["edges"]
        for referral in edge["node"]["referrals"]
        if referral["counterpart"] is not None
    )
    after = {key: gateway.round_trips(*key) - value for key, value in before.items()}
    return {key: value for key, value in after.items() if value}, followed


async def test_following_referrals_costs_one_request_per_receiving_source_per_level(
    gateway: RunningGateway,
) -> None:
    small, followed_small = await round_trips_following(gateway, 100)
    large, followed_large = await round_trips_following(gateway, 140)
    assert 0 < followed_small < followed_large
    assert small == large
    assert large == {
        (POSTGRES_SOURCE, "search_cases"): 1,  # its referrals carried in the page
        (REST_SOURCE, "load_cases"): 1,
        (REST_SOURCE, "load_timelines"): 1,
        (REST_SOURCE, "load_referrals"): 1,
        (OPEN311_SOURCE, "load_cases"): 1,
        (OPEN311_SOURCE, "load_referrals"): 1,
    }


async def test_city_platform_keeps_photos_and_the_agencies_it_routed_to(
    gateway: RunningGateway,
) -> None:
    body = await gateway.query(
        "query($id: ID!) { case(id: $id) { photoUrls responsibleAgencies location { latitude } } }",
        {"id": case_id(OPEN311_SOURCE, links.traffy_id(14))},
    )
    case = body["data"]["case"]
    assert case["photoUrls"] == [f"https://photos.traffy.example/{links.traffy_id(14)}.jpg"]
    assert len(case["responsibleAgencies"].split(", ")) == 1 + 14 % 3
    assert case["location"]["latitude"] is not None
