"""Requests- and tokens-per-minute limits over a sliding 60-second window.

A request is counted when it passes authentication; its tokens (prompt tokens plus the
``max_tokens`` it may generate, as the real API estimates them) are counted once its body and
images have been checked. Over either limit the server answers 429 ``rate_limit_exceeded`` with
``Retry-After`` (whole seconds, rounded up) and the six ``x-ratelimit-*`` headers, which it
also sends on every other chat-completion answer.

A limit left as ``None`` is not enforced; its headers then report :data:`UNLIMITED` as both the
limit and the remaining budget, and ``0s`` as the reset time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

WINDOW_SECONDS: Final = 60.0
UNLIMITED: Final = 1_000_000_000
"""What the headers report for a limit that is not set."""


def duration(seconds: float) -> str:
    """An ``x-ratelimit-reset-*`` value in the API's style: ``0s``, ``250ms``, ``6.5s``, ``1m5s``.

    Args:
        seconds: The time until the limit resets.
    """
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


@dataclass(frozen=True)
class RateLimitState:
    """What the ``x-ratelimit-*`` headers say; resets are in seconds."""

    limit_requests: int
    remaining_requests: int
    reset_requests: float
    limit_tokens: int
    remaining_tokens: int
    reset_tokens: float

    def headers(self) -> dict[str, str]:
        """The six ``x-ratelimit-*`` headers."""
        return {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-remaining-requests": str(self.remaining_requests),
            "x-ratelimit-reset-requests": duration(self.reset_requests),
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-tokens": str(self.remaining_tokens),
            "x-ratelimit-reset-tokens": duration(self.reset_tokens),
        }

    def exhausted(self, retry_after: float) -> RateLimitState:
        """This state with no requests left for ``retry_after`` seconds (an injected 429)."""
        return replace(self, remaining_requests=0, reset_requests=retry_after)


class RateLimited(Exception):
    """Over a limit: wait ``retry_after`` seconds; ``state`` gives the headers."""

    def __init__(self, message: str, retry_after: float, state: RateLimitState) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.state = state

    def headers(self) -> dict[str, str]:
        """``Retry-After`` (whole seconds), ``retry-after-ms`` and the six ``x-ratelimit-*``."""
        return retry_headers(self.retry_after) | self.state.headers()


def retry_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1) and the finer ``retry-after-ms``."""
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


class RateLimiter:
    """Sliding-window counters for requests and tokens; thread-safe."""

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        *,
        model: str = "gpt-4-vision-preview",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if value is not None and value < 1:
                msg = f"{name}_per_minute must be a positive integer or None; got {value}"
                raise ValueError(msg)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._model = model
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._tokens_used = 0

    def _prune(self, now: float) -> None:
        start = now - WINDOW_SECONDS
        while self._requests and self._requests[0] <= start:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= start:
            self._tokens_used -= self._tokens.popleft()[1]

    def _state(self, now: float) -> RateLimitState:
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        newest_request = self._requests[-1] if self._requests else now - WINDOW_SECONDS
        newest_tokens = self._tokens[-1][0] if self._tokens else now - WINDOW_SECONDS
        return RateLimitState(
            limit_requests=rpm or UNLIMITED,
            remaining_requests=max(0, rpm - len(self._requests)) if rpm else UNLIMITED,
            reset_requests=max(0.0, newest_request + WINDOW_SECONDS - now) if rpm else 0.0,
            limit_tokens=tpm or UNLIMITED,
            remaining_tokens=max(0, tpm - self._tokens_used) if tpm else UNLIMITED,
            reset_tokens=max(0.0, newest_tokens + WINDOW_SECONDS - now) if tpm else 0.0,
        )

    def state(self) -> RateLimitState:
        """The current state, for the headers of an answer."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return self._state(now)

    def admit_request(self) -> RateLimitState:
        """Count one request, or raise :class:`RateLimited` if the window is full."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            rpm = self.requests_per_minute
            if rpm is not None and len(self._requests) >= rpm:
                wait = self._requests[0] + WINDOW_SECONDS - now
                msg = (
                    f"Rate limit reached for {self._model} on requests per min (RPM): "
                    f"Limit {rpm}, Used {len(self._requests)}, Requested 1. "
                    f"Please try again in {duration(wait)}."
                )
                raise RateLimited(msg, wait, self._state(now))
            if rpm is not None:
                self._requests.append(now)
            return self._state(now)

    def admit_tokens(self, tokens: int) -> RateLimitState:
        """Count ``tokens`` for one request, or raise :class:`RateLimited` if they do not fit."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            tpm = self.tokens_per_minute
            if tpm is None:
                return self._state(now)
            if self._tokens_used + tokens > tpm:
                message = self._tokens_message(tpm, tokens)
                raise RateLimited(message, self._wait(tpm, tokens, now), self._state(now))
            self._tokens.append((now, tokens))
            self._tokens_used += tokens
            return self._state(now)

    def _tokens_message(self, tpm: int, tokens: int) -> str:
        if tokens > tpm:
            return (
                f"Request too large for {self._model} on tokens per min (TPM): Limit {tpm}, "
                f"Requested {tokens}. Send fewer or smaller images, or a lower max_tokens."
            )
        return (
            f"Rate limit reached for {self._model} on tokens per min (TPM): Limit {tpm}, "
            f"Used {self._tokens_used}, Requested {tokens}."
        )

    def _wait(self, tpm: int, tokens: int, now: float) -> float:
        """Seconds until enough earlier tokens leave the window for ``tokens`` to fit."""
        if tokens > tpm:
            return WINDOW_SECONDS
        used = self._tokens_used
        for stamp, count in self._tokens:
            used -= count
            if used + tokens <= tpm:
                return max(0.0, stamp + WINDOW_SECONDS - now)
        return WINDOW_SECONDS  # pragma: no cover - the loop always frees enough
