"""``_sources.cache.LRU``: the one bounded cache, by count and by weight, thread-safe."""

from __future__ import annotations

import threading

import pytest

from langchain_afarensis_vision._sources.cache import LRU


def test_least_recently_used_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_weight_bound_and_replacing_a_key() -> None:
    cache: LRU[str, bytes] = LRU(10, max_weight=10, weight=len)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    cache.put("a", b"1")  # replaced: its old weight is given back
    cache.put("c", b"1234")
    assert [cache.get(k) for k in "abc"] == [b"1", b"12345", b"1234"]
    cache.put("d", b"123456789")  # 20 in all: the least recent go until it fits
    assert [cache.get(k) for k in "abcd"] == [None, None, None, b"123456789"]
    cache.put("e", b"x" * 11)  # heavier than the bound alone: not kept
    assert len(cache) == 0


def test_get_or_make_keeps_nothing_when_make_raises() -> None:
    cache: LRU[int, str] = LRU(4)
    made: list[int] = []

    def make() -> str:
        made.append(1)
        return "value"

    assert cache.get_or_make(1, make) == cache.get_or_make(1, make) == "value"
    assert made == [1]
    with pytest.raises(ZeroDivisionError):
        cache.get_or_make(2, lambda: str(1 / 0))
    assert cache.get(2) is None
    cache.clear()
    assert len(cache) == 0


def test_threads_never_exceed_the_bound() -> None:
    cache: LRU[int, int] = LRU(8)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.put(offset + i % 50, i)
            cache.get(offset + (i * 7) % 50)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 8
