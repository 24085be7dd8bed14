"""Relay global ids: opaque, stable, and resolvable through ``node`` and ``case``."""

from __future__ import annotations

import base64

from tests.conftest import RunningGateway

CASE_BY_ID = """
query One($id: ID!) {
  case(id: $id) { id referenceNumber title source { id } }
  node(id: $id) { id ... on Case { referenceNumber } }
}
"""


async def test_every_listed_case_resolves_by_its_id(gateway: RunningGateway) -> None:
    page = await gateway.query(
        "{ cases(first: 40) { edges { node { id referenceNumber source { id } } } } }"
    )
    for edge in page["data"]["cases"]["edges"]:
        listed = edge["node"]
        body = await gateway.query(CASE_BY_ID, {"id": listed["id"]})
        assert body["data"]["case"]["referenceNumber"] == listed["referenceNumber"]
        assert body["data"]["node"] == {
            "id": listed["id"],
            "referenceNumber": listed["referenceNumber"],
        }


async def test_global_id_names_the_source_inside_an_opaque_token(gateway: RunningGateway) -> None:
    page = await gateway.query("{ cases(first: 1) { edges { node { id source { id } } } } }")
    node = page["data"]["cases"]["edges"][0]["node"]
    decoded = base64.b64decode(node["id"]).decode()
    assert decoded.startswith(f"Case:{node['source']['id']}:")


async def test_unknown_case_and_unknown_source_are_null(gateway: RunningGateway) -> None:
    for key in ("damrongdhama:999999999", "no-such-agency:1", "damrongdhama:not-a-number"):
        global_id = base64.b64encode(f"Case:{key}".encode()).decode()
        body = await gateway.query(CASE_BY_ID, {"id": global_id})
        assert body["data"] == {"case": None, "node": None}, key


async def test_malformed_id_is_a_clear_error(gateway: RunningGateway) -> None:
    body = await gateway.query(CASE_BY_ID, {"id": "not base64 at all"})
    assert body["data"] == {"case": None, "node": None}
    assert {tuple(error["path"]) for error in body["errors"]} == {("case",), ("node",)}
    for error in body["errors"]:
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "GlobalID" in error["message"]


async def test_id_of_another_type_is_refused_by_case(gateway: RunningGateway) -> None:
    other = base64.b64encode(b"Agency:MOI-DDC").decode()
    body = await gateway.query("query($id: ID!) { case(id: $id) { id } }", {"id": other})
    assert body["data"] == {"case": None}
    assert "not a Case id" in body["errors"][0]["message"]
