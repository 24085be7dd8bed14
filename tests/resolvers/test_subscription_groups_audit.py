"""A member whose audit entries are refused is sent the group's result as its own resolution
would have answered: each field whose entry failed null, with that field's error, where a
resolution alone would have put them; the result the other members get stays as it was."""

from __future__ import annotations

from graphql.pyutils import Path
from strawberry.types import ExecutionResult

from resolvers.access import AuditUnavailable
from resolvers.audited_field import AuditedField
from resolvers.subscription_groups import GroupKey, _Entry, _without

QUERY = """subscription {
  caseEvents {
    case {
      who: complainant { name cases { id } }
    }
  }
}"""
KEY = GroupKey(QUERY, None, b"{}", b"{}", frozenset(), None, frozenset(), True, None)
WHO = Path(None, "caseEvents", None).add_key("case").add_key("who")
CASES = WHO.add_key("cases")
REFUSED = AuditUnavailable("the personal-data audit log cannot record this access")


def result() -> ExecutionResult:
    who = {"name": "สมชาย ใจดี", "cases": [{"id": "Q2FzZTox"}]}
    return ExecutionResult(data={"caseEvents": {"case": {"who": who}}}, errors=None)


def entry(at: AuditedField) -> _Entry:
    return _Entry("reveal", "damrongdhama", "12", ("name",), at=at)


def test_a_refused_reveal_nulls_its_field_with_its_error_and_leaves_the_shared_result() -> None:
    shared = result()
    own = _without(shared, [(entry(AuditedField(WHO, WHO)), REFUSED)], KEY)
    assert own.data == {"caseEvents": {"case": {"who": None}}}
    (error,) = own.errors or ()
    assert error.path == ["caseEvents", "case", "who"]
    assert error.extensions == {"code": "AUDIT_UNAVAILABLE"}
    assert error.locations is not None and error.locations[0].line == 4  # the aliased field
    assert shared.data is not None and shared.data["caseEvents"]["case"]["who"] is not None


def test_a_non_null_field_refused_nulls_its_parent_and_one_under_a_failed_field_is_silent() -> None:
    """``Complainant.cases`` is a non-null list: alone, its error nulls the complainant. When
    the complainant's own reveal failed too, ``cases`` was never resolved alone: no error."""
    cases = entry(AuditedField(CASES, WHO))
    own = _without(result(), [(cases, REFUSED)], KEY)
    assert own.data == {"caseEvents": {"case": {"who": None}}}
    assert [e.path for e in own.errors or ()] == [["caseEvents", "case", "who", "cases"]]

    both = _without(result(), [(cases, REFUSED), (entry(AuditedField(WHO, WHO)), REFUSED)], KEY)
    assert both.data == {"caseEvents": {"case": {"who": None}}}
    assert [e.path for e in both.errors or ()] == [["caseEvents", "case", "who"]]
