"""Fault injection for resilience tests: errors, 429s, latency, dropped connections, cut streams.

Faults apply to ``POST /v1/chat/completions`` only, before anything else (authentication
included), the way a flaky network or an overloaded server fails. Whether the *n*-th such
request (counted in arrival order from 1) gets a fault is a pure function of the server's
``seed`` and *n*, so a run that sends requests one at a time meets the same faults every time::

    faults = Faults(error_rate=0.2, rate_limit_rate=0.1, drop_connection_rate=0.05)
    with LocalAfarensisServer(faults=faults, seed=42) as server:
        ...

Each request draws one number ``u`` in [0, 1): below ``error_rate`` it is answered with a
``server_error`` whose status is drawn from ``error_statuses``; in the next ``rate_limit_rate``
with a 429 carrying ``Retry-After: retry_after``; in the next ``drop_connection_rate`` its
connection is closed without an answer; in the next ``cut_stream_rate``, a streamed answer
stops after :data:`CUT_AFTER_EVENTS` events, without ``data: [DONE]`` (a non-streamed answer is
left alone). ``latency`` seconds are added to every request before it is read, and
``answer_latency`` seconds to every answer once it is ready: a client that gives up meanwhile
was billed all the same, as the real API bills what it has answered.

A dropped or cut connection is aborted at the socket, so a client sees a connection error
(reset or incomplete body). That needs a real server (:class:`LocalAfarensisServer`); with an
in-process ASGI transport a drop raises ``ConnectionResetError`` in the app instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_afarensis_vision.server._errors import APIError, rate_limited, server_error
from langchain_afarensis_vision.server.limits import RateLimiter, retry_headers

CUT_AFTER_EVENTS: Final = 2
"""A cut stream sends this many body messages (the first chunks) before the connection drops."""

FaultKind = Literal["none", "error", "rate_limit", "drop", "cut"]


@dataclass(frozen=True)
class Faults:
    """How often and how the server misbehaves; all rates are shares of requests in [0, 1]."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    latency: float = 0.0
    answer_latency: float = 0.0
    drop_connection_rate: float = 0.0
    cut_stream_rate: float = 0.0

    def __post_init__(self) -> None:
        rates = [self.error_rate, self.rate_limit_rate]
        rates += [self.drop_connection_rate, self.cut_stream_rate]
        if any(not 0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0 + 1e-9:
            msg = f"fault rates must each be in [0, 1] and add up to at most 1; got {rates}"
            raise ValueError(msg)
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            msg = f"error_statuses must be 5xx statuses; got {self.error_statuses}"
            raise ValueError(msg)
        if min(self.latency, self.answer_latency, self.retry_after) < 0:
            raise ValueError("latency, answer_latency and retry_after must not be negative")

    @property
    def active(self) -> bool:
        """Whether any fault can happen at all."""
        rates = self.error_rate + self.rate_limit_rate + self.drop_connection_rate
        return rates + self.cut_stream_rate > 0 or self.latency + self.answer_latency > 0

    def decide(self, seed: int, number: int) -> tuple[FaultKind, int]:
        """The fault for request ``number`` under ``seed``, and the status for an error."""
        u = _uniform(seed, number, "kind")
        kind: FaultKind = "none"
        for name, rate in (
            ("error", self.error_rate),
            ("rate_limit", self.rate_limit_rate),
            ("drop", self.drop_connection_rate),
            ("cut", self.cut_stream_rate),
        ):
            if u < rate:
                kind = name  # type: ignore[assignment]
                break
            u -= rate
        pick = int(_uniform(seed, number, "status") * len(self.error_statuses))
        return kind, self.error_statuses[pick]


def _uniform(seed: int, number: int, salt: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{number}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultMiddleware:
    """ASGI middleware that injects :class:`Faults` into chat-completion requests."""

    def __init__(self, app: ASGIApp, faults: Faults, seed: int, limiter: RateLimiter) -> None:
        self.app = app
        self.faults = faults
        self.seed = seed
        self.limiter = limiter
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: a chat-completion request may get a fault."""
        if (
            not self.faults.active
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith("/chat/completions")
        ):
            await self.app(scope, receive, send)
            return
        number = next(self._counter)
        kind, status = self.faults.decide(self.seed, number)
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self.faults.answer_latency:
            send = _LateSend(send, self.faults.answer_latency)
        if kind == "error":
            message = f"The server had an error processing your request (injected fault #{number})."
            await _send_error(send, server_error(status, message))
        elif kind == "rate_limit":
            await _send_error(send, self._rate_limit_error(number))
        elif kind == "drop":
            await _abort(receive)
        elif kind == "cut":
            await self.app(scope, receive, _CuttingSend(send, receive))
        else:
            await self.app(scope, receive, send)

    def _rate_limit_error(self, number: int) -> APIError:
        wait = self.faults.retry_after
        headers = retry_headers(wait) | self.limiter.state().exhausted(wait).headers()
        message = f"Rate limit reached (injected fault #{number}). Please try again in {wait:g}s."
        return rate_limited(message, headers)


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _abort(receive: Receive) -> None:
    """Close the client's connection at once, without an answer (uvicorn's transport)."""
    transport: Any = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionResetError("connection dropped by the local server's fault injection")
    transport.abort()
    # Let the server see the connection is gone before the app returns, so it sends nothing.
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class _LateSend:
    """Holds an answer back for ``seconds`` once it is ready (its tokens already billed)."""

    def __init__(self, send: Send, seconds: float) -> None:
        self._send = send
        self._seconds = seconds

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(self._seconds)
        await self._send(message)


class _CuttingSend:
    """Passes an event stream through until :data:`CUT_AFTER_EVENTS` body messages, then aborts."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send = send
        self._receive = receive
        self._streaming = False
        self._bodies = 0
        self._cut = False

    async def __call__(self, message: Message) -> None:
        if self._cut:
            return
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            self._streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
        elif message["type"] == "http.response.body" and self._streaming:
            last = not message.get("more_body", False)
            if self._bodies >= CUT_AFTER_EVENTS or last:
                self._cut = True
                await _abort(self._receive)
                return
            self._bodies += 1
        await self._send(message)
