"""The core's half of a search (sources/_pushdown.py) around backends that push down little.

The contract suite (tests/contract) runs a backend that pushes down nothing through every
question; these tests pin what it cannot see: what ``complete`` wraps, how much is read, and
that a scan past the limit is an error rather than a silent cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint

import pytest

from sources import (
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    CaseRecord,
    Position,
    Pushdown,
    SourceBadResponse,
    SourceSettings,
    complete,
)
from sources import _registry as registry
from tests.contract.agency import CASES
from tests.contract.minimal import MinimalBackend


class Counting(MinimalBackend):
    """Counts the searches the core asks of it, and the cases they return."""

    def __init__(self, *, orders: bool) -> None:
        super().__init__(orders=orders)
        self.searches: list[int] = []

    async def search_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[CaseRecord]:
        found = await super().search_cases(where, order, after, limit, fields)
        self.searches.append(len(found))
        return found


def test_a_source_is_itself_and_a_bare_backend_is_wrapped() -> None:
    backend = MinimalBackend()
    wrapped = complete(backend)
    assert isinstance(wrapped, Pushdown) and wrapped.backend is backend
    assert complete(wrapped) is wrapped


async def test_a_backend_that_orders_is_read_page_by_page_until_enough_pass() -> None:
    backend = Counting(orders=True)
    open_cases = CaseFilter(statuses=frozenset({CanonicalStatus.RECEIVED}))
    found = await complete(backend).search_cases(open_cases, CaseOrder(), None, 2)
    assert len(found) == 2
    assert backend.searches == [len(CASES)]  # one page of max(limit, 50) held them all


async def test_a_backend_that_pushes_everything_asked_is_trusted() -> None:
    backend = Counting(orders=True)
    found = await complete(backend).search_cases(CaseFilter(), CaseOrder(), None, 3)
    assert backend.searches == [3]  # asked for the page itself, nothing re-read
    assert [r.local_id for r in found] == ["1008", "1032", "1031"]


async def test_reading_past_the_scan_limit_is_an_error_not_a_short_answer() -> None:
    backend = Counting(orders=False)
    backend.stats_scan_limit = len(CASES) - 1
    text = CaseFilter(text="ถนน")
    with pytest.raises(SourceBadResponse, match=f"more than {len(CASES) - 1} cases"):
        await complete(backend).search_cases(text, CaseOrder(), None, 5)
    with pytest.raises(SourceBadResponse, match="stats_scan_limit"):
        await complete(backend).count_cases(text)


async def test_optional_abilities_fall_back_to_none_when_missing() -> None:
    source = complete(MinimalBackend())
    ids: Sequence[str] = [CASES[0].local_id]
    assert await source.load_complainants(ids) == {}
    assert await source.cases_by_complainant(["key"]) == {}
    referred = [c.local_id for c in CASES if c.referrals]
    assert set(await source.load_referrals(referred)) == set(referred)  # it has this one


class MinimalKind(MinimalBackend):
    """The minimal backend as a kind of its own: configured, found by the registry."""

    settings_model = SourceSettings

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__()
        self.id = settings.id


def test_the_registry_completes_a_kind_that_is_only_a_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point = EntryPoint("minimal", f"{__name__}:MinimalKind", registry.GROUP)
    monkeypatch.setattr(registry, "kinds", lambda: {"minimal": point})
    made = registry.source_class("minimal")
    assert made.settings_model is SourceSettings
    settings = SourceSettings.model_validate(
        {
            "id": "tiny",
            "kind": "minimal",
            "agency": {"code": "T", "name_th": "ทดลอง", "name_en": "Tiny"},
            "vocabulary": {"statuses": {}},
        }
    )
    source = made(settings)
    assert isinstance(source, Pushdown) and isinstance(source.backend, MinimalKind)
    assert source.id == "tiny"
