"""``referrals.find.list_all``: a REST API lists everything it referred, page by page, so an
agency whose own system is an API can be shown the cases it handed on (the 1111 sample)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import pytest

from samples import pmoc_1111
from samples.generator import generate_cases
from sources import SourceBadResponse
from sources.rest import RestSettings, RestSource
from sources.rest._settings import Pagination, ReferralListing
from tests.conftest import REST_CASES, REST_SEED, DemoData


def handed_on() -> set[tuple[str, str]]:
    """(receiving agency code, their case) of every operating in the 1111 sample's own data."""
    return {
        (pmoc_1111.AGENCY_CODES[entry["org_code"]], entry["their_case"])
        for case in generate_cases(seed=REST_SEED, count=REST_CASES)
        for entry in pmoc_1111.native_case(case)["operatings"]
    }


def settings_with(demo_data: DemoData, listing: ReferralListing | None) -> RestSettings:
    (settings,) = [s for s in demo_data.config.sources if s.id == "pmoc-1111"]
    assert isinstance(settings, RestSettings)
    assert settings.referrals is not None and settings.referrals.find is not None
    find = settings.referrals.find.model_copy(update={"list_all": listing})
    referrals = settings.referrals.model_copy(update={"find": find})
    return settings.model_copy(update={"referrals": referrals})


S = TypeVar("S", bound=RestSource)


@asynccontextmanager
async def observed(source: S) -> AsyncIterator[tuple[S, list[str]]]:
    """``source`` with the URL of every HTTP request it sends, closed afterwards."""
    requests: list[str] = []
    source.observe_http(requests.append)
    try:
        yield source, requests
    finally:
        await source.close()


def pmoc(
    demo_data: DemoData, listing: ReferralListing | None
) -> AbstractAsyncContextManager[tuple[RestSource, list[str]]]:
    return observed(RestSource(settings_with(demo_data, listing)))


def offset_pages(size: int, max_pages: int) -> ReferralListing:
    return ReferralListing(
        pagination=Pagination(
            style="offset", offset_param="offset", limit_param="limit", page_size=size
        ),
        max_pages=max_pages,
    )


async def test_every_referral_is_listed_across_pages(demo_data: DemoData) -> None:
    expected = handed_on()
    assert len(expected) > 3 * 7  # several pages of seven
    async with pmoc(demo_data, offset_pages(7, 100)) as (source, requests):
        assert source.capabilities.lists_referrals
        found = await source.referred_references()
    assert sorted(found) == sorted(expected)
    assert len(found) == len(set(found))
    assert len(requests) == len(expected) // 7 + 1  # the last page is the short one


async def test_more_pages_than_max_pages_is_an_error_not_a_cut(demo_data: DemoData) -> None:
    async with pmoc(demo_data, offset_pages(7, 2)) as (source, requests):
        with pytest.raises(SourceBadResponse, match=r"referrals\.find\.list_all\.max_pages"):
            await source.referred_references()
    assert len(requests) == 2


async def test_without_list_all_the_api_is_not_asked_and_says_so(demo_data: DemoData) -> None:
    async with pmoc(demo_data, None) as (source, requests):
        assert source.capabilities.finds_referrals_to  # the search by target stays
        assert not source.capabilities.lists_referrals
        assert await source.referred_references() == ()
    assert requests == []
