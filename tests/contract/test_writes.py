"""Writes are one more optional ability (``sources.WritesCases``): a kind that is only a
``Backend`` writes by implementing it, and the gateway writes through the guarded source, so a
write keeps the source's deadline, bulkhead and circuit. A kind without it says which agency
cannot receive the write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sources import (
    CanonicalStatus,
    NewCase,
    OutgoingReferral,
    Resilience,
    SourceSettings,
    SourceUnavailable,
    WritesCases,
    WritesUnsupported,
    complete,
)
from sources._guard import Guarded
from sources._writes import writer_for
from tests.contract import configs
from tests.contract.agency import AGENCY
from tests.contract.minimal import MinimalBackend

AT = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
CASE = NewCase("ถนนเป็นหลุม", "หน้าวัด", "ROADS", AT, "BMA", "B-7")


class WritingBackend(MinimalBackend):
    """The minimal backend, taking new cases and notes (not statuses nor hand-overs) into a
    list, once per key; ``down`` makes every write fail as an unreachable agency would."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, tuple[str, str]] = {}
        self.down = False

    def takes(self, step: str) -> bool:
        return step in ("create", "note")

    async def create_case(self, case: NewCase, key: str) -> str:
        return self._write(key, "create", case.title)

    async def set_status(
        self, local_id: str, status: CanonicalStatus, note: str | None, at: datetime, key: str
    ) -> None:
        raise WritesUnsupported(self.id, "statuses are not written")

    async def record_referral(self, local_id: str, referral: OutgoingReferral, key: str) -> None:
        raise WritesUnsupported(self.id, "hand-overs are not written")

    async def add_note(self, local_id: str, note: str, at: datetime, key: str) -> None:
        self._write(key, "note", f"{local_id}: {note}")

    def _write(self, key: str, step: str, what: str) -> str:
        if self.down:
            raise SourceUnavailable(self.id, "the agency's system is down")
        self.written.setdefault(key, (step, what))
        return str(9000 + list(self.written).index(key))


def settings() -> SourceSettings:
    return SourceSettings.model_validate(configs._common("minimal"))


def guarded(backend: MinimalBackend, threshold: int = 5) -> tuple[Guarded, list[str]]:
    seen: list[str] = []
    source = Guarded(
        complete(backend),
        timeout_seconds=5,
        resilience=Resilience(retries=2, circuit_failure_threshold=threshold),
        observe=lambda source, operation, seconds, size, ok: seen.append(operation),
    )
    return source, seen


def test_a_backend_declares_writing_by_implementing_the_protocol() -> None:
    assert isinstance(WritingBackend(), WritesCases)
    assert not isinstance(MinimalBackend(), WritesCases)


async def test_a_backend_only_kind_writes_through_the_guard_once_per_key() -> None:
    backend = WritingBackend()
    source, seen = guarded(backend)
    writer = writer_for(settings(), source)
    assert writer is not None
    assert [writer.takes(step) for step in ("create", "status", "record", "note")] == [
        True,
        False,
        False,
        True,
    ]
    first = await writer.create_case(CASE, "cg-1-create")
    again = await writer.create_case(CASE, "cg-1-create")
    await writer.add_note(first, "ลงพื้นที่แล้ว", AT, "cg-2-note")
    assert first == again == "9000"
    assert backend.written == {
        "cg-1-create": ("create", "ถนนเป็นหลุม"),
        "cg-2-note": ("note", "9000: ลงพื้นที่แล้ว"),
    }
    assert seen == ["create_case", "create_case", "add_note"]  # each a guarded round trip
    await writer.close()  # the gateway's source: left open for the gateway to close
    assert source.health().status == "UP"


async def test_a_failing_write_is_sent_once_and_counts_towards_the_circuit() -> None:
    """The outbox resends a failed write later, under the same key; the guard does not retry
    it meanwhile, and an agency that keeps failing opens its circuit for reads and writes."""
    backend = WritingBackend()
    backend.down = True
    source, seen = guarded(backend, threshold=2)
    writer = writer_for(settings(), source)
    assert writer is not None
    for _ in range(2):
        with pytest.raises(SourceUnavailable, match="down"):
            await writer.create_case(CASE, "cg-3-create")
    assert seen == ["create_case", "create_case"]  # one attempt each, no retries
    backend.down = False
    with pytest.raises(SourceUnavailable, match="circuit open"):
        await writer.create_case(CASE, "cg-3-create")
    with pytest.raises(SourceUnavailable, match="circuit open"):
        await source.load_cases(["1001"])
    assert backend.written == {}


async def test_a_kind_that_cannot_write_has_no_writer_and_says_which_agency() -> None:
    source, _ = guarded(MinimalBackend())
    assert writer_for(settings(), source) is None
    with pytest.raises(
        WritesUnsupported, match=rf"agency {AGENCY} cannot receive this write \(create\)"
    ):
        await source.create_case(CASE, "cg-4-create")
    assert not any(source.takes(step) for step in ("create", "status", "record", "note"))
