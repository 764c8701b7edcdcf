"""Image URLs downloaded by the server: bounded in number, bytes and time; checked if exposed.

Two ways, chosen by ``ServerSettings.url_policy``:

* ``None`` (a server on loopback, serving its own machine: the default): httpx2, async, any
  address, redirects followed, through ``image_transport`` when one is given. Errors say what
  happened (the HTTP status, the connection error).
* a :class:`~langchain_afarensis_vision._sources.urls.UrlPolicy` (what ``LocalAfarensisServer`` uses
  when bound beyond loopback, unless ``allow_private_urls``): the ``describe_image`` tool's own
  fetcher, :func:`~langchain_afarensis_vision._sources.urls.download`, in a worker thread: every
  address a host resolves to must be public, the connection goes to the checked address, each
  redirect is checked again. Errors say only that the URL was refused or is unreachable, never
  what the server found behind it.

Either way a download takes one of :data:`~.settings.MAX_DOWNLOADS` slots, reserves the bytes it
may read from :data:`~.settings.DOWNLOAD_MEMORY`, reads at most 20 MB (more is
``image_too_large``) and has one deadline (``fetch_timeout``) for all of it, redirects included.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypeAlias

import anyio
import httpx2

from langchain_afarensis_vision._api.contract import MAX_IMAGE_BYTES
from langchain_afarensis_vision._sources import read
from langchain_afarensis_vision._sources import urls as _safety
from langchain_afarensis_vision.server._errors import image_error, unreachable
from langchain_afarensis_vision.server._images import ImageRef
from langchain_afarensis_vision.server._work import Work

Fetch: TypeAlias = Callable[[ImageRef], Awaitable[bytes]]
_USER_AGENT: Final = "langchain-afarensis-vision-local-server"


class Downloader:
    """Downloads the image URLs of requests under the server's bounds (and policy, if any)."""

    def __init__(
        self,
        work: Work,
        timeout: float,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: _safety.UrlPolicy | None = None,
    ) -> None:
        self.work = work
        self.timeout = timeout
        self.transport = transport
        self.policy = policy

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Fetch]:
        """A fetcher for one request's URLs (one connection pool for them all)."""
        if self.policy is not None:
            yield self._fetch_checked
            return
        async with httpx2.AsyncClient(
            timeout=self.timeout,
            follow_redirects=True,
            headers={"user-agent": _USER_AGENT},
            transport=self.transport,
        ) as client:
            yield functools.partial(self._fetch_open, client)

    async def _fetch_checked(self, ref: ImageRef) -> bytes:
        policy = self.policy
        assert policy is not None
        async with self.work.downloads.areserve(MAX_IMAGE_BYTES):
            try:
                # One byte past the cap: a larger image is cut there, and refused below.
                download = functools.partial(_safety.download, prefix=MAX_IMAGE_BYTES + 1)
                data = await self.work.download(download, ref.url, policy)
            except _safety.ImageRefused:
                message = f"The image at {_shown(ref)} is refused or unreachable."
                raise unreachable(message, ref.param) from None
        _check_size(len(data), ref)
        return data

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
            limit = int(declared) if declared.isdigit() else MAX_IMAGE_BYTES
            _check_size(limit, ref)  # the declared size (the cap itself passes)
            async with self.work.downloads.areserve(max(1, limit)):
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    _check_size(len(data), ref)
                return bytes(data)


def _check_size(size: int, ref: ImageRef) -> None:
    if size > MAX_IMAGE_BYTES:
        message = f"The image at {_shown(ref)} is larger than {MAX_IMAGE_BYTES:,} bytes."
        raise image_error(read.too_large(message), ref.param, prefix=False)


def _shown(ref: ImageRef) -> str:
    return ref.url if len(ref.url) <= 200 else ref.url[:197] + "..."
