"""Image URLs downloaded by the server, bounded in number, bytes and time.

httpx2, async, redirects followed, through ``image_transport`` when one is given; errors say
what happened (the HTTP status, the connection error). A download takes one of
:data:`~.settings.MAX_DOWNLOADS` slots, reserves the bytes it may read (its declared length, else
20 MB) from :data:`~.settings.DOWNLOAD_MEMORY`, reads at most 20 MB (more is
``image_too_large``) and has one deadline (``fetch_timeout``) for all of it, redirects included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypeAlias

import anyio
import httpx2

from langchain_afarensis_vision import _sources
from langchain_afarensis_vision._contract import MAX_IMAGE_BYTES
from langchain_afarensis_vision.server._errors import image_error, unreachable
from langchain_afarensis_vision.server._images import ImageRef
from langchain_afarensis_vision.server._work import Work

Fetch: TypeAlias = Callable[[ImageRef], Awaitable[bytes]]
_USER_AGENT: Final = "langchain-afarensis-vision-local-server"


class Downloader:
    """Downloads the image URLs of requests under the server's bounds."""

    def __init__(
        self,
        work: Work,
        timeout: float,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.work = work
        self.timeout = timeout
        self.transport = transport

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Fetch]:
        """A fetcher for one request's URLs (one connection pool for them all)."""
        async with httpx2.AsyncClient(
            timeout=self.timeout,
            follow_redirects=True,
            headers={"user-agent": _USER_AGENT},
            transport=self.transport,
        ) as client:

            async def fetch(ref: ImageRef) -> bytes:
                return await self._fetch_open(client, ref)

            yield fetch

    async def _fetch_open(self, client: httpx2.AsyncClient, ref: ImageRef) -> bytes:
        shown = _shown(ref)
        try:
            async with self.work.download_slot():
                with anyio.fail_after(self.timeout):
                    return await self._stream(client, ref)
        except TimeoutError:
            message = f"Timed out after {self.timeout:g}s downloading {shown}."
            raise unreachable(message, ref.param) from None
        except httpx2.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            message = f"Could not download the image at {shown}: {reason}"
            raise unreachable(message, ref.param) from None

    async def _stream(self, client: httpx2.AsyncClient, ref: ImageRef) -> bytes:
        async with client.stream("GET", ref.url) as response:
            if response.status_code >= 400:
                message = (
                    f"Downloading the image at {_shown(ref)} answered HTTP {response.status_code}."
                )
                raise unreachable(message, ref.param)
            declared = response.headers.get("content-length", "")
            if declared.isdigit():
                _check_size(int(declared), ref)
            limit = int(declared) if declared.isdigit() else MAX_IMAGE_BYTES
            async with self.work.downloads.areserve(max(1, limit)):
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    _check_size(len(data), ref)
                return bytes(data)


def _check_size(size: int, ref: ImageRef) -> None:
    if size > MAX_IMAGE_BYTES:
        message = f"The image at {_shown(ref)} is larger than {MAX_IMAGE_BYTES:,} bytes."
        raise image_error(_sources.too_large(message), ref.param, prefix=False)


def _shown(ref: ImageRef) -> str:
    return ref.url if len(ref.url) <= 200 else ref.url[:197] + "..."
