"""The one place that touches the network: httpx2 clients, retries, SSE, and error mapping.

``Transport`` sends a JSON body and returns the parsed JSON answer, or yields the parsed events
of a server-sent-events stream. Third-party errors become this package's exceptions in exactly
one place (:func:`_map_errors`). Retries follow :class:`RetryPolicy`, a pure function of the
attempt number and the error, so the sync and async loops differ only in how they sleep and
await.

The async client is kept per event loop: an ``httpx2.AsyncClient`` whose pool was made in one
loop cannot be used from another (repeated ``asyncio.run``, Jupyter), so each loop gets its own.
Clients the transport made itself are closed for you: the sync one when the transport is
garbage-collected (or on :meth:`Transport.close`), each async one when its event loop shuts down
(``asyncio.run`` closes open async generators, and a sentinel generator closes the client).
Injected clients are the caller's to close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx2

from langchain_afarensis_vision._contract import RETRYABLE_STATUSES
from langchain_afarensis_vision._version import __version__
from langchain_afarensis_vision.errors import (
    AfarensisError,
    APIConnectionError,
    APIResponseInfo,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    status_error_class,
)

logger = logging.getLogger("langchain_afarensis_vision")

USER_AGENT = f"langchain-afarensis-vision/{__version__}"
MAX_RETRY_AFTER = 60.0
"""A ``Retry-After`` longer than this is not waited for: the error is raised at once."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on 429, 5xx, connection errors and timeouts."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int, error: AfarensisError) -> float | None:
        """Seconds to wait before retrying after ``attempt`` (0-based) failed, or None."""
        if attempt >= self.max_retries or not _retryable(error):
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > MAX_RETRY_AFTER:
                return None
            return max(0.0, error.retry_after)
        backoff = min(self.max_delay, self.initial_delay * 2**attempt)
        return float(backoff * (1 - 0.25 * self.jitter()))


_NO_RETRY = RetryPolicy(max_retries=0)
"""For errors while reading a stream: chunks were already yielded, so nothing is retried."""


def _retryable(error: AfarensisError) -> bool:
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
    return isinstance(error, APIConnectionError)


def _map_error(exc: BaseException) -> AfarensisError | None:
    """This package's error for a third-party one (None if ``exc`` is not one we map)."""
    if isinstance(exc, AfarensisError):
        return exc
    if isinstance(exc, httpx2.SSEError):
        return APIConnectionError(f"Not an event stream: {exc}")
    if isinstance(exc, httpx2.TimeoutException):
        return APITimeoutError(f"Request timed out ({type(exc).__name__}).")
    if isinstance(exc, httpx2.TransportError):
        reason = str(exc) or type(exc).__name__
        return APIConnectionError(f"Connection error: {reason}")
    return None


def _status_error(status: int, body: bytes, headers: Mapping[str, str]) -> APIStatusError:
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = body.decode("utf-8", "replace")[:2000]
    response = APIResponseInfo.build(status, data, headers)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        detail = f"{error.get('code') or error.get('type')}: {error.get('message')}"
    else:
        detail = str(data)[:500] or "(empty body)"
    return status_error_class(status)(f"Error code: {status} - {detail}", response=response)


def _forget_key(exc: BaseException | None) -> None:
    """Mask the key in the request an httpx2 error keeps, before the error leaves as a cause.

    Called only when no retry follows, since the same request object is sent again on retry.
    """
    if not isinstance(exc, httpx2.RequestError):
        return
    try:
        request = exc.request
    except RuntimeError:  # an httpx2 error raised without a request
        return
    if "authorization" in request.headers:
        request.headers["authorization"] = "Bearer [redacted]"


class _Attempt:
    """One try: a context manager that maps errors and decides whether another try follows."""

    def __init__(self, number: int, policy: RetryPolicy) -> None:
        self.number = number
        self.policy = policy
        self.wait: float | None = None

    def __enter__(self) -> _Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        error = _map_error(exc) if exc is not None else None
        if error is None:
            return False
        self.wait = self.policy.delay(self.number, error)
        if self.wait is None:
            if error is exc:
                return False
            _forget_key(exc)
            raise error from exc
        logger.info("Retrying in %.2fs after: %s", self.wait, error.message)
        return True


class Transport:
    """Sends requests to the API with connection reuse, retries and mapped errors."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Callable[[], str],
        timeout: float | None,
        policy: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        client: httpx2.Client | None = None,
        async_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx2.Timeout(timeout, connect=min(timeout or 10.0, 10.0))
        self._policy = policy
        self._headers = {"user-agent": USER_AGENT, **(headers or {})}
        self._urls: dict[str, httpx2.URL] = {}  # parsed once per path, not on every request
        self._client = client
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx2.AsyncClient, AsyncIterator[None]]
        ] = weakref.WeakKeyDictionary()

    # -- clients ------------------------------------------------------------------------------

    @property
    def client(self) -> httpx2.Client:
        """The sync client (made on first use and reused)."""
        if self._client is None:
            self._client = httpx2.Client(timeout=self._timeout)
            self._finalizer = weakref.finalize(self, self._client.close)
        return self._client

    async def async_client(self) -> httpx2.AsyncClient:
        """The async client for the running event loop (made on first use there)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        if (entry := self._async_clients.get(loop)) is None:
            client = httpx2.AsyncClient(timeout=self._timeout)
            sentinel = _close_at_loop_shutdown(client, self._async_clients)
            await anext(sentinel)
            self._async_clients[loop] = entry = (client, sentinel)
        return entry[0]

    def close(self) -> None:
        """Close the sync client, if this transport made it."""
        if self._client is not None and hasattr(self, "_finalizer"):
            self._finalizer()

    async def aclose(self) -> None:
        """Close the running loop's async client, if this transport made it."""
        entry = self._async_clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()  # type: ignore[attr-defined]

    def _request(self, client: httpx2.Client | httpx2.AsyncClient, path: str, body: Any) -> Any:
        headers = {
            **self._headers,
            "authorization": f"Bearer {self._api_key()}",
            "content-type": "application/json",
        }
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if (url := self._urls.get(path)) is None:
            url = self._urls[path] = httpx2.URL(self.base_url + path)
        return client.build_request(
            "POST", url, content=content, headers=headers, timeout=self._timeout
        )

    def _attempts(self) -> Iterator[_Attempt]:
        """One attempt after another; after a failed one, the caller sleeps ``attempt.wait``.

        The same plain generator serves sync and async callers, which differ only in how they
        sleep (an async generator left at its ``yield`` by the caller's ``return`` would be
        finalised by the event loop: a wake-up write and a task per request).
        """
        for number in range(self._policy.max_retries + 1):
            yield _Attempt(number, self._policy)

    # -- JSON ---------------------------------------------------------------------------------

    def post(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON and return the parsed JSON answer."""
        request = self._request(self.client, path, body)
        for attempt in self._attempts():
            with attempt:
                return _json(self.client.send(request))
            time.sleep(attempt.wait or 0.0)  # reached only when a retry follows
        raise AssertionError("unreachable")  # pragma: no cover

    async def apost(self, path: str, body: Any) -> Any:
        """Async :meth:`post`."""
        client = await self.async_client()
        request = self._request(client, path, body)
        for attempt in self._attempts():
            with attempt:
                return _json(await client.send(request))
            await asyncio.sleep(attempt.wait or 0.0)  # reached only when a retry follows
        raise AssertionError("unreachable")  # pragma: no cover

    # -- SSE ----------------------------------------------------------------------------------

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield each ``data:`` event of the SSE answer, parsed."""
        request = self._request(self.client, path, body)
        for attempt in self._attempts():
            with attempt:
                response = self.client.send(request, stream=True)
                if response.status_code >= 400:
                    response.read()
                    _json(response)
                break
            time.sleep(attempt.wait or 0.0)  # reached only when a retry follows
        try:
            with _Attempt(0, _NO_RETRY):
                decoder = _EventDecoder()
                for event in httpx2.EventSource(response):
                    parsed = decoder.feed(event)
                    if parsed is None:
                        break
                    yield parsed
                decoder.close()
        finally:
            response.close()

    async def astream(self, path: str, body: Any) -> AsyncIterator[dict[str, Any]]:
        """Async :meth:`stream`."""
        client = await self.async_client()
        request = self._request(client, path, body)
        for attempt in self._attempts():
            with attempt:
                response = await client.send(request, stream=True)
                if response.status_code >= 400:
                    await response.aread()
                    _json(response)
                break
            await asyncio.sleep(attempt.wait or 0.0)  # reached only when a retry follows
        try:
            with _Attempt(0, _NO_RETRY):
                decoder = _EventDecoder()
                async for event in httpx2.EventSource(response):
                    parsed = decoder.feed(event)
                    if parsed is None:
                        break
                    yield parsed
                decoder.close()
        finally:
            await response.aclose()


async def _close_at_loop_shutdown(
    client: httpx2.AsyncClient, clients: MutableMapping[asyncio.AbstractEventLoop, Any]
) -> AsyncIterator[None]:
    """Yields once, then waits; its ``finally`` runs when the loop closes async generators.

    It also forgets the loop's entry in ``clients``: this generator refers to its loop (its
    finalizer hook), so the entry's weak key would otherwise never die with the loop.
    """
    try:
        yield
    finally:
        clients.pop(asyncio.get_running_loop(), None)
        await client.aclose()


def _json(response: httpx2.Response) -> Any:
    if response.status_code >= 400:
        raise _status_error(response.status_code, response.content, response.headers)
    try:
        return response.json()
    except ValueError as exc:
        msg = f"The API answered {response.status_code} with a body that is not JSON."
        raise APIConnectionError(msg) from exc


class _EventDecoder:
    """Turns SSE events into parsed JSON, stopping at ``[DONE]``; errors if it never comes."""

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: httpx2.ServerSentEvent) -> dict[str, Any] | None:
        if event.data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            data = json.loads(event.data)
        except ValueError as exc:
            msg = f"The stream carried an event that is not JSON: {event.data[:200]!r}"
            raise APIConnectionError(msg) from exc
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise _status_error(500, event.data.encode(), {})
        return data  # type: ignore[no-any-return]

    def close(self) -> None:
        if not self.done:
            msg = "The stream ended before [DONE]: the connection was cut mid-answer."
            raise APIConnectionError(msg)
