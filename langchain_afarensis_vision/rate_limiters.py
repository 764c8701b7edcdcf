"""``AfarensisRateLimiter``: requests and tokens per minute, shared, learned, paused on a 429.

One limiter serves any number of models, threads and event loops in a process. It keeps the
log of what it let through over the last 60 seconds (a sliding window, as the local server
counts, and never looser than a bucket refilled continuously, as other servers count), and
lets a request go only when both its request and its tokens fit:

- **Costs**: ``acquire`` (LangChain's ``BaseRateLimiter`` call, made before every model call)
  charges one request; ``ChatAfarensis`` then charges the request's tokens (its prompt tokens,
  images by the formula, plus ``max_tokens``: what the API's limiter charges) with
  :meth:`AfarensisRateLimiter.reserve_tokens`. With another LangChain model only requests are
  counted.
- **Learning**: every answer's ``x-ratelimit-limit-*``, ``-remaining-*`` and ``-reset-*``
  headers set the limits (capped by the ones given, which leave room for other programs on the
  same key) and re-synchronise: tokens the server counts but this limiter did not send (another
  program) are charged until the server's reset time. Until the first answer teaches the
  limits, one request at a time goes. A limit of zero or less, or a value that is no whole
  number, is not learned (it would stop every call).
- **A 429** pauses every caller until its ``retry-after-ms`` or ``Retry-After`` (seconds or an
  HTTP date; 1 s when it names no finite, non-negative time), and fills the window so that
  traffic resumes at the limit, not in a burst that trips it again.
- **Never a deadlock**: a request costing more tokens than a whole minute allows fails at once
  with :class:`~.errors.RequestTooLargeError`; a call that would wait out a pause longer than
  ``max_retry_after`` (60 s) fails at once with :class:`~.errors.RateLimitError`, whose
  ``retry_after`` says how long the API asked to wait.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from langchain_core.rate_limiters import BaseRateLimiter

from langchain_afarensis_vision.errors import (
    APIResponseInfo,
    RateLimitError,
    RequestTooLargeError,
    retry_after_seconds,
)

__all__ = ["AfarensisRateLimiter", "parse_duration"]

WINDOW = 60.0
MAX_RETRY_AFTER = 60.0
"""The longest pause after a 429 waited out by default (``max_retry_after``)."""
UNSETTLED_GRACE = 60.0  # a charge never settled (another model's acquire) counts this much longer
_PROBE_TIMEOUT = 10.0  # an unanswered first request stops holding the others back after this
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
    r"(?:(\d+(?:\.\d+)?)ms)?"
)


def parse_duration(text: str) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value (``6m0s``, ``1s``, ``120ms``, ``1.5s``)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


@dataclass
class _Charge:
    """What one call (or another program, or a 429's pause) spent, and since when it counts.

    A charge counts from when the server counted it. That is not known while the request is in
    flight (the server counts it some time before it answers), so an unsettled charge does not
    expire; :meth:`AfarensisRateLimiter.settle` stamps it with the answer's time, which is never
    earlier than the server's count. A charge nobody settles expires :data:`UNSETTLED_GRACE`
    seconds late.
    """

    at: float
    requests: int
    tokens: int
    settled: float | None = None

    def expires(self) -> float:
        return (self.at + UNSETTLED_GRACE if self.settled is None else self.settled) + WINDOW


class AfarensisRateLimiter(BaseRateLimiter):
    """Keep to the API's requests- and tokens-per-minute limits, learned from its answers.

    Args:
        requests_per_minute: A cap on requests (None: as the API says).
        tokens_per_minute: A cap on tokens (None: as the API says).
        clock: Seconds, monotonic (injectable for tests).
        check_every: Longest single sleep while waiting (so a learned change is seen soon).
        max_retry_after: Longest pause after a 429 that a call waits out. A call that would
            wait longer raises :class:`~.errors.RateLimitError` at once (``retry_after``: the
            seconds still to wait); ``math.inf`` waits as long as the API says.

    Example:
        ```python
        limiter = AfarensisRateLimiter(tokens_per_minute=20_000)  # leave the rest of the key
        model = ChatAfarensis(rate_limiter=limiter)
        ```
    """

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_every: float = 1.0,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        if not max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be >= 0 seconds; got {max_retry_after}")
        self.cap_requests = requests_per_minute
        self.cap_tokens = tokens_per_minute
        self.limit_requests = requests_per_minute
        self.limit_tokens = tokens_per_minute
        self.learned = False
        self.paused_until = 0.0
        self.max_retry_after = max_retry_after
        self._paused_by = APIResponseInfo(429, None)  # the 429 that set paused_until
        self.rate_limited = 0  # 429s seen
        self._clock = clock
        self._check_every = check_every
        self._log: list[_Charge] = []
        self._probe_at: float | None = None
        self._lock = threading.Lock()

    # -- LangChain's interface: one request ---------------------------------------------------

    def acquire(self, *, blocking: bool = True) -> bool:
        """Charge one request, waiting (if ``blocking``) until the window has room for it."""
        return self._charge_sync(1, 0, blocking)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Async :meth:`acquire`."""
        return await self._charge_async(1, 0, blocking)

    # -- tokens -------------------------------------------------------------------------------

    def reserve_tokens(self, tokens: int) -> None:
        """Charge ``tokens`` (prompt + max_tokens), waiting until they fit in the window."""
        self._charge_sync(0, tokens, blocking=True)

    async def areserve_tokens(self, tokens: int) -> None:
        """Async :meth:`reserve_tokens`."""
        await self._charge_async(0, tokens, blocking=True)

    def settle(self) -> None:
        """A call has its answer (or gave up): its charges count from now, not from their start.

        Settles the oldest unsettled charge of requests and of tokens: answers arrive in any
        order, but the oldest charge's request was counted by the server before now as well.
        """
        with self._lock:
            now = self._clock()
            self._probe_at = None  # the probe came back (or failed): the next one may go
            for kind in _KINDS:
                pending = (c for c in self._log if c.settled is None and getattr(c, kind))
                if (charge := next(pending, None)) is not None:
                    charge.settled = now

    # -- what the API answered ------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer's ``x-ratelimit-*`` headers; on a 429, pause every caller."""
        with self._lock:
            now = self._clock()
            self._probe_at = None
            self._learn(now, headers)
            if status == 429:
                self.rate_limited += 1
                wait = retry_after_seconds(headers)
                wait = 1.0 if wait is None else wait
                if now + wait > self.paused_until:
                    self.paused_until = now + wait
                    self._paused_by = APIResponseInfo.build(429, None, headers)
                self._fill_window(now, wait)

    def wait_time(self, requests: int = 1, tokens: int = 0) -> float:
        """Seconds until a charge of ``requests`` and ``tokens`` could go (0: now)."""
        with self._lock:
            return self._wait(self._clock(), requests, tokens)

    # -- internals ------------------------------------------------------------------------------

    def _charge_sync(self, requests: int, tokens: int, blocking: bool) -> bool:
        while (wait := self._try(requests, tokens)) > 0:
            if not blocking:
                return False
            time.sleep(min(wait, self._check_every))
        return True

    async def _charge_async(self, requests: int, tokens: int, blocking: bool) -> bool:
        while (wait := self._try(requests, tokens)) > 0:
            if not blocking:
                return False
            await asyncio.sleep(min(wait, self._check_every))
        return True

    def _try(self, requests: int, tokens: int) -> float:
        """Charge now and return 0, or return how long to wait."""
        with self._lock:
            now = self._clock()
            if self.limit_tokens is not None and tokens > self.limit_tokens:
                msg = (
                    f"This request may cost {tokens:,} tokens (prompt and max_tokens), more "
                    f"than the {self.limit_tokens:,} tokens a minute allows: lower max_tokens, "
                    "send fewer or smaller images, or split the request."
                )
                raise RequestTooLargeError(msg)
            if (pause := self.paused_until - now) > self.max_retry_after:
                raise self._paused_error(pause)
            wait = self._wait(now, requests, tokens)
            if wait <= 0:
                self._log.append(_Charge(now, requests, tokens))  # settled when answered
                if requests and not self.learned:
                    self._probe_at = now
            return wait

    def _paused_error(self, pause: float) -> RateLimitError:
        """The error for a call that would wait out ``pause`` seconds, over the cap."""
        msg = (
            f"The API answered 429 and asked to wait {pause:,.0f} s more, longer than this "
            f"rate limiter's max_retry_after ({self.max_retry_after:g} s): not waiting. Try "
            "again later, or raise max_retry_after to wait that long."
        )
        return RateLimitError(msg, response=self._paused_by, retry_after=pause)

    def _wait(self, now: float, requests: int, tokens: int) -> float:
        self._expire(now)
        if now < self.paused_until:
            return self.paused_until - now
        unknown = self.limit_requests is None or self.limit_tokens is None
        probing = requests and unknown and not self.learned and self._probe_at is not None
        if probing and (since := now - (self._probe_at or now)) < _PROBE_TIMEOUT:
            return min(0.05, _PROBE_TIMEOUT - since)
        return max(
            self._room(now, "requests", requests, self.limit_requests),
            self._room(now, "tokens", tokens, self.limit_tokens),
        )

    def _room(self, now: float, kind: str, amount: int, limit: int | None) -> float:
        """Seconds until ``amount`` more fits under ``limit`` in the window (0: it fits)."""
        if limit is None or amount == 0:
            return 0.0
        charges = sorted((c for c in self._log if getattr(c, kind)), key=_Charge.expires)
        excess = sum(getattr(c, kind) for c in charges) + amount - limit
        if excess <= 0:
            return 0.0
        for charge in charges:  # the soonest to expire first: when enough of them have
            excess -= getattr(charge, kind)
            if excess <= 0:
                return charge.expires() - now
        return WINDOW  # more than the limit: refused before this

    def _expire(self, now: float) -> None:
        self._log = [c for c in self._log if c.expires() > now]

    def _learn(self, now: float, headers: Mapping[str, str]) -> None:
        limits = {kind: _int(headers.get(f"x-ratelimit-limit-{kind}"), 1) for kind in _KINDS}
        if any(value is not None for value in limits.values()):
            self.learned = True
        for kind, value in limits.items():
            if value is not None:
                cap = getattr(self, f"cap_{kind}")
                setattr(self, f"limit_{kind}", value if cap is None else min(cap, value))
        self._expire(now)
        for kind in _KINDS:  # what the server counts and we did not send: another program's
            remaining = _int(headers.get(f"x-ratelimit-remaining-{kind}"), 0)
            limit = limits[kind]
            if remaining is None or limit is None:
                continue
            ours = sum(getattr(c, kind) for c in self._log)
            theirs = limit - remaining - ours
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}", "")) or 0.0
            if theirs > 0 and reset > 0:
                self._log.append(_counted(kind, theirs, until=now + min(reset, WINDOW)))

    def _fill_window(self, now: float, wait: float) -> None:
        """After a 429, count the window as full until the pause ends: no burst follows it."""
        for kind in _KINDS:
            limit = getattr(self, f"limit_{kind}")
            if limit is None:
                continue
            used = sum(getattr(c, kind) for c in self._log)
            if used < limit:
                self._log.append(_counted(kind, limit - used, until=now + wait))


_KINDS = ("requests", "tokens")


def _counted(kind: str, amount: int, until: float) -> _Charge:
    """A settled charge of ``amount`` requests or tokens that counts until ``until``."""
    start = until - WINDOW
    charge = _Charge(start, 0, 0, settled=start)
    setattr(charge, kind, amount)
    return charge


def _int(value: str | None, least: int) -> int | None:
    """``value`` as a whole number of at least ``least``, else None (not learned)."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= least else None
