"""The guard (deadline, bulkhead, retries, circuit, health) stands in front of every member of
the ``Source`` protocol: a member added to ``sources._interface.Source`` without the guard
covering it fails here, rather than reaching an agency unguarded through an inherited default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sources import (
    AgencyInfo,
    CanonicalStatus,
    Capabilities,
    CaseFilter,
    CaseOrder,
    NewCase,
    OutgoingReferral,
    ReferralKind,
    Resilience,
    Source,
    SourceUnavailable,
    _abilities,
)
from sources._guard import Guarded

AT = datetime(2026, 1, 1, tzinfo=UTC)

ARGUMENTS: dict[str, Any] = {
    "local_ids": ["1"],
    "references": ["R-1"],
    "where": CaseFilter(),
    "order": CaseOrder(),
    "after": None,
    "limit": 1,
    "fields": None,
    "carry": frozenset({"timeline"}),
    "dimensions": (),
    "now": datetime(2026, 1, 1, tzinfo=UTC),
    "citizen_keys": ["k"],
    "agency": "OTHER",
    "wake": lambda: None,
    "observer": lambda source: None,
    "case": NewCase("t", "d", "ROADS", AT, "OTHER", "R-1"),
    "key": "k-1",
    "local_id": "1",
    "status": CanonicalStatus.RESOLVED,
    "note": "n",
    "at": AT,
    "referral": OutgoingReferral("OTHER", ReferralKind.FORWARD, "R-9", AT),
}
"""A value for each parameter name of the protocol's methods."""

OBSERVED_AS = {"load_cases_carrying": "load_cases"}
"""Methods whose round trips /metrics counts under another operation: a batch of cases that
carries its relations is still a load of cases."""

NOT_ROUND_TRIPS = {
    "close": "closing goes through even with the circuit open, so no connection is left",
    "check": "`complaint-graph check` reports a failing backend as a problem, never retried",
    "listen_for_changes": "a long-lived subscription; its wake-ups start guarded polls",
    "observe_http": "wires a counter, sends nothing",
    "refresh_connections": "called by the guard itself before an open circuit's trial",
    "health": "the guard's own state",
    "capabilities": "configuration, read without a round trip",
    "takes": "configuration, read without a round trip",
}
DATA = {"id", "kind", "agency", "stats_scan_limit"}


def protocol_members() -> set[str]:
    return {name for name in dir(Source) if not name.startswith("_")} - DATA


def round_trips() -> list[str]:
    return sorted(
        name
        for name in protocol_members() - NOT_ROUND_TRIPS.keys()
        if inspect.iscoroutinefunction(getattr(Source, name))
    )


def failing_source() -> tuple[Source, list[str]]:
    """A source whose every round trip fails for availability, recording what was asked."""
    asked: list[str] = []

    def failing(name: str) -> Callable[..., Any]:
        async def method(self: Source, *args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            raise SourceUnavailable("flaky", f"{name} is down")

        return method

    async def nothing(self: Source) -> Any:
        return []

    members: dict[str, Any] = {
        name: failing(name)
        for name in protocol_members()
        if inspect.iscoroutinefunction(getattr(Source, name))
    }
    members |= {
        "close": nothing,
        "check": nothing,
        "capabilities": property(lambda self: Capabilities(frozenset())),
        "id": "flaky",
        "kind": "test",
        "agency": AgencyInfo("FLK", "ทดสอบ", "Flaky"),
    }
    return type("Flaky", (Source,), members)(), asked


def test_every_member_of_the_protocol_is_the_guards_own() -> None:
    """No member falls through to a default of ``Source``, which would answer for the inner
    source (a default ``load_referrals`` says "none") or reach it unguarded."""
    inherited = sorted(name for name in protocol_members() if name not in vars(Guarded))
    assert inherited == [], f"Guarded does not cover {inherited}: add them to sources/_guard.py"


def test_every_optional_ability_is_a_member_of_the_protocol() -> None:
    """An ability protocol (sources/_abilities.py) whose methods ``Source`` lacks would reach a
    kind only around the guard; as members of ``Source`` the tests above cover them."""
    asked_otherwise = {
        "ListsCases": "a way to search, asked through search_cases",
        "AsksTogether": "asked of a group only while each member's guard would let it be "
        "asked (Guarded.together_key); when it fails, each member is asked through its guard",
        "TogetherKey": "a value, not an ability",
    }
    abilities = [
        getattr(_abilities, name)
        for name in _abilities.__all__
        if isinstance(getattr(_abilities, name), type) and name not in asked_otherwise
    ]
    assert _abilities.WritesCases in abilities
    missing = sorted(
        f"{ability.__name__}.{name}"
        for ability in abilities
        for name in vars(ability)
        if not name.startswith("_") and callable(vars(ability)[name])
        if name not in protocol_members()
    )
    assert missing == [], f"Source has no default for {missing}"


def test_the_exemptions_name_members_that_exist() -> None:
    assert NOT_ROUND_TRIPS.keys() <= protocol_members()


@pytest.mark.parametrize("name", round_trips())
async def test_every_round_trip_goes_through_deadline_retries_and_circuit(name: str) -> None:
    inner, asked = failing_source()
    seen: list[tuple[str, bool]] = []
    guarded = Guarded(
        inner,
        timeout_seconds=5,
        resilience=Resilience(retries=0, circuit_failure_threshold=1),
        observe=lambda source, operation, seconds, size, ok: seen.append((operation, ok)),
    )
    method = getattr(guarded, name)
    parameters = list(inspect.signature(method).parameters)
    unknown = [p for p in parameters if p not in ARGUMENTS]
    assert not unknown, f"give ARGUMENTS a value for {unknown} of Source.{name}"
    arguments = [ARGUMENTS[p] for p in parameters]

    with pytest.raises(SourceUnavailable):
        await method(*arguments)
    # observed as one failed round trip, under the operation it is a form of
    assert seen == [(OBSERVED_AS.get(name, name), False)]
    assert guarded.health().status == "DOWN"
    with pytest.raises(SourceUnavailable, match="circuit open"):
        await method(*arguments)
    assert asked == [name]  # the open circuit kept the second call from the agency
