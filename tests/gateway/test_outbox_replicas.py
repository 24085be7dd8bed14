"""Two gateways sharing one outbox in PostgreSQL: each entry is worked by one of them.

Two :class:`~gateway.outbox.Outbox` instances (each with its own engine, connections and
in-process locks, as two replicas have) over one PostgreSQL store. Replica A sends a
referral's create, which the 1111 service holds; replica B, asked to advance the same entry
meanwhile, leaves it alone: the service receives one create request, not two. Released, A
completes the referral."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.demo import asyncpg_url
from gateway.outbox import Outbox, WriteSettings
from resolvers.access import Principal, Role
from tests.postgres import create_database, drop_database, run
from tests.writes_world import WriteWorld, write_world  # noqa: F401

CALLER = Principal("key:replica-test", frozenset({Role.AGENCY}), "MOI-DDC", method="api_key")


@pytest.fixture
def store(postgres_admin_dsn: str) -> Iterator[str]:
    dsn = run(create_database(postgres_admin_dsn, prefix="cg_outbox"))
    yield asyncpg_url(dsn)
    run(drop_database(postgres_admin_dsn, dsn))


@pytest.fixture
async def replicas(
    write_world: WriteWorld,  # noqa: F811
    store: str,
) -> AsyncIterator[tuple[Outbox, Outbox]]:
    settings = WriteSettings(store=store, retry_base_seconds=0.2, poll_seconds=0.1)
    made = (
        Outbox(settings, store, write_world.config.sources),
        Outbox(settings, store, write_world.config.sources),
    )
    yield made
    for outbox in made:
        await outbox.stop()


def refer(local_id: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "case": {
            "title": "ไฟถนนดับทั้งซอย",
            "description": "ไฟถนนดับมาหนึ่งสัปดาห์",
            "category": "ELECTRICITY",
            "received_at": now,
            "sender_agency": "MOI-DDC",
            "sender_reference": f"DDC-{local_id}",
            "note": "ส่งต่อ",
        },
        "to_agency": "OPM-1111",
        "kind": "FORWARD",
        "at": now,
        "note": "ส่งต่อ",
    }


async def test_one_replica_works_an_entry_the_other_leaves_it(
    replicas: tuple[Outbox, Outbox],
    write_world: WriteWorld,  # noqa: F811
) -> None:
    first, second = replicas
    intake = write_world.intake
    intake.hold = threading.Event()
    intake.hold.set()
    submitted = asyncio.create_task(
        first.submit(
            "refer", CALLER, "replicas-1", {"case": "14"}, refer("14"), "create",
            "damrongdhama", "14", "pmoc-1111",
        )
    )  # fmt: skip
    try:
        assert await asyncio.to_thread(intake.arrived.wait, 30)
        key = Outbox.row_key(CALLER.subject, "replicas-1")
        meanwhile = await second.advance(key)
        assert meanwhile.state == "PENDING" and meanwhile.step == "create"
        assert intake.create_requests == 1  # the second replica sent nothing
    finally:
        intake.hold.clear()
        intake.release.set()
    done = await submitted
    assert done.state == "DONE" and done.their_reference == intake.created[0]
    assert intake.create_requests == 1 and len(intake.created) == 1
    again = await second.advance(key)
    assert again.state == "DONE" and intake.create_requests == 1
