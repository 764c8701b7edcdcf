"""A memory budget: how many decoded bytes may be in flight at once, across threads and loops.

Counting images in flight is not enough: one 34-byte WEBP can declare 10000 x 10000 pixels. So
the loader, the tool and the local server reserve each image's *estimated decoded size*
(:func:`~._sources.working_bytes`: what the decoder and the conversions really allocate)
before they decode it, and wait while the budget is spent. Waiters are served in the order they
came (first come, first served), so a large reservation is never overtaken for ever by a stream
of small ones: every wait ends once those ahead of it are done. A reservation larger than the
whole budget is granted alone (it waits until nothing else is in flight) rather than never;
callers that can, answer such an image from its header instead of decoding it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
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
        self._queue: deque[object] = deque()  # the waiting reservations' tickets, in order

    @property
    def waiting(self) -> int:
        """How many reservations are waiting for their turn."""
        return len(self._queue)

    def _take(self, amount: int) -> bool:
        """Reserve ``amount`` if it fits now (call with the lock held)."""
        if self.in_use and self.in_use + amount > self.limit:
            return False
        self.in_use += amount
        return True

    def _turn(self, ticket: object, amount: int) -> bool:
        """Reserve ``amount`` if ``ticket`` is first in line and it fits (lock held)."""
        if self._queue[0] is not ticket or not self._take(amount):
            return False
        self._queue.popleft()
        self._wake()  # the next in line may fit too
        return True

    def _leave(self, ticket: object) -> None:
        """Take a waiter that gave up out of the line (lock held)."""
        if ticket in self._queue:
            self._queue.remove(ticket)
            self._wake()

    def _wake(self) -> None:
        """Wake every waiter, sync and async, to try again (lock held)."""
        self._lock.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

    def _give_back(self, amount: int) -> None:
        with self._lock:
            self.in_use -= amount
            self._wake()

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes of the budget, waiting (blocking) for its turn and room."""
        ticket = object()
        with self._lock:
            self._queue.append(ticket)
            try:
                self._lock.wait_for(lambda: self._turn(ticket, amount))
            except BaseException:
                self._leave(ticket)
                raise
        try:
            yield
        finally:
            self._give_back(amount)

    @asynccontextmanager
    async def areserve(self, amount: int) -> AsyncIterator[None]:
        """Async :meth:`reserve`: waits without blocking the event loop; cancellable."""
        loop = asyncio.get_running_loop()
        ticket = object()
        with self._lock:
            self._queue.append(ticket)
        try:
            while True:
                with self._lock:
                    if self._turn(ticket, amount):
                        break
                    future: asyncio.Future[None] = loop.create_future()
                    self._waiters.append((loop, future))
                await future  # woken by any release; then try again
        except BaseException:
            with self._lock:
                self._leave(ticket)
            raise
        try:
            yield
        finally:
            self._give_back(amount)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
