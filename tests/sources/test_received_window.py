"""``received_window``: the received-time bounds the HTTP kinds push down, the filter's own
narrowed to the keyset's side of the position when the order is by received time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sources._query import CaseFilter, CaseOrder, Position, SortField, received_window

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MID = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
WITHIN = CaseFilter(received_from=JAN, received_before=FEB)
AT_MID = Position(MID, "api", "7")


def test_without_a_position_the_filters_own_bounds() -> None:
    assert received_window(WITHIN, CaseOrder(), None) == (JAN, FEB)
    assert received_window(CaseFilter(), CaseOrder(), None) == (None, None)


def test_newest_first_the_upper_bound_is_a_second_past_the_position() -> None:
    newest_first = CaseOrder(SortField.RECEIVED_AT, descending=True)
    assert received_window(WITHIN, newest_first, AT_MID) == (JAN, MID + timedelta(seconds=1))
    assert received_window(CaseFilter(), newest_first, AT_MID) == (
        None,
        MID + timedelta(seconds=1),
    )
    early = CaseFilter(received_before=JAN)  # a tighter bound of the filter's own stays
    assert received_window(early, newest_first, AT_MID) == (None, JAN)


def test_oldest_first_the_lower_bound_is_the_position() -> None:
    oldest_first = CaseOrder(SortField.RECEIVED_AT, descending=False)
    assert received_window(WITHIN, oldest_first, AT_MID) == (MID, FEB)
    late = CaseFilter(received_from=FEB)
    assert received_window(late, oldest_first, AT_MID) == (FEB, None)


def test_a_position_in_another_order_leaves_the_bounds_alone() -> None:
    by_update = CaseOrder(SortField.UPDATED_AT, descending=False)
    assert received_window(WITHIN, by_update, AT_MID) == (JAN, FEB)
