"""Each kind writes its own way (sources/_writes.py): a case created in PostgreSQL, SQLite and
the 1111 sample API, once per idempotency key even when sent concurrently; a status written
in the agency's own vocabulary; a referral recorded once; a status the vocabulary cannot say
refused before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from samples.serving import free_port
from sources import CanonicalStatus, ReferralKind, SourceSettings, SourceUnavailable, source_class
from sources._writes import (
    CaseWriter,
    NewCase,
    NotInVocabulary,
    OutgoingReferral,
    writer_for,
)
from sources.sql._write_settings import SqlWrites
from tests.writes_world import WriteWorld, write_world  # noqa: F401

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
CASE = NewCase(
    title="ถนนทรุดหน้าโรงเรียน",
    description="ถนนทรุดเป็นหลุมลึก",
    category="ROADS",
    received_at=NOW,
    sender_agency="MOI-DDC",
    sender_reference="DDC-2569-000001",
    province_code="40",
    district_code="4001",
    address="หน้าโรงเรียนบ้านโนนทัน",
    note="ส่งต่อจากศูนย์ดำรงธรรม",
)


def settings_of(world: WriteWorld, source_id: str) -> SourceSettings:
    return next(s for s in world.config.sources if s.id == source_id)


@pytest.fixture
async def writers(write_world: WriteWorld) -> AsyncIterator[dict[str, CaseWriter]]:  # noqa: F811
    made = {}
    for source_id in ("damrongdhama", "khonkaen-office", "pmoc-1111"):
        writer = writer_for(settings_of(write_world, source_id))
        assert writer is not None, source_id
        made[source_id] = writer
    yield made
    for writer in made.values():
        await writer.close()


async def read_case(world: WriteWorld, source_id: str, local_id: str):  # type: ignore[no-untyped-def]
    settings = settings_of(world, source_id)
    source = source_class(settings.kind)(settings)
    try:
        cases = await source.load_cases([local_id])
        timelines = await source.load_timelines([local_id])
        return cases[local_id], list(timelines.get(local_id, ()))
    finally:
        await source.close()


@pytest.mark.parametrize("source_id", ["damrongdhama", "khonkaen-office", "pmoc-1111"])
async def test_create_is_read_back_and_made_once_per_key(
    write_world: WriteWorld,  # noqa: F811
    writers: dict[str, CaseWriter],
    source_id: str,
) -> None:
    writer = writers[source_id]
    concurrently = await asyncio.gather(*(writer.create_case(CASE, "key-1") for _ in range(5)))
    again = await writer.create_case(CASE, "key-1")
    assert len(set(concurrently)) == 1 and again == concurrently[0]
    other = await writer.create_case(CASE, "key-2")
    assert other != again

    record, timeline = await read_case(write_world, source_id, again)
    assert record.title == CASE.title and record.description == CASE.description
    assert record.category == "ROADS"
    assert record.status == CanonicalStatus.RECEIVED
    assert record.location.province_code == "40"
    assert [e.note for e in timeline] == [CASE.note]
    if source_id == "pmoc-1111":
        assert write_world.intake.created == [again, other]


async def test_sql_case_rows_counted_in_the_database(
    write_world: WriteWorld,  # noqa: F811
    writers: dict[str, CaseWriter],
) -> None:
    """Not only the graph's reading: the table holds one row for the key."""
    await asyncio.gather(*(writers["damrongdhama"].create_case(CASE, "k") for _ in range(8)))
    connection = await asyncpg.connect(write_world.dsn)
    try:
        rows = await connection.fetch(
            "SELECT ref_no, channel_code FROM complaints WHERE write_key = 'k'"
        )
    finally:
        await connection.close()
    assert len(rows) == 1
    assert rows[0]["ref_no"].startswith("DDC-W") and rows[0]["channel_code"] == "REF"


@pytest.mark.parametrize(
    ("source_id", "local_id", "native"),
    [
        ("damrongdhama", "5", "DONE"),
        ("khonkaen-office", None, "เสร็จสิ้น"),
        ("pmoc-1111", "PMOC-000005", "6"),
    ],
)
async def test_status_written_in_the_agency_vocabulary(
    write_world: WriteWorld,  # noqa: F811
    writers: dict[str, CaseWriter],
    source_id: str,
    local_id: str | None,
    native: str,
) -> None:
    writer = writers[source_id]
    if local_id is None:
        local_id = await writer.create_case(CASE, "to-resolve")
    await writer.set_status(local_id, CanonicalStatus.RESOLVED, "ซ่อมเสร็จแล้ว", NOW, "s-1")
    await writer.set_status(local_id, CanonicalStatus.RESOLVED, "ซ่อมเสร็จแล้ว", NOW, "s-1")
    record, timeline = await read_case(write_world, source_id, local_id)
    assert record.status == CanonicalStatus.RESOLVED and record.source_status == native
    notes = [e.note for e in timeline if e.note == "ซ่อมเสร็จแล้ว"]
    assert notes == ["ซ่อมเสร็จแล้ว"]  # the resend added nothing


@pytest.mark.parametrize(
    ("source_id", "local_id"), [("damrongdhama", "3"), ("pmoc-1111", "PMOC-000003")]
)
async def test_referral_recorded_once(
    write_world: WriteWorld,  # noqa: F811
    writers: dict[str, CaseWriter],
    source_id: str,
    local_id: str,
) -> None:
    referral = OutgoingReferral("BMA-TRAFFY", ReferralKind.ESCALATE, "TF-NEW-1", NOW)
    await writers[source_id].record_referral(local_id, referral, "r-1")
    await writers[source_id].record_referral(local_id, referral, "r-1")
    settings = settings_of(write_world, source_id)
    source = source_class(settings.kind)(settings)
    try:
        found = (await source.load_referrals([local_id]))[local_id]
    finally:
        await source.close()
    matching = [r for r in found if r.their_reference == "TF-NEW-1"]
    assert len(matching) == 1
    assert matching[0].to_agency == "BMA-TRAFFY" and matching[0].kind == ReferralKind.ESCALATE


async def test_status_outside_the_vocabulary_sends_nothing(
    write_world: WriteWorld,  # noqa: F811
) -> None:
    settings = settings_of(write_world, "khonkaen-office")
    statuses = {
        k: v for k, v in settings.vocabulary.statuses.items() if v != CanonicalStatus.ON_HOLD
    }
    narrowed = settings.model_copy(
        update={"vocabulary": settings.vocabulary.model_copy(update={"statuses": statuses})}
    )
    writer = writer_for(narrowed)
    assert writer is not None
    try:
        with pytest.raises(
            NotInVocabulary, match=r"vocabulary\.statuses has no native value for 'ON_HOLD'"
        ):
            await writer.set_status("x", CanonicalStatus.ON_HOLD, None, NOW, "k")
    finally:
        await writer.close()


def test_a_source_without_writes_has_no_writer(write_world: WriteWorld) -> None:  # noqa: F811
    read_only = settings_of(write_world, "khonkaen-office").model_copy(update={"writes": None})
    assert writer_for(read_only) is None


@pytest.mark.parametrize(
    ("source_id", "local_id"),
    [("damrongdhama", "4"), ("khonkaen-office", None), ("pmoc-1111", "PMOC-000004")],
)
async def test_a_note_keeps_the_status_and_is_added_once(
    write_world: WriteWorld,  # noqa: F811
    writers: dict[str, CaseWriter],
    source_id: str,
    local_id: str | None,
) -> None:
    writer = writers[source_id]
    if local_id is None:
        local_id = await writer.create_case(CASE, "to-note")
    before, _ = await read_case(write_world, source_id, local_id)
    assert writer.takes("note")
    await writer.add_note(local_id, "โทรแจ้งผู้ร้องแล้ว", NOW, "n-1")
    await writer.add_note(local_id, "โทรแจ้งผู้ร้องแล้ว", NOW, "n-1")
    after, timeline = await read_case(write_world, source_id, local_id)
    assert after.status == before.status and after.source_status == before.source_status
    assert [e.note for e in timeline].count("โทรแจ้งผู้ร้องแล้ว") == 1
    assert timeline[-1].status == before.status


@pytest.mark.parametrize("source_id", ["damrongdhama", "pmoc-1111"])
async def test_an_agency_that_is_down_is_unavailable_not_refusing(
    write_world: WriteWorld,  # noqa: F811
    source_id: str,
) -> None:
    """The outbox retries SOURCE_UNAVAILABLE and abandons refusals: a database or API that
    does not answer must be the first, never the second."""
    port = free_port()  # nothing listens there
    settings = settings_of(write_world, source_id)
    if source_id == "damrongdhama":
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere"
        settings = settings.model_copy(update={"url": url})
    else:
        settings = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    writer = writer_for(settings)
    assert writer is not None
    try:
        with pytest.raises(SourceUnavailable):
            await writer.create_case(CASE, "down")
    finally:
        await writer.close()


@pytest.mark.parametrize("source_id", ["damrongdhama", "khonkaen-office"])
async def test_sql_receivers_take_only_the_personal_data_they_are_allowed(
    write_world: WriteWorld,  # noqa: F811
    source_id: str,
) -> None:
    """Into the case table's columns (PostgreSQL) or the agency's own table (SQLite, Thai
    column names): the allowed fields only, the rest never written."""
    settings = settings_of(write_world, source_id)
    assert isinstance(settings.writes, SqlWrites)
    allowed = settings.writes.model_copy(update={"personal_data": ["name", "phone"]})
    writer = writer_for(settings.model_copy(update={"writes": allowed}))
    assert writer is not None
    person = {"name": "นางสาวสมศรี ใจดี", "phone": "0812345678", "citizen_id": "1101700203451"}
    try:
        local_id = await writer.create_case(replace(CASE, complainant=person), "pd")
        bare = await writer.create_case(CASE, "no-pd")
    finally:
        await writer.close()
    source = source_class(settings.kind)(settings)
    try:
        found = await source.load_complainants([local_id, bare])
    finally:
        await source.close()
    who = found[local_id]
    assert (who.name, who.phone, who.citizen_id, who.address) == (
        "นางสาวสมศรี ใจดี",
        "0812345678",
        None,
        None,
    )
    assert not who.is_anonymous and not who.is_confidential
    assert bare not in found or found[bare].name is None
