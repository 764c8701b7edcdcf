"""The one place that touches the network: httpx2 clients, retries, SSE, and error mapping.

``Transport`` sends a JSON body and returns the parsed JSON answer, or yields the parsed events
of a server-sent-events stream. httpx2's errors become this package's exceptions in exactly one
place (:func:`_mapped_errors`, which also masks the key in the request they keep), error
statuses in another (:func:`_status_error`, which masks the key wherever the answer echoes it;
:mod:`._api.redaction` masks it in httpx2's and httpcore2's own log records too). Retries follow
:class:`RetryPolicy`, a pure function of the attempt number and the error, in one plain loop
written twice: the sync and async versions differ only where they await, as do
:meth:`Transport.stream` and :meth:`Transport.astream`.

The async client is kept per event loop: an ``httpx2.AsyncClient`` whose pool was made in one
loop cannot be used from another (repeated ``asyncio.run``, Jupyter), so each loop gets its own.
Clients the transport made itself are closed for you: the sync one when the transport is
garbage-collected (or on :meth:`Transport.close`), each async one when its event loop shuts down
(``asyncio.run`` closes open async generators, and a sentinel generator closes the client).
Injected clients are the caller's to close.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from langchain_afarensis_vision._api.contract import BASE_URL_ENV, RETRYABLE_STATUSES
from langchain_afarensis_vision._api.redaction import mask, remember
from langchain_afarensis_vision._version import __version__
from langchain_afarensis_vision.errors import (
    AfarensisError,
    APIConnectionError,
    APIResponseInfo,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    request_id,
    status_error_class,
)
from langchain_afarensis_vision.rate_limiters import MAX_RETRY_AFTER

logger = logging.getLogger("langchain_afarensis_vision")

USER_AGENT = f"langchain-afarensis-vision/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on 429, 5xx, connection errors and timeouts.

    A 429's ``retry_after`` is waited for instead, unless it is longer than ``max_retry_after``:
    the error is then raised at once.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = MAX_RETRY_AFTER
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int, error: AfarensisError) -> float | None:
        """Seconds to wait before retrying after ``attempt`` (0-based) failed, or None."""
        if attempt >= self.max_retries or not _retryable(error):
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        backoff = min(self.max_delay, self.initial_delay * 2**attempt)
        return float(backoff * (1 - 0.25 * self.jitter()))


def _retryable(error: AfarensisError) -> bool:
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
    return isinstance(error, APIConnectionError)


@contextmanager
def _mapped_errors(
    answered: httpx2.Response | None = None, base_url: str | None = None
) -> Iterator[None]:
    """Raise httpx2's errors as this package's, with the key masked in the request they keep.

    Every attempt sends a request of its own, so masking one never affects a retry. An error
    while reading an ``answered`` stream carries that answer's request id. A connection that
    could not be made names ``base_url`` (without any user, password or query) and what to do.
    """
    try:
        yield
    except httpx2.RequestError as exc:
        _forget_key(exc)
        rid = request_id(answered.headers) if answered is not None else None
        if isinstance(exc, httpx2.SSEError):
            raise APIConnectionError(f"Not an event stream: {exc}", request_id=rid) from exc
        if isinstance(exc, httpx2.TimeoutException):
            msg = f"Request timed out ({type(exc).__name__})."
            raise APITimeoutError(msg, request_id=rid) from exc
        msg = f"Connection error: {str(exc) or type(exc).__name__}"
        if isinstance(exc, httpx2.ConnectError) and base_url is not None:
            msg = _unreachable(base_url, str(exc) or type(exc).__name__)
        raise APIConnectionError(msg, request_id=rid) from exc


def _unreachable(base_url: str, reason: str) -> str:
    """Why nothing answered at ``base_url``, and what to do; never its user, password or query."""
    try:
        shown = str(httpx2.URL(base_url).copy_with(username=None, password=None, query=None))
    except (httpx2.InvalidURL, TypeError, ValueError):
        shown = "the base URL"
    return (
        f"Connection error: cannot reach {shown} ({reason}). Check that the API's server is "
        f"running there, or set base_url (or {BASE_URL_ENV}) to the API's base URL."
    )


def _forget_key(exc: httpx2.RequestError) -> None:
    try:
        request = exc.request
    except RuntimeError:  # an httpx2 error raised without a request
        return
    if "authorization" in request.headers:
        request.headers["authorization"] = "Bearer [redacted]"


def _status_error(
    status: int, body: bytes, headers: Mapping[str, str], secret: str | None
) -> APIStatusError:
    """The error for an answer with ``status``; ``secret`` (the key sent) masked if echoed."""
    text = mask(body.decode("utf-8", "replace"), secret)  # before any cut: no half key left
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text[:2000]
    response = APIResponseInfo.build(status, parsed, headers, secret)  # "\u0073k-..." too
    data = response.data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        detail = f"{error.get('code') or error.get('type')}: {error.get('message')}"
    else:
        detail = str(data)[:500] or "(empty body)"
    return status_error_class(status)(f"Error code: {status} - {detail}", response=response)


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
        observe: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._observe = observe  # told every answer's status and headers (the rate limiter)
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

    def _request(
        self, client: httpx2.Client | httpx2.AsyncClient, path: str, body: bytes
    ) -> httpx2.Request:
        key = self._api_key()
        remember(key)  # masked in httpx2's and httpcore2's logs, should a server echo it
        headers = {
            **self._headers,
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
        }
        if (url := self._urls.get(path)) is None:
            url = self._urls[path] = httpx2.URL(self.base_url + path)
        return client.build_request(
            "POST", url, content=body, headers=headers, timeout=self._timeout
        )

    def _retry_delay(self, attempt: int, error: AfarensisError) -> float:
        """Seconds to wait before retrying after ``attempt`` (0-based); raises ``error`` if none."""
        delay = self._policy.delay(attempt, error)
        if delay is None:
            raise error
        logger.info("Retrying in %.2fs after: %s", delay, error.message)
        return delay

    # -- sending, with retries: the sync and async loops differ only where they await -------------

    def post(self, path: str, body: Any, *, stream: bool = False) -> Any:
        """POST ``body`` as JSON: the parsed JSON answer, or with ``stream`` the open response."""
        content = _encode(body)
        for attempt in itertools.count():
            request = self._request(self.client, path, content)
            try:
                with _mapped_errors(base_url=self.base_url):
                    response = self.client.send(request, stream=stream)
                    if self._observe is not None:
                        self._observe(response.status_code, response.headers)
                    if response.is_error:
                        response.read()
                    return _answer(response, stream)
            except AfarensisError as error:
                time.sleep(self._retry_delay(attempt, error))

    async def apost(self, path: str, body: Any, *, stream: bool = False) -> Any:
        """Async :meth:`post`."""
        content = _encode(body)
        client = await self.async_client()
        for attempt in itertools.count():
            request = self._request(client, path, content)
            try:
                with _mapped_errors(base_url=self.base_url):
                    response = await client.send(request, stream=stream)
                    if self._observe is not None:
                        self._observe(response.status_code, response.headers)
                    if response.is_error:
                        await response.aread()
                    return _answer(response, stream)
            except AfarensisError as error:
                await asyncio.sleep(self._retry_delay(attempt, error))

    # -- SSE: errors while reading are not retried, chunks were already yielded ---------------

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield each ``data:`` event of the SSE answer, parsed."""
        response: httpx2.Response = self.post(path, body, stream=True)
        try:
            with _mapped_errors(response):
                for event in httpx2.EventSource(response):
                    if (data := _event_data(event, response)) is None:
                        return
                    yield data
            raise _cut_short(response)
        finally:
            response.close()

    async def astream(self, path: str, body: Any) -> AsyncIterator[dict[str, Any]]:
        """Async :meth:`stream`."""
        response: httpx2.Response = await self.apost(path, body, stream=True)
        try:
            with _mapped_errors(response):
                async for event in httpx2.EventSource(response):
                    if (data := _event_data(event, response)) is None:
                        return
                    yield data
            raise _cut_short(response)
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


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _sent_key(response: httpx2.Response) -> str | None:
    """The key the request of ``response`` carried (what a server could echo back)."""
    authorization = response.request.headers.get("authorization", "")
    return authorization.removeprefix("Bearer ") or None


def _answer(response: httpx2.Response, stream: bool) -> Any:
    """The parsed JSON answer, or with ``stream`` the open response; an error status raises."""
    if response.is_error:
        secret = _sent_key(response)
        raise _status_error(response.status_code, response.content, response.headers, secret)
    if stream:
        return response
    try:
        return response.json()
    except ValueError as exc:
        msg = f"The API answered {response.status_code} with a body that is not JSON."
        raise APIConnectionError(msg, request_id=request_id(response.headers)) from exc


def _event_data(event: httpx2.ServerSentEvent, response: httpx2.Response) -> dict[str, Any] | None:
    """The parsed ``data:`` of an event, or None at ``[DONE]``; an error event raises."""
    secret = _sent_key(response)
    if event.data.strip() == "[DONE]":
        return None
    try:
        data = json.loads(event.data)
    except ValueError as exc:
        shown = mask(event.data, secret)[:200]
        msg = f"The stream carried an event that is not JSON: {shown!r}"
        raise APIConnectionError(msg, request_id=request_id(response.headers)) from exc
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise _status_error(500, event.data.encode(), response.headers, secret)
    return data  # type: ignore[no-any-return]


def _cut_short(response: httpx2.Response) -> APIConnectionError:
    msg = "The stream ended before [DONE]: the connection was cut mid-answer."
    return APIConnectionError(msg, request_id=request_id(response.headers))
