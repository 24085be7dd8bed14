"""``extensions.referrals_listed_by_scan``: GeoReport v2 has no query for what a city referred,
so its request pages are read for the referrals embedded in them (the city platform sample)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest

from samples import traffy
from samples.generator import generate_cases
from sources import SourceBadResponse
from sources.open311 import Open311Settings, Open311Source
from tests.conftest import OPEN311_CASES, OPEN311_SEED, DemoData
from tests.resolvers.expected import OPEN311_SOURCE
from tests.sources.test_rest_referral_listing import observed

AGENCY = {"DDC": "MOI-DDC", "1111": "OPM-1111"}
"""The city's own codes for the agencies it hands cases to, as the demo vocabulary maps them."""


def handed_on() -> set[tuple[str, str]]:
    """(receiving agency, their case) of every referral in the city sample's own data."""
    return {
        (AGENCY[entry["to"]], entry["ref"])
        for case in generate_cases(
            seed=OPEN311_SEED, count=OPEN311_CASES, province_codes=traffy.PROVINCES
        )
        for entry in traffy.georeport(case)["extended_attributes"]["referrals"]
    }


def city(
    demo_data: DemoData, *, scan: bool, page_size: int = 50, max_pages: int = 100
) -> AbstractAsyncContextManager[tuple[Open311Source, list[str]]]:
    (settings,) = [s for s in demo_data.config.sources if s.id == OPEN311_SOURCE]
    assert isinstance(settings, Open311Settings)
    extensions = settings.extensions.model_copy(update={"referrals_listed_by_scan": scan})
    changed = settings.model_copy(
        update={"extensions": extensions, "page_size": page_size, "max_pages": max_pages}
    )
    return observed(Open311Source(changed))


async def test_every_referral_is_found_across_every_page(demo_data: DemoData) -> None:
    expected = handed_on()
    assert expected, "the sample's chain cases report back to the Damrongdhama Center"
    async with city(demo_data, scan=True) as (source, requests):
        assert source.capabilities.lists_referrals
        found = await source.referred_references()
    assert sorted(found) == sorted(expected)
    assert len(requests) == OPEN311_CASES // 50 + 1  # every page, the last one short


async def test_more_pages_than_max_pages_is_an_error_not_a_partial_list(
    demo_data: DemoData,
) -> None:
    async with city(demo_data, scan=True, max_pages=3) as (source, requests):
        with pytest.raises(SourceBadResponse, match="max_pages"):
            await source.referred_references()
    assert len(requests) == 3


async def test_without_the_setting_nothing_is_read_and_the_capability_says_so(
    demo_data: DemoData,
) -> None:
    async with city(demo_data, scan=False) as (source, requests):
        assert not source.capabilities.lists_referrals
        assert await source.referred_references() == ()
    assert requests == []
