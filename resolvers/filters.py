"""GraphQL inputs for searching cases, translated into the sources' filter and order."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

import strawberry

from resolvers.context import GraphInfo
from resolvers.directory import Directory
from resolvers.enums import CaseOrderField, CaseStatus, OrderDirection
from resolvers.errors import UserInputError
from resolvers.geography import area
from resolvers.inputs import plain_input
from sources import CaseFilter, CaseOrder, SortField, moment_problem

MAX_TEXT_LENGTH = 200
MAX_VALUES = 200
CODE_SHAPE = re.compile(r"[\w.-]{1,40}")


@plain_input
@strawberry.input(description="All conditions must hold; a list means any of its values.")
class CaseFilterInput:
    status: list[CaseStatus] | None = None
    agency: list[str] | None = strawberry.field(default=None, description="Agency codes.")
    source: list[str] | None = strawberry.field(default=None, description="Source system ids.")
    category: list[str] | None = strawberry.field(default=None, description="Category codes.")
    province_code: list[str] | None = strawberry.field(
        default=None, description='DOPA province codes, e.g. "40" for Khon Kaen.'
    )
    district_code: list[str] | None = strawberry.field(
        default=None, description='DOPA district codes, e.g. "4001".'
    )
    received_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    received_before: datetime | None = strawberry.field(default=None, description="Exclusive.")
    text: str | None = strawberry.field(
        default=None,
        description="Substring of title or description (Thai has no spaces: no word matching).",
    )
    overdue: bool | None = strawberry.field(
        default=None,
        description=(
            "true: only cases with isOverdue at the time of the request (open and past dueAt), "
            "what caseStats counts as overdue; false: only the others."
        ),
    )

    def to_filter(self) -> CaseFilter:
        for name in ("status", "agency", "source", "category", "province_code", "district_code"):
            values = getattr(self, name)
            if values is not None and len(values) > MAX_VALUES:
                raise UserInputError(
                    f"filter.{name} has {len(values)} values; at most {MAX_VALUES}"
                )
            for value in values or ():
                _check_text(f"filter.{name}", value)
        if self.text is not None:
            _check_text("filter.text", self.text)
        bounds = (("received_from", "receivedFrom"), ("received_before", "receivedBefore"))
        for name, field in bounds:
            value = getattr(self, name)
            problem = moment_problem(f"filter.{field}", value) if value is not None else None
            if problem is not None:
                raise UserInputError(problem)
        return CaseFilter(
            statuses=_set(self.status),
            agencies=_set(self.agency),
            sources=_set(self.source),
            categories=_set(self.category),
            province_codes=_set(self.province_code),
            district_codes=_set(self.district_code),
            received_from=self.received_from,
            received_before=self.received_before,
            text=self.text or None,
            overdue=self.overdue,
        )


def check_known_codes(filter: CaseFilterInput, directory: Directory) -> None:
    """A code no configured agency, source or category has, or that is no DOPA area, is a
    mistake (a typo, an old code): said so, instead of a silent empty answer."""
    listed: dict[str, Collection[str]] = {
        "agency": directory.agencies,
        "source": {s for ids in directory.sources_by_agency.values() for s in ids},
        "category": directory.categories,
    }
    for name, known in listed.items():
        _refuse_unknown(name, getattr(filter, name), known.__contains__, sorted(known))
    _refuse_unknown("province_code", filter.province_code, lambda c: _is_area(c, 2))
    _refuse_unknown("district_code", filter.district_code, lambda c: _is_area(c, 4))


def _refuse_unknown(
    name: str, values: list[str] | None, is_known: Callable[[str], bool], known: Sequence[str] = ()
) -> None:
    unknown = sorted({_quoted(v) for v in values or () if not is_known(v)})
    if unknown:
        listing = f"; known: {', '.join(known)}" if known else ""
        raise UserInputError(f"filter.{name}: unknown {', '.join(unknown[:5])}{listing}")


def _quoted(value: str) -> str:
    """A value as the error names it: something shaped like a code verbatim, anything else
    (long text, quotes, SQL) only described, so an error never reflects a payload back."""
    if CODE_SHAPE.fullmatch(value):
        return repr(value)
    return f"<a value of {len(value)} characters that is no code>"


def _is_area(code: str, digits: int) -> bool:
    found = area(code) if len(code) == digits else None
    return found is not None and found.name_th is not None


def _check_text(name: str, value: object) -> None:
    """Hostile values end here: over-long text, and NUL, which no source can hold or match."""
    if not isinstance(value, str):
        return
    if len(value) > MAX_TEXT_LENGTH:
        raise UserInputError(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
    if "\x00" in value:
        raise UserInputError(f"{name} contains a NUL character, which no case text holds")


async def case_filter(info: GraphInfo, filter: CaseFilterInput | None) -> CaseFilter:
    """The one conversion from a GraphQL filter to what sources get, narrowed to what the
    caller may see: ``cases``, ``caseStats`` and the CSV export all go through here, so they
    always select the same cases under the same access rules."""
    where = filter.to_filter() if filter is not None else CaseFilter()
    if filter is not None:
        check_known_codes(filter, info.context.directory)
    where = replace(where, as_of=info.context.now)  # overdue means overdue at `asOf`
    return await info.context.case_access.restrict(where)


T = TypeVar("T")


def _set(values: list[T] | None) -> frozenset[T] | None:
    return None if values is None else frozenset(values)


@plain_input
@strawberry.input(description="Cases order by this field, then by source and id, same direction.")
class CaseOrderInput:
    field: CaseOrderField = SortField.RECEIVED_AT
    direction: OrderDirection = OrderDirection.DESC

    def to_order(self) -> CaseOrder:
        return CaseOrder(SortField(self.field), self.direction is OrderDirection.DESC)
