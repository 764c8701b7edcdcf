"""Every answer's ``x-request-id``, and one log line per request.

:class:`RequestLog` is the outermost middleware: each answer, errors and injected faults
included, carries an ``x-request-id: req_<32 hex>`` header (the openai SDK reads it into
``_request_id``; ``ChatAfarensis`` puts it into its errors), and each request is logged at INFO
on the ``langchain_afarensis_vision.server`` logger once it is answered::

    POST /v1/chat/completions 200 41.2 ms model=gpt-4-vision-preview images=1 tokens=262 id=req_...

The line holds the method, path, status, time, and what the route noted with :func:`note` (the
model, the image count, the tokens billed), written as the answer's last bytes go out (so it
is there once a client has the answer): never a header (so never the key), a query string,
or any part of a body (so never image data).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_afarensis_vision._api.contract import REQUEST_ID_HEADER

LOGGER: Final = logging.getLogger("langchain_afarensis_vision.server")
_HEADER: Final = REQUEST_ID_HEADER.encode()
_NOTES: Final = "afarensis_log"
_SHOWN: Final = ("model", "images", "tokens")


def new_request_id() -> str:
    """A fresh request id, ``req_`` and 32 hex digits."""
    return f"req_{secrets.token_hex(16)}"


def note(request: Request, **facts: object) -> None:
    """Add ``facts`` (``model``, ``images``, ``tokens``) to the request's log line."""
    notes: dict[str, object] | None = request.scope.get("state", {}).get(_NOTES)
    if notes is not None:
        notes.update(facts)


class RequestLog:
    """ASGI middleware: an ``x-request-id`` on every answer, and its log line.

    ``unexpected`` answers an exception the app let out (so that answer gets an id too).
    """

    def __init__(
        self, app: ASGIApp, unexpected: Callable[[Request, Exception], Awaitable[Response]]
    ) -> None:
        self.app = app
        self.unexpected = unexpected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: HTTP requests get an id and a log line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        notes: dict[str, object] = {}
        scope.setdefault("state", {})[_NOTES] = notes
        status = 0
        logged = False
        began = time.perf_counter()

        def log(complete: bool) -> None:
            nonlocal logged
            if not logged:
                logged = True
                seconds = time.perf_counter() - began
                LOGGER.info(_line(scope, status, complete, seconds, notes, request_id))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # before the client has it all: its line is there once it has the answer
                log(complete=True)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status or isinstance(exc, ConnectionError):  # begun, or a dropped connection
                raise
            response = await self.unexpected(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            # no answer, or not all of it: the client left, or the connection dropped
            log(complete=False)


def _line(
    scope: Scope,
    status: int,
    complete: bool,
    seconds: float,
    notes: dict[str, Any],
    request_id: str,
) -> str:
    # No answer (the client left, the connection was dropped), or an answer cut short.
    shown = f"{status or '-'}{'' if complete else ' (incomplete)'}"
    facts = "".join(f" {name}={notes[name]}" for name in _SHOWN if name in notes)
    return (
        f"{scope['method']} {scope['path']} {shown} {seconds * 1000:.1f} ms{facts} id={request_id}"
    )
