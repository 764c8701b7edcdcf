"""The API's rules for one image: read from its header first, then decoded; and its price.

:func:`read_header` refuses what needs no pixel: over 20 MB, a format the API does not accept
(Pillow is only allowed the API's own openers, so an ICO, a TIFF or a BMP is never parsed) or an
animation; and it estimates from the header what decoding will really allocate (libjpeg's
coefficient buffers, a palette expanded to RGBA...). Like the API, it accepts every other image,
however large: one whose decode would take more than the server's whole image memory is
answered from its header alone (format, size, token cost), its pixels not examined
(``ImageInfo.examined``; a WEBP's canvas is read before Pillow opens it: libwebp allocates it
then). :func:`decode_image` then decodes an examined image (a JPEG at 1/8 scale) to find broken
data. :func:`inspect_image` does both. Refusals carry the API's own codes
(``invalid_image_format``, ``image_too_large``, ``animated_gif_not_supported``,
``invalid_image``); an accepted image is priced with
:func:`~langchain_afarensis_vision._api.contract.estimate_image_tokens` at its detail.
:func:`head` and :func:`decode` are the same two steps for a request's image (errors naming its
field, accepted images remembered by content digest); :mod:`._reading` runs them. Image URLs
must be ``http``, ``https`` or ``data`` (:func:`check_scheme`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Final

from PIL import Image

from langchain_afarensis_vision._api.contract import (
    ACCEPTED_FORMATS_TEXT,
    API_FORMATS,
    MAX_IMAGE_BYTES,
    URL_SCHEMES,
    Detail,
    ErrorCode,
    effective_size,
    estimate_image_tokens,
    url_scheme,
)
from langchain_afarensis_vision._sources import opening, read
from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.declared import webp_animated, webp_canvas
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.server._analysis import SAMPLE_SIDE, measure_decoded
from langchain_afarensis_vision.server._errors import image_error, invalid_value
from langchain_afarensis_vision.server.settings import IMAGE_MEMORY

_MAX_DATA_URL_CHARS: Final = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
_WHOLE_COPIES: Final = 3  # OCR holds the decode, an upright copy and an RGB copy at full size
_JPEG_PIXELS: Final = 4  # a JPEG decodes at 1/8 scale, but libjpeg still reads every block


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`inspect_image` learned: the MIME type, oriented size, frames, orientation.

    ``examined`` is False for an image too large to decode within the server's image memory:
    what is known of it comes from its header alone.
    """

    mime_type: str
    width: int
    height: int
    frames: int
    orientation: int
    examined: bool = True


@dataclass(frozen=True, slots=True)
class Header:
    """What an image's header declares, and what decoding it takes.

    Bytes estimated from the header (``opening.working_bytes``): the check (``decoded``, a
    JPEG at 1/8 scale), the colours (``work``, a JPEG drafted to the sample's size) and OCR
    (``whole``, at full size).
    """

    info: ImageInfo
    decoded: int = 0
    work: int = 0
    whole: int = 0


def read_header(data: bytes, limit: int = IMAGE_MEMORY) -> Header:
    """Check what the API refuses that needs no pixel decoded; what decoding will take.

    Size, format (only the API's are opened), animation; an image whose check or colours would
    take more than ``limit`` bytes (a WEBP of that size is not even opened), or that has more
    than ``opening.MAX_PIXELS`` pixels (4 times that for a JPEG), is not examined.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise read.too_large(f"image is {len(data):,} bytes; the API takes at most 20 MB")
    canvas = webp_canvas(data)  # libwebp allocates it when Pillow opens the file
    if canvas is not None and opening.webp_bytes(canvas) > limit:
        if webp_animated(data):
            message = "animated WEBP images are not supported"
            raise InvalidImageError(message, code=ErrorCode.ANIMATED_GIF_NOT_SUPPORTED)
        return Header(ImageInfo(API_FORMATS["WEBP"], *canvas, 1, 1, examined=False))
    with opening.mapped_errors(), _opened(data) as image:
        mime = API_FORMATS[str(image.format)]
        _check_still(image)
        jpeg = mime == API_FORMATS["JPEG"]
        decoded = opening.working_bytes(image, _draft_target(image) if jpeg else None)
        work = opening.working_bytes(image, (SAMPLE_SIDE, SAMPLE_SIDE))
        whole = _WHOLE_COPIES * opening.working_bytes(image)
        orientation = opening.orientation(image)
        size = opening.oriented(image.size, orientation)
        pixels = opening.MAX_PIXELS * (_JPEG_PIXELS if jpeg else 1)
        examined = max(decoded, work) <= limit and image.width * image.height <= pixels
        info = ImageInfo(mime, *size, getattr(image, "n_frames", 1), orientation, examined)
    return Header(info, decoded, work, whole)


def _check_still(image: Image.Image) -> None:
    """Refuse an animation with the API's words (the client's refusal adds its own hint)."""
    try:
        opening.check_frames(image, first_frame=False)
    except InvalidImageError as refused:
        message = f"animated {image.format} images are not supported"
        raise InvalidImageError(message, code=refused.code) from None


def decode_image(data: bytes, digest: bytes | None = None) -> None:
    """Decode an image :func:`read_header` accepted (a JPEG at 1/8 scale) to find broken data.

    With its ``digest``, an image decoded whole (not a JPEG) is measured for the answer at once
    (:func:`._analysis.measure_decoded`): the colours need no second decode.
    """
    with opening.mapped_errors(), _opened(data) as image:
        jpeg = API_FORMATS[str(image.format)] == API_FORMATS["JPEG"]
        if jpeg:
            image.draft(image.mode, _draft_target(image))
        image.load()
        if digest is not None and not jpeg:
            measure_decoded(image, digest)


def inspect_image(data: bytes, limit: int = IMAGE_MEMORY) -> ImageInfo:
    """Check ``data`` by the API's own rules, converting nothing: what the API would refuse.

    Unlike the client's ``prepare_image``, TIFF, BMP or ICO are refused
    (``invalid_image_format``) before Pillow parses them, as are animated images
    (``animated_gif_not_supported``) and anything over 20 MB (``image_too_large``). Then the
    whole image is decoded (JPEG at 1/8 scale) to find broken data, unless that would take
    more than ``limit`` bytes: then it is described from its header (``examined`` False).
    """
    header = read_header(data, limit)
    if header.info.examined:
        decode_image(data)
    return header.info


@functools.cache
def _api_openers() -> tuple[str, ...]:
    """The Pillow openers of the API's formats: an ICO or a TIFF is never parsed here.

    (An MPO comes through the JPEG opener.)
    """
    return tuple(name for name in opening.allowed_formats() if name in API_FORMATS)


def _opened(data: bytes) -> Image.Image:
    try:
        return opening.open_image(bytes(data), formats=_api_openers())
    except InvalidImageError as exc:
        if exc.code != ErrorCode.INVALID_IMAGE_FORMAT:
            raise
        msg = f"image data is not an image the API accepts: send {ACCEPTED_FORMATS_TEXT}"
        raise InvalidImageError(msg, code=ErrorCode.INVALID_IMAGE_FORMAT) from None


def _draft_target(image: Image.Image) -> tuple[int, int]:
    return max(1, image.width // 8), max(1, image.height // 8)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image part of the request: its URL, detail, and its field's path for errors."""

    url: str
    detail: Detail
    param: str


@dataclass(frozen=True, slots=True, repr=False)
class SeenImage:
    """An accepted image: its bytes, its :class:`Header`, and what it costs.

    The header says what it declares and what decoding it takes.
    """

    data: bytes
    digest: bytes
    header: Header
    detail: Detail
    tokens: int
    inline: bool

    @property
    def info(self) -> ImageInfo:
        """What its header declares (and whether its pixels are examined)."""
        return self.header.info

    @property
    def effective_size(self) -> tuple[int, int]:
        """The size the model sees at this image's detail."""
        return effective_size(self.info.width, self.info.height, self.detail)

    def __repr__(self) -> str:
        info = self.info
        return f"SeenImage({info.mime_type} {info.width}x{info.height}, {self.tokens} tokens)"


@dataclass(frozen=True, slots=True, repr=False)
class HeadedImage:
    """An image read up to its header: priced and checked, not decoded yet.

    ``known``: the same bytes were accepted before, and need no decode.
    """

    ref: ImageRef
    seen: SeenImage
    known: bool


def inline_bytes(ref: ImageRef) -> bytes:
    """The bytes of an inline (``data:``) image; a 400 for bad base64 or over 20 MB."""
    if len(ref.url) > _MAX_DATA_URL_CHARS:
        error = read.too_large(f"the data URL holds more than {MAX_IMAGE_BYTES:,} bytes")
        raise image_error(error, ref.param)
    try:
        return read.decode_data_url(ref.url)
    except InvalidImageError as exc:
        raise image_error(exc, ref.param) from None


def head(ref: ImageRef, data: bytes, inline: bool, limit: int = IMAGE_MEMORY) -> HeadedImage:
    """Read an image's header and price it: refusals that need no decode are raised here.

    ``limit`` is the server's image memory: an image whose decode would take more is not
    examined.
    """
    digest = hashlib.blake2b(data, digest_size=16).digest()
    header = _accepted.get((digest, limit))
    known = header is not None
    if header is None:
        try:
            header = read_header(data, limit)
        except InvalidImageError as exc:
            raise image_error(exc, ref.param) from None
    info = header.info
    tokens = estimate_image_tokens(info.width, info.height, ref.detail)
    return HeadedImage(ref, SeenImage(data, digest, header, ref.detail, tokens, inline), known)


def decode(image: HeadedImage, limit: int = IMAGE_MEMORY) -> SeenImage:
    """Decode a headed image to find broken data; remember it once accepted.

    Not when it is known, or not examined (too large for the server's image memory).
    """
    seen = image.seen
    if not image.known and seen.info.examined:
        try:
            decode_image(seen.data, seen.digest)
        except InvalidImageError as exc:
            raise image_error(exc, image.ref.param) from None
        _accepted.put((seen.digest, limit), seen.header)
    return seen


def least_tokens(detail: Detail) -> int:
    """The fewest tokens an image can cost at ``detail`` (what an unread URL image counts)."""
    return estimate_image_tokens(1, 1, detail)


_accepted: LRU[tuple[bytes, int], Header] = LRU(1024)
"""Headers of accepted, decoded images, by content digest and image memory (refusals and
images not examined are not remembered)."""


def check_scheme(url: str, param: str) -> None:
    """Refuse an image URL whose scheme the API does not fetch (400 ``invalid_value``)."""
    if url_scheme(url) not in URL_SCHEMES:
        shown = url if len(url) <= 80 else url[:77] + "..."
        message = (
            f"Unsupported image URL {shown!r}: the API takes https:// or http:// links "
            "and data:image/<format>;base64,... URLs."
        )
        raise invalid_value(message, f"{param}.url")
