"""``mapped``: a loader future's value converted by a callback, its failures passed on, so a
batched field (``Case.referrals``) answers a page without a coroutine per case."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.loaders import ListLoader, mapped


async def load(keys: list[int]) -> list[object]:
    return [ValueError(f"no {key}") if key < 0 else [key, key] for key in keys]


async def test_each_value_is_converted_when_its_batch_arrives() -> None:
    loader: ListLoader[int, list[int]] = ListLoader(load)
    futures = [mapped(future, sum) for future in loader.load_list([1, 2, 3])]
    assert await asyncio.gather(*futures) == [2, 4, 6]


async def test_a_failed_key_fails_only_its_own_converted_future() -> None:
    loader: ListLoader[int, list[int]] = ListLoader(load)
    good, bad = (mapped(future, sum) for future in loader.load_list([4, -1]))
    assert await good == 8
    with pytest.raises(ValueError, match="no -1"):
        await bad


async def test_an_error_of_the_conversion_is_the_converted_futures_error() -> None:
    loader: ListLoader[int, list[int]] = ListLoader(load)

    def refuse(value: list[int]) -> int:
        raise KeyError(value[0])

    with pytest.raises(KeyError):
        await mapped(loader.load(7), refuse)


async def test_a_cancelled_source_future_cancels_the_converted_one() -> None:
    source: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    converted = mapped(source, str)
    source.cancel()
    with pytest.raises(asyncio.CancelledError):
        await converted
