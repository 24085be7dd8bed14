"""A referral the receiver has not yet taken is on its case already: status PENDING, with the
outbox's reason, until the receiver returns and it becomes the referral both systems hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.demo import demo_agency_key as agency_key
from gateway.demo import seed_demo_keys
from samples.serving import ThreadedServer
from tests.conftest import RunningGateway, serving
from tests.gateway.test_writes import REFER, call, case_id, refer_input, referral_rows
from tests.postgres import run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

DDC, OPM = "MOI-DDC", "OPM-1111"

REFERRALS = """
query Referrals($id: ID!) {
  case(id: $id) {
    referrals {
      status kind receivingReference toAgency { code } counterpart { id }
      write { state step attempts lastError }
    }
  }
}"""


@pytest.fixture
async def gateway(write_world: WriteWorld) -> AsyncIterator[RunningGateway]:  # noqa: F811
    await asyncio.to_thread(run, seed_demo_keys(write_world.config))
    async with serving(write_world.config) as started:
        yield started


async def to_1111(gateway: RunningGateway, local_id: str) -> list[dict[str, Any]]:
    """The case's referrals to the 1111 service that this test made (none are in the data
    with a PMOC-W reference, nor pending)."""
    body = await call(
        gateway, REFERRALS, {"id": case_id("damrongdhama", local_id)}, agency_key(DDC)
    )
    assert "errors" not in body, body
    return [
        r
        for r in body["data"]["case"]["referrals"]
        if r["toAgency"] and r["toAgency"]["code"] == OPM
        and (r["status"] == "PENDING" or (r["receivingReference"] or "").startswith("PMOC-W"))
    ]  # fmt: skip


async def test_a_referral_to_a_receiver_that_is_down_is_pending_on_the_case_until_it_returns(
    gateway: RunningGateway,
    write_world: WriteWorld,  # noqa: F811
) -> None:
    assert await to_1111(gateway, "7") == []
    write_world.pmoc.stop()
    body = await call(gateway, REFER, refer_input("7", OPM, "p-7", "ESCALATE"), agency_key(DDC))
    assert body["data"]["referCase"]["write"]["state"] == "PENDING", body

    (pending,) = await to_1111(gateway, "7")
    assert pending["status"] == "PENDING" and pending["kind"] == "ESCALATE"
    assert pending["receivingReference"] is None and pending["counterpart"] is None
    write = pending["write"]
    assert (write["state"], write["step"]) == ("PENDING", "create")
    assert "pmoc-1111" in write["lastError"]  # the outbox's reason, on the referral
    assert await referral_rows(write_world, 7) == []  # nothing in the sender's system yet

    back = ThreadedServer(write_world.pmoc.app, port=write_world.pmoc.port)
    back.start()
    try:
        shown = [pending]
        for _ in range(200):  # the outbox retries every 0.2-0.5 s: observed, not slept on
            shown = await to_1111(gateway, "7")
            if shown and shown[0]["status"] != "PENDING":
                break
            await asyncio.sleep(0.05)
        (recorded,) = shown  # the pending one became the recorded one: not both
        assert recorded["write"] is None and recorded["kind"] == "ESCALATE"
        assert recorded["receivingReference"] == write_world.intake.created[0]
        assert recorded["counterpart"]["id"] == case_id("pmoc-1111", write_world.intake.created[0])
        assert [r["their_ref"] for r in await referral_rows(write_world, 7)] == [
            write_world.intake.created[0]
        ]
    finally:
        back.stop()
