"""A memory budget: how many decoded bytes may be in flight at once, across threads and loops.

Counting images in flight is not enough: one 34-byte WEBP can declare 10000 x 10000 pixels. So
the loader, the tool and the local server reserve each image's *estimated decoded size*
(:func:`~._sources.decoded_bytes`) before they decode it, and wait while the budget is spent.
A reservation larger than the whole budget is granted alone (it waits until nothing else is
in flight) rather than never: the per-image pixel budget already bounds what one image costs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager


class MemoryBudget:
    """At most ``limit`` bytes reserved at once; sync and async callers share it.

    Example:
        ```python
        budget = MemoryBudget(512 * 1024 * 1024)
        with budget.reserve(estimated_bytes):
            prepare_image(data)
        ```
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            msg = f"a memory budget must be positive; got {limit}"
            raise ValueError(msg)
        self.limit = limit
        self.in_use = 0
        self._lock = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def _take(self, amount: int) -> bool:
        """Reserve ``amount`` if it fits now (call with the lock held)."""
        if self.in_use and self.in_use + amount > self.limit:
            return False
        self.in_use += amount
        return True

    def _give_back(self, amount: int) -> None:
        with self._lock:
            self.in_use -= amount
            self._lock.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes of the budget, waiting (blocking) until they are free."""
        with self._lock:
            self._lock.wait_for(lambda: self._take(amount))
        try:
            yield
        finally:
            self._give_back(amount)

    @asynccontextmanager
    async def areserve(self, amount: int) -> AsyncIterator[None]:
        """Async :meth:`reserve`: waits without blocking the event loop; cancellable."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._take(amount):
                    break
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            await future  # woken by any release; then try again
        try:
            yield
        finally:
            self._give_back(amount)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
