"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on each request's headers.

uvicorn closes keep-alive connections that stay idle, but sets no deadline on a request that is
arriving: a client that sends a byte a second holds its connection for ever (uvicorn issue
157). With :func:`with_header_deadline`, a request's headers must be complete ``read_timeout``
seconds after its first byte (or after the connection opened), else the connection is closed
(no answer can be framed for a request that never arrived). The body has its own deadline once
the app reads it (:mod:`._receive`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from langchain_afarensis_vision.server._access import LOGGER
from langchain_afarensis_vision.server.settings import READ_TIMEOUT


class HeaderDeadline(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request headers are late."""

    read_timeout: float = READ_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # between requests: a new one starts
            self._arm()
        super().data_received(data)
        if self.cycle is not cycle:  # its headers are in
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            LOGGER.info(
                "closed a connection whose request headers took over %g s", self.read_timeout
            )
            self.transport.close()


def with_header_deadline(read_timeout: float) -> type[HeaderDeadline]:
    """The protocol class for uvicorn's ``http=``, with ``read_timeout`` seconds for headers."""
    attributes: dict[str, Any] = {"read_timeout": read_timeout}
    return type("HeaderDeadline", (HeaderDeadline,), attributes)
