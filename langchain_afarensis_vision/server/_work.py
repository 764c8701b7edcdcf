"""What all requests share: worker threads for CPU work, download slots, and memory budgets.

The event loop only moves bytes: JSON parsing, schema validation, image checks and the engine's
pixel work run in worker threads (``anyio.to_thread``), at most :data:`~.settings.WORKER_THREADS`
at once, so that ``/health`` and every other answer keep flowing while a request is at work;
bodies of many values (:data:`~.settings.HEAVY_VALUES`) take one heavy lane of their own.
Downloads take one of :data:`~.settings.MAX_DOWNLOADS` slots and reserve the bytes they may read
from :attr:`Work.downloads` (:data:`~.settings.DOWNLOAD_MEMORY`); each image's estimated decoded
size is reserved from :attr:`Work.images` (:data:`~.settings.IMAGE_MEMORY`) around its decode,
and each request body from :attr:`Work.bodies` (:data:`~.settings.BODY_MEMORY`) until it is
answered. A worker thread may wait for :attr:`Work.images`; so a task never holds that budget
while it waits for a thread.

anyio's limiters belong to one event loop, so each loop that serves the app gets its own (a
``RunVar``); the memory budgets are thread-safe and shared by all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision.server.settings import (
    BODY_MEMORY,
    DOWNLOAD_MEMORY,
    IMAGE_MEMORY,
    MAX_DOWNLOADS,
    WORKER_THREADS,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Work:
    """The worker pool, the download slots and the memory budgets of one app."""

    def __init__(
        self,
        threads: int = WORKER_THREADS,
        downloads: int = MAX_DOWNLOADS,
        image_memory: int = IMAGE_MEMORY,
        download_memory: int = DOWNLOAD_MEMORY,
        body_memory: int = BODY_MEMORY,
    ) -> None:
        self.images = MemoryBudget(image_memory)
        """Decoded image bytes in flight."""
        self.downloads = MemoryBudget(download_memory)
        """Downloaded bytes in flight."""
        self.bodies = MemoryBudget(body_memory)
        """Request bodies in flight (each :data:`~.settings.BODY_COPIES` times its size)."""
        self._threads = _PerLoop(threads, "afarensis_worker_threads")
        self._heavy = _PerLoop(1, "afarensis_heavy_lane")
        self._slots = _PerLoop(downloads, "afarensis_download_slots")

    async def run(self, func: Callable[[*Ts], T], *args: *Ts, heavy: bool = False) -> T:
        """``func(*args)`` in a worker thread, off the event loop (``heavy``: in the heavy lane)."""
        lane = self._heavy if heavy else self._threads
        return await anyio.to_thread.run_sync(func, *args, limiter=lane.get())

    async def download(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        """A blocking download ``func(*args)`` in a thread of its own, in a download slot."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._slots.get())

    def download_slot(self) -> CapacityLimiter:
        """The download slots (``async with``) of the running event loop."""
        return self._slots.get()


class _PerLoop:
    """A capacity limiter per event loop."""

    def __init__(self, tokens: int, name: str) -> None:
        self._tokens = tokens
        self._var: RunVar[CapacityLimiter] = RunVar(name)

    def get(self) -> CapacityLimiter:
        try:
            return self._var.get()
        except LookupError:
            limiter = CapacityLimiter(self._tokens)
            self._var.set(limiter)
            return limiter
