"""``ListLoader.load_list`` answers as aiodataloader's ``load`` does, key for key: the same
futures from the same cache, one batch with everything queued in the same turn of the loop."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.loaders import ListLoader


class Recorded:
    """A batch function (``load``) that answers ``key * 10``, or fails for ``fail``, and
    keeps each batch."""

    def __init__(self, fail: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def load(self, keys: list[int]) -> list[object]:
        self.batches.append(list(keys))
        return [ValueError(key) if key == self.fail else key * 10 for key in keys]


async def test_a_list_of_keys_is_one_batch_with_the_keys_loaded_one_by_one() -> None:
    batch = Recorded()
    loader: ListLoader[int, int] = ListLoader(batch.load)
    single = loader.load(1)
    futures = loader.load_list([2, 1, 3, 2])
    later = loader.load(4)
    assert futures[1] is single and futures[3] is futures[0]  # cached, as load gives them
    assert await asyncio.gather(*futures, later) == [20, 10, 30, 20, 40]
    assert batch.batches == [[1, 2, 3, 4]]


async def test_keys_loaded_before_come_from_the_cache_without_a_batch() -> None:
    batch = Recorded()
    loader: ListLoader[int, int] = ListLoader(batch.load)
    first = loader.load_list([5, 6])
    assert await asyncio.gather(*first) == [50, 60]
    again = loader.load_list([6, 5, 7])
    assert again[:2] == [first[1], first[0]]
    assert await asyncio.gather(*again) == [60, 50, 70]
    assert batch.batches == [[5, 6], [7]]


async def test_an_error_for_one_key_fails_that_keys_future_only() -> None:
    loader: ListLoader[int, int] = ListLoader(Recorded(fail=2).load)
    one, two, three = loader.load_list([1, 2, 3])
    assert await one == 10 and await three == 30
    with pytest.raises(ValueError, match=r"^2$"):
        await two


async def test_without_batching_or_with_a_none_key_it_is_load_itself() -> None:
    batch = Recorded()
    unbatched: ListLoader[int, int] = ListLoader(batch.load, batch=False)
    assert await asyncio.gather(*unbatched.load_list([1, 2])) == [10, 20]
    assert batch.batches == [[1], [2]]  # the N+1 baseline: a batch per key
    with pytest.raises(TypeError, match="must be called with a value"):
        ListLoader(Recorded().load).load_list([1, None])  # type: ignore[list-item]


async def test_a_custom_cache_key_is_honoured() -> None:
    batch = Recorded()
    loader: ListLoader[int, int] = ListLoader(batch.load, get_cache_key=lambda key: key % 10)
    a, b = loader.load_list([3, 13])
    assert a is b  # the same cache key
    assert await a == 30 and batch.batches == [[3]]
