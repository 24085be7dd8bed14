"""Which subscribers share a resolution: everything the answer depends on is in the key, and a
resume (its replay is the subscriber's own) or a caller without a role runs alone."""

from __future__ import annotations

from typing import Any

from resolvers import Directory, Limits
from resolvers.access import Principal, Role
from resolvers.context import Context
from resolvers.subscription_groups import GroupKey, group_key
from sources import Federation

FOLLOW = "subscription F($after: String, $s: [CaseStatus!]) { caseEvents(after: $after, filter: {status: $s}) { id } }"  # noqa: E501
INSPECTOR = Principal("key:a", frozenset({Role.INSPECTOR}), method="api_key")


def context_of(principal: Principal) -> Context:
    federation = Federation(())
    return Context.for_request(federation, Directory(federation, []), Limits(), None, principal)


def key(
    principal: Principal = INSPECTOR,
    query: str = FOLLOW,
    variables: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
) -> GroupKey | None:
    return group_key(context_of(principal), query, variables, None, extensions)


def test_subscribers_alike_share_whoever_they_are() -> None:
    other_inspector = Principal("key:b", frozenset({Role.INSPECTOR}), method="api_key")
    assert key() is not None
    assert key() == key(other_inspector), "the subject is not part of the answer"
    in_order = key(variables={"s": ["NEW"], "after": None})
    assert in_order == key(variables={"after": None, "s": ["NEW"]}), "variables in any order"


def test_whatever_changes_the_answer_separates_groups() -> None:
    pii = Principal("key:a", frozenset({Role.INSPECTOR}), scopes=frozenset({"pii:read"}))
    agency = Principal("key:c", frozenset({Role.AGENCY}), agency="KKN-PO", method="api_key")
    other_agency = Principal("key:c", frozenset({Role.AGENCY}), agency="MOI-DDC", method="api_key")
    anonymous_inspector = Principal("anonymous", frozenset({Role.INSPECTOR}))
    keys = [
        key(),
        key(pii),
        key(agency),
        key(other_agency),
        key(anonymous_inspector),
        key(variables={"s": ["NEW"]}),
        key(extensions={"federation": True}),
        key(query=FOLLOW.replace("{ id }", "{ id type }")),
    ]
    assert None not in keys
    assert len(set(keys)) == len(keys)


def test_a_resume_or_a_caller_without_a_role_runs_alone() -> None:
    assert key(variables={"after": "e30"}) is None
    assert key(query=FOLLOW.replace("after: $after", 'after: "e30"')) is None
    assert key(query=FOLLOW.replace("after: $after", "after: null")) is not None
    assert key(Principal("key:d", method="api_key")) is None
    refused = context_of(INSPECTOR)
    refused.auth_error = "the key was revoked"
    assert group_key(refused, FOLLOW, None, None, None) is None
