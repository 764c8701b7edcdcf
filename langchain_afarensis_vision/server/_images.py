"""The images of a request: read (inline or downloaded), checked by the API's rules, and priced.

``data:`` URLs carry the bytes inline. ``http``/``https`` URLs are downloaded by the server
itself with httpx2 (10 s for the whole download, redirects followed, at most 20 MB read: the
download stops at the cap); any failure is a 400 ``image_url_unreachable``. Any other scheme
is refused with a 400 ``invalid_value`` naming the URL's field. Each image is then checked by
:func:`inspect_image`: the API's own rules from ``_contract``, on an image opened by the same
``_sources`` opener the client uses, so a refusal carries the API's own code
(``invalid_image_format``, ``image_too_large``, ``animated_gif_not_supported``,
``invalid_image``), and priced with :func:`~langchain_afarensis_vision._contract.
estimate_image_tokens` at its own detail.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
import httpx2

from langchain_afarensis_vision import _sources
from langchain_afarensis_vision._cache import LRU
from langchain_afarensis_vision._contract import (
    ACCEPTED_FORMATS_TEXT,
    API_FORMATS,
    MAX_IMAGE_BYTES,
    URL_SCHEMES,
    Detail,
    ErrorCode,
    effective_size,
    estimate_image_tokens,
    is_data_url,
    url_scheme,
)
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.server._errors import image_error, invalid_value
from langchain_afarensis_vision.server._errors import unreachable as _unreachable

INLINE_WORK_BYTES: Final = 256 * 1024
"""Images up to this size are checked on the event loop; larger ones in a worker thread."""
_MAX_DATA_URL_CHARS: Final = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
_USER_AGENT: Final = "langchain-afarensis-vision-local-server"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`inspect_image` learned: the MIME type, oriented size, frames, orientation."""

    mime_type: str
    width: int
    height: int
    frames: int
    orientation: int


def inspect_image(data: bytes) -> ImageInfo:
    """Check ``data`` by the API's own rules, converting nothing: what the API would refuse.

    Unlike the client's ``prepare_image``, TIFF or BMP are refused (``invalid_image_format``),
    as are animated images (``animated_gif_not_supported``) and anything over 20 MB
    (``image_too_large``). The whole image is decoded (JPEG at 1/8 scale) to find broken data.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _sources.too_large(f"image is {len(data):,} bytes; the API takes at most 20 MB")
    with _sources.mapped_errors():
        image = _sources.open_image(bytes(data))
        mime = API_FORMATS.get(image.format or "")
        if mime is None:
            msg = f"{image.format} images are not accepted: send {ACCEPTED_FORMATS_TEXT}"
            raise InvalidImageError(msg, code=ErrorCode.INVALID_IMAGE_FORMAT)
        _sources.check_frames(image, first_frame=False)
        jpeg = mime == API_FORMATS["JPEG"]
        _sources.check_pixels(image.size, 64 if jpeg else 1)
        orientation = _sources.orientation(image)
        size = _sources.oriented(image.size, orientation)
        if jpeg:
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        return ImageInfo(mime, *size, getattr(image, "n_frames", 1), orientation)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image part of the request: its URL, detail, and its field's path for errors."""

    url: str
    detail: Detail
    param: str


@dataclass(frozen=True, slots=True, repr=False)
class SeenImage:
    """An accepted image: its bytes, what :func:`inspect_image` found, and what it costs."""

    data: bytes
    digest: bytes
    info: ImageInfo
    detail: Detail
    tokens: int
    inline: bool

    @property
    def effective_size(self) -> tuple[int, int]:
        """The size the model sees at this image's detail."""
        return effective_size(self.info.width, self.info.height, self.detail)

    def __repr__(self) -> str:
        info = self.info
        return f"SeenImage({info.mime_type} {info.width}x{info.height}, {self.tokens} tokens)"


async def read_images(
    refs: Sequence[ImageRef],
    timeout: float,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> list[SeenImage]:
    """Read, check and price every image, in order; the first refusal raises an APIError.

    ``transport`` (default: the network) is where image URLs are fetched from.
    """
    if not refs:
        return []
    remote = [ref for ref in refs if not is_data_url(ref.url)]
    downloads: dict[str, bytes] = {}
    if remote:
        async with httpx2.AsyncClient(
            timeout=timeout,
            follow_redirects=True,
            headers={"user-agent": _USER_AGENT},
            transport=transport,
        ) as client:
            fetched = await asyncio.gather(*(_fetch(client, ref, timeout) for ref in remote))
        downloads = {ref.param: data for ref, data in zip(remote, fetched, strict=True)}
    seen = []
    for ref in refs:
        size = len(downloads[ref.param]) if ref.param in downloads else len(ref.url) * 3 // 4
        if size > INLINE_WORK_BYTES:
            seen.append(await anyio.to_thread.run_sync(_read, ref, downloads.get(ref.param)))
        else:
            seen.append(_read(ref, downloads.get(ref.param)))
    return seen


def _read(ref: ImageRef, downloaded: bytes | None) -> SeenImage:
    """Decode (if inline), check and price one image."""
    if downloaded is None:
        return _see(_decode(ref), ref, inline=True)
    return _see(downloaded, ref, inline=False)


def _decode(ref: ImageRef) -> bytes:
    if len(ref.url) > _MAX_DATA_URL_CHARS:
        error = _sources.too_large(f"the data URL holds more than {MAX_IMAGE_BYTES:,} bytes")
        raise image_error(error, ref.param)
    try:
        return _sources.decode_data_url(ref.url)
    except InvalidImageError as exc:
        raise image_error(exc, ref.param) from None


def _see(data: bytes, ref: ImageRef, inline: bool) -> SeenImage:
    digest = hashlib.blake2b(data, digest_size=16).digest()
    try:
        info = _inspect(digest, data)
    except InvalidImageError as exc:
        raise image_error(exc, ref.param) from None
    tokens = estimate_image_tokens(info.width, info.height, ref.detail)
    return SeenImage(data, digest, info, ref.detail, tokens, inline)


_infos: LRU[bytes, ImageInfo] = LRU(1024)


def _inspect(digest: bytes, data: bytes) -> ImageInfo:
    """:func:`inspect_image`, remembered by content digest (refusals are not remembered)."""
    return _infos.get_or_make(digest, lambda: inspect_image(data))


def check_scheme(url: str, param: str) -> None:
    """Refuse an image URL whose scheme the API does not fetch (400 ``invalid_value``)."""
    if url_scheme(url) not in URL_SCHEMES:
        shown = url if len(url) <= 80 else url[:77] + "..."
        message = (
            f"Unsupported image URL {shown!r}: the API takes https:// or http:// links "
            "and data:image/<format>;base64,... URLs."
        )
        raise invalid_value(message, f"{param}.url")


async def _fetch(client: httpx2.AsyncClient, ref: ImageRef, timeout: float) -> bytes:
    """Download an image URL, at most :data:`MAX_IMAGE_BYTES` read; errors become 400s."""
    shown = ref.url if len(ref.url) <= 200 else ref.url[:197] + "..."
    try:
        with anyio.fail_after(timeout):
            return await _download(client, ref, shown)
    except TimeoutError:
        raise _unreachable(
            f"Timed out after {timeout:g}s downloading {shown}.", ref.param
        ) from None
    except httpx2.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        message = f"Could not download the image at {shown}: {reason}"
        raise _unreachable(message, ref.param) from None


async def _download(client: httpx2.AsyncClient, ref: ImageRef, shown: str) -> bytes:
    async with client.stream("GET", ref.url) as response:
        if response.status_code >= 400:
            message = f"Downloading the image at {shown} answered HTTP {response.status_code}."
            raise _unreachable(message, ref.param)
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > MAX_IMAGE_BYTES:
                message = f"The image at {shown} is larger than {MAX_IMAGE_BYTES:,} bytes."
                raise image_error(_sources.too_large(message), ref.param, prefix=False)
        return bytes(data)
