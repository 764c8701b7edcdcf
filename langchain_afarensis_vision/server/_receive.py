"""A request body taken off the wire within bounds: its memory reserved, a deadline, a cap.

Before a byte of a body is read, :data:`~.settings.BODY_COPIES` times its declared length is
reserved from the body budget that all requests share (:attr:`~._work.Work.bodies`); a chunked
body reserves a first step, then more as it grows. While the budget is spent the request waits
(the client's upload waits with it, unread) for at most ``body_wait`` seconds, then gets a 503
``server_error`` with ``Retry-After``. The reservation is held until the request is answered.

Once reading starts, the body must arrive within ``read_timeout`` seconds (else a 400), and hold
at most ``max_body_bytes`` (else a 400, refused at once when a ``content-length`` says so). These
two answers close the connection: the rest of the body is never read. So does any other answer
given before the body was read, unless the body's declared length is within the cap: uvicorn
then reads the rest and drops it (bounded, and the client, still sending, gets to read the
answer), and the connection is kept.
"""

from __future__ import annotations

import contextlib
from typing import Final

import anyio
from starlette.requests import Request

from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision.server._errors import APIError, invalid_value, server_error
from langchain_afarensis_vision.server.limits import retry_headers
from langchain_afarensis_vision.server.settings import BODY_COPIES, ServerSettings

FIRST_STEP: Final = 1024 * 1024
"""What a chunked body (no ``content-length``) reserves first; it doubles as the body grows."""
CLOSE: Final = {"connection": "close"}
"""The header of an answer given before its request's body was read to the end."""


async def receive_body(
    request: Request,
    settings: ServerSettings,
    budget: MemoryBudget,
    held: contextlib.AsyncExitStack,
) -> tuple[bytearray, int]:
    """The body of ``request``, and its commas (about its JSON values, counted as it comes).

    Its memory stays reserved from ``budget`` until ``held`` closes.

    Raises:
        APIError: 400 over the cap or too slow (with ``connection: close``), 503 when body
            memory stays spent.
    """
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    if size is not None and size > limit:
        raise _too_large(limit)
    reserved = 0

    async def reserve(upto: int) -> None:
        nonlocal reserved
        try:
            with anyio.fail_after(settings.body_wait):
                await held.enter_async_context(budget.areserve(BODY_COPIES * (upto - reserved)))
        except TimeoutError:
            raise _busy(budget.limit, settings.body_wait) from None
        reserved = upto

    await reserve(size if size is not None else min(limit, FIRST_STEP))
    body, commas = bytearray(), 0
    try:
        with anyio.fail_after(settings.read_timeout):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:
                    raise _too_large(limit)
                if len(body) + len(chunk) > reserved:
                    await reserve(min(limit, max(len(body) + len(chunk), 2 * reserved)))
                body += chunk
                commas += chunk.count(b",")
    except TimeoutError:
        msg = (
            f"The request body did not arrive within {settings.read_timeout:g} s "
            f"({len(body):,} bytes came). Send it at once, or from a faster connection."
        )
        raise _closing(invalid_value(msg)) from None
    request.state.body_read = True
    return body, commas


def must_close(request: Request, settings: ServerSettings) -> bool:
    """Whether the answer to ``request`` closes the connection.

    So it does when the body was not read to its end and is chunked or declared over the cap:
    dropping the rest of it could never end.
    """
    if getattr(request.state, "body_read", False):
        return False
    declared = request.headers.get("content-length", "")
    return not declared.isdigit() or int(declared) > settings.max_body_bytes


def _too_large(limit: int) -> APIError:
    return _closing(invalid_value(f"The request body is larger than {limit:,} bytes."))


def _busy(limit: int, waited: float) -> APIError:
    message = (
        f"The local server holds as many request bodies as its memory for them allows "
        f"({limit:,} bytes), and none was answered in {waited:g} s. Retry in a moment."
    )
    error = server_error(503, message)
    error.headers |= retry_headers(1)
    return error


def _closing(error: APIError) -> APIError:
    error.headers |= CLOSE
    return error
