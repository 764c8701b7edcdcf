"""``_sources.budget.MemoryBudget``: decoded bytes in flight, shared by threads and event loops."""

from __future__ import annotations

import asyncio
import threading
import time

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
