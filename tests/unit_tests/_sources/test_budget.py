"""``_sources.budget.MemoryBudget``: decoded bytes in flight, shared by threads and event loops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from langchain_afarensis_vision._sources.budget import MemoryBudget


def test_threads_never_hold_more_than_the_limit() -> None:
    budget = MemoryBudget(100)
    peak = 0
    lock = threading.Lock()

    def work(amount: int) -> None:
        nonlocal peak
        with budget.reserve(amount):
            with lock:
                peak = max(peak, budget.in_use)
            time.sleep(0.002)

    threads = [threading.Thread(target=work, args=(30 + n % 3 * 10,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 50 <= peak <= 100
    assert budget.in_use == 0


def test_a_reservation_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(100)
    with budget.reserve(500):
        assert budget.in_use == 500
        assert not budget._take(1)  # nothing else fits beside it
    with budget.reserve(60):
        assert not budget._take(500)  # and it waits until nothing else is in flight
    assert budget.in_use == 0


async def test_async_callers_wait_without_blocking_the_loop_and_can_be_cancelled() -> None:
    budget = MemoryBudget(100)
    order: list[str] = []
    with budget.reserve(80):  # held by "another thread"

        async def wants(name: str, amount: int) -> None:
            async with budget.areserve(amount):
                order.append(name)

        waiting = asyncio.create_task(wants("waiting", 50))
        cancelled = asyncio.create_task(wants("cancelled", 50))
        await asyncio.sleep(0.01)
        assert order == []  # the loop still runs: we are here
        cancelled.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(waiting, 1)
    assert order == ["waiting"]
    assert cancelled.cancelled()
    assert budget.in_use == 0


async def test_a_release_in_another_thread_wakes_an_async_waiter() -> None:
    budget = MemoryBudget(10)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with budget.reserve(10):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    seen: list[int] = []

    async def wants() -> None:
        async with budget.areserve(10):
            seen.append(budget.in_use)

    waiter = asyncio.create_task(wants())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    release.set()
    await asyncio.wait_for(waiter, 2)
    assert seen == [10]
    thread.join()
    assert budget.in_use == 0


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryBudget(0)


def _until(condition: Callable[[], bool]) -> None:
    """Wait (a generous deadline: it proves "does not hang", it times nothing) for ``condition``."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_large_reservation_is_not_overtaken_by_later_small_ones() -> None:
    # Waiting is bounded: first come, first served. A small reservation that would fit beside
    # what is held still waits behind a large one that came first, which would otherwise wait
    # for as long as small ones keep coming.
    budget = MemoryBudget(100)
    order: list[str] = []

    def wants(name: str, amount: int) -> None:
        with budget.reserve(amount):
            order.append(name)

    with budget.reserve(60):
        large = threading.Thread(target=wants, args=("large", 80))
        large.start()
        _until(lambda: budget.waiting == 1)
        small = threading.Thread(target=wants, args=("small", 10))
        small.start()
        _until(lambda: budget.waiting == 2)
        assert order == []  # 60 + 10 fits, but "small" came after "large"
    large.join(10)
    small.join(10)
    assert order == ["large", "small"]
    assert budget.in_use == budget.waiting == 0


async def test_a_cancelled_async_waiter_leaves_the_line() -> None:
    budget = MemoryBudget(100)
    with budget.reserve(60):
        first = asyncio.create_task(_hold(budget, 80))
        await asyncio.sleep(0.01)
        assert budget.waiting == 1
        first.cancel()
        await asyncio.sleep(0)
        assert budget.waiting == 0
        async with budget.areserve(10):  # no longer behind the one that gave up
            assert budget.in_use == 70


async def _hold(budget: MemoryBudget, amount: int) -> None:
    async with budget.areserve(amount):
        pass
