"""Following one complaint across agencies: referrals resolved live, batched per source."""

from __future__ import annotations

import base64
from typing import Any

from samples import links
from tests.conftest import RunningGateway
from tests.resolvers.expected import OPEN311_SOURCE, POSTGRES_SOURCE, REST_SOURCE


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
    small, followed_small = await round_trips_following(gateway, 60)
    large, followed_large = await round_trips_following(gateway, 300)
    assert 0 < followed_small < followed_large
    assert small == large
    assert large == {
        (POSTGRES_SOURCE, "search_cases"): 1,
        (POSTGRES_SOURCE, "load_referrals"): 1,
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
