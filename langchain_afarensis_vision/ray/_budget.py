"""One rate budget for a whole Ray cluster: the limiter in one actor, asked in batches.

:class:`SharedBudget` is a Ray actor holding one :class:`~.._ratelimit.AfarensisRateLimiter`:
the same sliding-minute log, header learning and 429 pause as in one process, now for every
request actor of the cluster. Each request actor's model gets a :class:`ClusterRateLimiter`,
an ``AfarensisRateLimiter`` whose charges, settlements and observed answers go to that actor.
It does not call the actor once a request: what its coroutines ask within a few milliseconds
goes in one :meth:`SharedBudget.exchange` call (settlements and answers first, then the asks, in
order), so the actor is not the bottleneck however many requests are in flight.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import ray

from langchain_afarensis_vision.errors import APIResponseInfo, RateLimitError, RequestTooLargeError
from langchain_afarensis_vision.rate_limiters import AfarensisRateLimiter

__all__ = ["ClusterRateLimiter", "SharedBudget", "start_budget"]

BATCH_SECONDS: Final = 0.005  # how long asks gather before they go to the actor together
_HEADERS: Final = ("retry-after", "retry-after-ms")

_Answer: TypeAlias = float | str | tuple[str, float | None, dict[str, str]]
"""An ask's answer: 0 (charged), seconds to wait, a ``RequestTooLargeError``'s message, or a
``RateLimitError``'s message, ``retry_after`` and headers (exceptions do not cross as such)."""


class SharedBudget:
    """The cluster's limiter (run as a Ray actor: :func:`start_budget`)."""

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        self.limiter = AfarensisRateLimiter(requests_per_minute, tokens_per_minute)
        self.asks = 0
        self.exchanges = 0
        self.clients: set[str] = set()

    def exchange(
        self,
        client: str,
        settles: int,
        answers: list[tuple[int, dict[str, str]]],
        asks: list[tuple[int, int]],
    ) -> list[_Answer]:
        """Apply settlements and answers, then try each ask: 0 (charged), seconds, or an error."""
        self.exchanges += 1
        self.asks += len(asks)
        self.clients.add(client)
        for _ in range(settles):
            self.limiter.settle()
        for status, headers in answers:
            self.limiter.observe(status, headers)
        results: list[_Answer] = []
        for requests, tokens in asks:
            try:
                results.append(self.limiter._try(requests, tokens))
            except RequestTooLargeError as error:
                results.append(str(error))
            except RateLimitError as error:  # a pause too long to wait out
                headers = dict(error.response.headers) if error.response else {}
                results.append((error.message, error.retry_after, headers))
        return results

    def stats(self) -> dict[str, Any]:
        """What the budget saw: 429s, the limits in force, asks, calls, and how many limiters."""
        limiter = self.limiter
        return {
            "rate_limited": limiter.rate_limited,
            "limit_requests": limiter.limit_requests,
            "limit_tokens": limiter.limit_tokens,
            "asks": self.asks,
            "exchanges": self.exchanges,
            "clients": len(self.clients),
        }


def start_budget(requests_per_minute: int | None, tokens_per_minute: int | None) -> Any:
    """Start the budget actor (CPU-less; its calls run one at a time) and return its handle."""
    actor = ray.remote(SharedBudget).options(num_cpus=0)
    return actor.remote(requests_per_minute, tokens_per_minute)


@dataclass
class _Pending:
    settles: int = 0
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    asks: list[tuple[int, int]] = field(default_factory=list)
    waiters: list[asyncio.Future[_Answer]] = field(default_factory=list)


class ClusterRateLimiter(AfarensisRateLimiter):
    """An ``AfarensisRateLimiter`` whose state lives in a :class:`SharedBudget` actor.

    Args:
        budget: The actor's handle (from :func:`start_budget`).
        check_every: Longest single sleep while waiting.
    """

    def __init__(self, budget: Any, *, check_every: float = 1.0) -> None:
        super().__init__(check_every=check_every)
        self._budget = budget
        self._name = uuid.uuid4().hex
        self._pending = _Pending()
        self._guard = threading.Lock()  # settle() and observe() may come from other threads
        self._flushing: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- what a model calls -------------------------------------------------------------------

    def settle(self) -> None:
        """Count a call's charges from now (sent with the next exchange)."""
        with self._guard:
            self._pending.settles += 1
        self._wake()

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Send an answer's rate-limit headers (a 429 at once: it pauses the cluster)."""
        kept = {k: v for k, v in headers.items() if k.startswith("x-ratelimit-") or k in _HEADERS}
        with self._guard:
            self._pending.answers.append((status, kept))
        if status == 429:
            self.rate_limited += 1
        self._wake()

    def _try(self, requests: int, tokens: int) -> float:
        """Charge now (0) or say how long to wait: one exchange, for a caller without a loop."""
        with self._guard:
            pending, self._pending = self._pending, _Pending()
        waiters, pending.waiters = pending.waiters, []
        results = ray.get(
            self._budget.exchange.remote(
                self._name, pending.settles, pending.answers, [*pending.asks, (requests, tokens)]
            )
        )
        for waiter, result in zip(waiters, results, strict=False):
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter, result)
        return _outcome(results[-1])

    async def _charge_async(self, requests: int, tokens: int, blocking: bool) -> bool:
        while (wait := _outcome(await self._ask(requests, tokens))) > 0:
            if not blocking:
                return False
            await asyncio.sleep(min(wait, self._check_every))
        return True

    # -- batching ---------------------------------------------------------------------------------

    async def _ask(self, requests: int, tokens: int) -> _Answer:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Answer] = loop.create_future()
        with self._guard:
            self._pending.asks.append((requests, tokens))
            self._pending.waiters.append(waiter)
        self._loop = loop
        self._wake()
        return await waiter

    def _wake(self) -> None:
        """Make sure a flush is coming, on the loop that asks (settle may come from a thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._start_flush()
        else:
            loop.call_soon_threadsafe(self._start_flush)

    def _start_flush(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(BATCH_SECONDS)
            with self._guard:
                pending, self._pending = self._pending, _Pending()
            if not (pending.settles or pending.answers or pending.asks):
                return
            try:
                results = await self._budget.exchange.remote(
                    self._name, pending.settles, pending.answers, pending.asks
                )
            except Exception as error:
                for waiter in pending.waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for waiter, result in zip(pending.waiters, results, strict=True):
                _resolve(waiter, result)


def _resolve(waiter: asyncio.Future[_Answer], result: _Answer) -> None:
    if not waiter.done():
        waiter.set_result(result)


def _outcome(result: _Answer) -> float:
    if isinstance(result, str):
        raise RequestTooLargeError(result)
    if isinstance(result, tuple):
        message, retry_after, headers = result
        response = APIResponseInfo(429, None, headers)
        raise RateLimitError(message, response=response, retry_after=retry_after)
    return result
