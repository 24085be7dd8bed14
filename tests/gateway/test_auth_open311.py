"""The Open311 read endpoint applies the same keys and the same row-level rules as the graph."""

from __future__ import annotations

import base64

from gateway.demo import demo_agency_key
from tests.conftest import KKN_REFERRED, AccessWorld, RunningGateway
from tests.resolvers.test_access import global_id, petitions, visible

KKN = demo_agency_key("KKN-PO")


def key_of(request_id: str) -> tuple[str, str]:
    _, source, local_id = base64.b64decode(request_id).decode().split(":", 2)
    return source, local_id


async def test_without_a_key_the_endpoint_answers_401(closed_gateway: RunningGateway) -> None:
    for path in ("/open311/v2/requests.json", f"/open311/v2/requests/{global_id('a', 'b')}.json"):
        response = await closed_gateway.client.get(path)
        assert response.status_code == 401
        assert response.json()[0]["code"] == 401
    bad = await closed_gateway.client.get(
        "/open311/v2/requests.json", headers={"authorization": "Bearer nope"}
    )
    assert bad.status_code == 401


async def test_an_agency_lists_exactly_the_requests_it_may_see(
    closed_gateway: RunningGateway, access_world: AccessWorld
) -> None:
    response = await closed_gateway.client.get(
        "/open311/v2/requests.json",
        params={"page_size": 1000},
        headers={"authorization": f"Bearer {KKN}"},
    )
    assert response.status_code == 200
    listed = [key_of(item["service_request_id"]) for item in response.json()]
    assert set(listed) == visible(access_world, KKN)
    assert len(listed) == len(set(listed))


async def test_one_request_of_another_agency_is_not_found(closed_gateway: RunningGateway) -> None:
    headers = {"authorization": f"Bearer {KKN}"}
    hidden = global_id("damrongdhama", "9")
    shown = global_id("damrongdhama", "7")
    own = global_id("khonkaen-office", petitions()[KKN_REFERRED[7]])
    assert (
        await closed_gateway.client.get(f"/open311/v2/requests/{hidden}.json", headers=headers)
    ).status_code == 404
    assert (
        await closed_gateway.client.get(f"/open311/v2/requests/{shown}.json", headers=headers)
    ).status_code == 200
    batch = await closed_gateway.client.get(
        "/open311/v2/requests.json",
        params={"service_request_id": ",".join([hidden, shown, own])},
        headers=headers,
    )
    assert [item["service_request_id"] for item in batch.json()] == [shown, own]
    inspector = await closed_gateway.client.get(
        f"/open311/v2/requests/{hidden}.json", headers={"authorization": "Bearer demo-inspector"}
    )
    assert inspector.status_code == 200
