"""Turn any image into one the Afarensis Vision API accepts, at the size the model sees.

The API scales every image down to its *effective size* (:func:`~._api.contract.effective_size`)
before the model looks at it, and bills it by that size. Resizing to exactly that size on the
client therefore changes neither what the model sees nor what it costs, and sends far fewer
bytes: a 5 MB 12 MP camera photo becomes a ~150 kB 1024 x 768 JPEG. On the way,
:func:`prepare_image` refuses what the API would refuse (with the API's own error codes),
converts what it does not accept (TIFF, BMP, ICO, AVIF, HEIC, CMYK, 16-bit, ...), applies the
EXIF orientation (the model is weak on rotated images) and drops EXIF metadata such as GPS tags
from everything it re-encodes. Small images already in an accepted format go out byte for byte.

Sources are read and opened by :mod:`._sources` (size caps, the format allow-list, header
checks before any decode); this module decides what happens after that (sent as it is, or
oriented, converted, resized and encoded by :mod:`._pixels` with Pillow's own ``draft``,
``resize`` and ``save``), one image per call on the calling thread. Speed for many images comes from
preparing many at once (the loader, the batch job), never from splitting one image over threads.

A :class:`PreparedImage` goes into a message as :meth:`PreparedImage.content_block`: a block
sealed by this process, which the message mapper sends as it is, never preparing it again.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from PIL import Image

from langchain_afarensis_vision._api.contract import (
    API_FORMATS,
    MAX_IMAGE_BYTES,
    Detail,
    ErrorCode,
    effective_size,
    estimate_image_tokens,
)
from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.declared import webp_animated, webp_canvas
from langchain_afarensis_vision._sources.opening import (
    MAX_PIXELS,
    check_frames,
    check_pixels,
    mapped_errors,
    open_image,
    orientation,
    oriented,
    webp_bytes,
    working_bytes,
)
from langchain_afarensis_vision._sources.read import ImageSource, read_source, too_large
from langchain_afarensis_vision.errors import (
    InvalidImageError,
    InvalidRequestError,
    checked_detail,
)
from langchain_afarensis_vision.images._end import image_end
from langchain_afarensis_vision.images._pixels import encode, jpeg_settings, render
from langchain_afarensis_vision.images._view import ShownInJupyter

CACHE_ENTRIES: Final = 128  # > the 94 low-detail images of an 8,000-token ImageBudgetEdit
CACHE_BYTES: Final = 64 * 1024 * 1024
BUDGET: Final = MemoryBudget(512 * 1024 * 1024)
"""Bytes in flight across every ``prepare_image`` call of the process (any thread): each call
reserves what its decode and conversions really allocate (``working_bytes``, estimated from the
header) and waits while others hold the budget, so many images at once stay bounded in memory.
An image that alone would take more than all of it is not decoded: it is sent as it is."""


FACTS: Final = (
    *("format", "source_width", "source_height", "source_bytes"),
    *("mime_type", "width", "height", "bytes", "changed", "detail", "image_tokens"),
)
"""What every surface says of an image (the tool's artifact, the loader's metadata, the CLI's
``--json``, corpus records, Ray rows), under these names: the file as read (its Pillow
``format``, upright ``source_width`` x ``source_height``, ``source_bytes``), what is sent
(``mime_type``, ``width`` x ``height``, ``bytes``, ``changed``), ``detail`` and
``image_tokens``. What is not known (a URL the API fetches, a refused image) is None."""


class UnpreparedImageWarning(UserWarning):
    """An image too large to decode within the whole budget was sent as it is.

    The API takes it and resizes it itself; the warning says what it would have taken.
    """


# The modes an accepted format is sent in untouched.
_PASSTHROUGH_MODES: Final = {
    "PNG": frozenset({"1", "L", "LA", "P", "RGB", "RGBA"}),
    "JPEG": frozenset({"L", "RGB"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "GIF": frozenset({"L", "P"}),
}
_LOSSY = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF"})
_DRAFTABLE = frozenset({"JPEG", "MPO"})  # libjpeg decodes at 1/2, 1/4 or 1/8 scale
_SEAL_KEY: Final = secrets.token_bytes(32)  # this process's: a seal proves we prepared it
_SEAL: Final = "afarensis_prepared"


@dataclass(frozen=True, slots=True, repr=False)
class PreparedImage(ShownInJupyter):
    """An image ready to send: ``data`` is exactly what goes out, in an accepted format.

    ``tokens`` is what the image costs at ``detail``; ``format`` and ``source_*`` describe the
    input (its Pillow format name, its oriented size, its length, 0 for a PIL image), and
    ``changed`` is ``False`` when ``data`` is the input itself, untouched. :meth:`facts` is the
    view every surface reports. In Jupyter it shows as what the model sees, its 512-px tiles
    drawn over it, with its sizes, bytes and tokens (:mod:`._view`).
    """

    data: bytes
    mime_type: str
    width: int
    height: int
    detail: Detail
    tokens: int
    format: str
    source_size: tuple[int, int]
    source_bytes: int
    changed: bool

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of ``data``."""
        return self.width, self.height

    def facts(self) -> dict[str, Any]:
        """This image's :data:`FACTS`: the one view of it that every surface reports."""
        w, h = self.source_size
        source = (self.format, w, h, self.source_bytes)
        sent = (self.mime_type, self.width, self.height, len(self.data), self.changed)
        return dict(zip(FACTS, (*source, *sent, self.detail, self.tokens), strict=True))

    @classmethod
    def from_facts(cls, data: bytes, facts: Mapping[str, Any]) -> PreparedImage:
        """The image again, from its ``data`` and :meth:`facts` (after a trip between processes)."""
        size = (facts["source_width"], facts["source_height"])
        sent = (facts["mime_type"], facts["width"], facts["height"], facts["detail"])
        source = (facts["image_tokens"], facts["format"], size, facts["source_bytes"])
        return cls(data, *sent, *source, facts["changed"])

    @property
    def source_format(self) -> str:
        """Deprecated (removed in the next release): :attr:`format`, the same value."""
        msg = "PreparedImage.source_format is deprecated: use PreparedImage.format"
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return self.format

    @property
    def base64(self) -> str:
        """``data`` in base64."""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        """``data:<mime>;base64,<data>``, the form the API takes inline images in."""
        return f"data:{self.mime_type};base64,{self.base64}"

    def content_block(self) -> dict[str, Any]:
        """This image as a LangChain v1 image block, for a message's ``content``.

        The block is sealed by this process, so the message mapper sends it as it is, without
        preparing it again; anywhere else (another process, a stored conversation) it is an
        ordinary base64 image block, prepared as any other.
        """
        b64 = self.base64
        seal = [self.width, self.height, _mac(self.mime_type, self.detail, self.size, b64)]
        extras = {"detail": self.detail, _SEAL: seal}
        return {"type": "image", "base64": b64, "mime_type": self.mime_type, "extras": extras}

    def __repr__(self) -> str:
        w, h = self.source_size
        origin = f"from {self.format} {w}x{h}, {self.source_bytes:,} bytes"
        if not self.changed:
            origin = f"unchanged {self.format}"
        return (
            f"PreparedImage({self.mime_type} {self.width}x{self.height}, {len(self.data):,} bytes"
            f" ({origin}), detail={self.detail!r}, tokens={self.tokens})"
        )


def unknown_facts(detail: Detail, image_tokens: int | None = None) -> dict[str, Any]:
    """The :data:`FACTS` of an image not prepared here (a URL the API fetches).

    All None but ``detail`` and, when known, ``image_tokens``.
    """
    return {**dict.fromkeys(FACTS), "detail": detail, "image_tokens": image_tokens}


def refused_facts(data: bytes, detail: Detail) -> dict[str, Any]:
    """The :data:`FACTS` known of a refused image: its length, its header's format and size.

    An animated GIF's header reads; unknown data gives only its length.
    """
    facts = unknown_facts(detail) | {"source_bytes": len(data)}
    with contextlib.suppress(InvalidRequestError), mapped_errors():
        image = open_image(data)
        width, height = oriented(image.size, orientation(image))
        facts.update(format=image.format, source_width=width, source_height=height)
    return facts


def _mac(mime_type: str, detail: str, size: tuple[int, int], b64: str) -> str:
    mac = hmac.new(_SEAL_KEY, f"{mime_type}|{detail}|{size[0]}x{size[1]}|".encode(), "sha256")
    mac.update(b64.encode("ascii"))
    return mac.hexdigest()


def unseal(block: dict[str, Any]) -> tuple[int, int] | None:
    """The size of a block that :meth:`PreparedImage.content_block` made in this process.

    None for any other block, or one changed since (its image must then be prepared).
    """
    extras = block.get("extras")
    if not isinstance(extras, dict):
        return None
    match extras.get(_SEAL), block.get("base64"), block.get("mime_type"), extras.get("detail"):
        case [int(width), int(height), str(mac)], str(b64), str(mime), str(detail):
            expected = _mac(mime, detail, (width, height), b64)
            return (width, height) if hmac.compare_digest(expected, mac) else None
    return None


def prepare_image(
    source: ImageSource, detail: Detail = "auto", *, first_frame: bool = False
) -> PreparedImage:
    """Validate, orient, resize and encode an image for the API.

    ``source`` is a path, bytes, a binary file object, a ``data:`` URL (its declared type is
    ignored: the bytes are sniffed) or a PIL image (an http(s) URL goes in a message as it is).
    A PNG, JPEG, WEBP or static GIF already within its effective size, upright and at most 20 MB
    is sent untouched, metadata included (a JPEG keeps any GPS tags); anything else is
    re-encoded without metadata at exactly its effective size: PNG if it has transparency or
    came from a lossless format, else JPEG (from a JPEG, never at a higher quality than the
    source's when that takes more bytes than the source: a resize does not grow it). Results
    for encoded inputs are kept by content (SHA-256) in a bounded cache of the
    :data:`CACHE_ENTRIES` most recent, so an agent loop that resends the same photo every turn
    prepares it once.

    Args:
        source: The image.
        detail: ``low``, ``high`` or ``auto``; sets the effective size.
        first_frame: Send the first frame of an animated GIF/WEBP/PNG instead of refusing it
            (a PIL image is seeked to its frame 0).

    Raises:
        InvalidImageError: ``invalid_image_format``, ``invalid_image`` (corrupt data, or a
            header declaring more pixels than its data can hold: ``_sources.declared``),
            ``animated_gif_not_supported`` or ``image_too_large`` (over
            :data:`~._sources.MAX_INPUT_BYTES` encoded, or too large to decode within
            :data:`BUDGET` in a format the API does not take as it is; one it takes is sent
            as it is, with an :class:`UnpreparedImageWarning`).
        InvalidRequestError: an unknown ``detail``, or an http(s) URL as ``source``.
        FileNotFoundError, TypeError: no such file; no image source (a text-mode file).
    """
    detail = checked_detail(detail)
    if isinstance(source, Image.Image):
        with mapped_errors():
            return _prepare(source, None, detail, first_frame)
    data = read_source(source)
    key = (len(data), hashlib.sha256(data).digest(), detail, first_frame)

    def make() -> PreparedImage:
        canvas = webp_canvas(data)  # libwebp allocates it as Pillow opens the file: not then
        if canvas is not None and webp_bytes(canvas) > BUDGET.limit:
            return _webp_as_it_is(data, canvas, detail)
        with mapped_errors():
            return _prepare(open_image(data), data, detail, first_frame)

    return _cache.get_or_make(key, make)


_Key: TypeAlias = tuple[int, bytes, str, bool]  # (input length, its SHA-256, detail, first_frame)
_cache: LRU[_Key, PreparedImage] = LRU(CACHE_ENTRIES, CACHE_BYTES, lambda p: len(p.data))


def clear_cache() -> None:
    """Forget every cached :class:`PreparedImage`."""
    _cache.clear()


def _prepare(
    image: Image.Image, data: bytes | None, detail: Detail, first_frame: bool
) -> PreparedImage:
    """Prepare an opened image; ``data`` is its encoded bytes, None for a caller's PIL image."""
    fmt = image.format or ("PIL" if data is None else "unknown")
    draft = data is not None and fmt in _DRAFTABLE
    pixels = MAX_PIXELS * (64 if draft else 1)
    if data is None:
        check_pixels(image.size)
    turn = orientation(image)
    size = oriented(image.size, turn)
    target = effective_size(*size, detail)
    prepared = functools.partial(
        PreparedImage,
        detail=detail,
        tokens=estimate_image_tokens(*size, detail),
        format=fmt,
        source_size=size,
        source_bytes=len(data or b""),
    )
    need = working_bytes(image, oriented(target, turn) if draft else None)
    if data is not None and (need > BUDGET.limit or image.width * image.height > pixels):
        check_frames(image, first_frame=False)  # too large to decode here: as it is, or not
        why = f"preparing it would take {need:,} bytes, over the whole {BUDGET.limit:,}-byte"
        why += " memory budget of image preparation"
        if need <= BUDGET.limit:
            why = f"it has over {pixels:,} pixels, the most decoded here"
        as_is = _unprepared_mime(str(image.format), image.size, data, why)
        return prepared(data, as_is, *image.size, changed=False)
    with BUDGET.reserve(need):  # bytes in flight, across every thread of the process
        check_frames(image, first_frame)
        if data is not None and (mime := _passthrough_mime(image, data, turn, target)):
            image.load()  # a full decode: refuse truncated data instead of sending it
            return prepared(data, mime, *target, changed=False)
        jpeg = jpeg_settings(image) if draft else None
        out = render(image, turn, target, draft=draft)
        lossy = fmt in _LOSSY
        payload, mime = encode(out, lossy, image.info.get("icc_profile"), jpeg, len(data or b""))
    return prepared(payload, mime, *out.size, changed=True)


def _webp_as_it_is(data: bytes, canvas: tuple[int, int], detail: Detail) -> PreparedImage:
    """A WEBP too large to open here (its canvas over :data:`BUDGET`), sent as it is."""
    if webp_animated(data):
        msg = "animated WEBP images are not accepted (and this one is too large to take apart)"
        raise InvalidImageError(msg, code=ErrorCode.ANIMATED_GIF_NOT_SUPPORTED)
    why = f"opening it would take {webp_bytes(canvas):,} bytes, over the whole {BUDGET.limit:,}"
    why += "-byte memory budget of image preparation"
    return PreparedImage(
        data,
        _unprepared_mime("WEBP", canvas, data, why),
        *canvas,
        detail=detail,
        tokens=estimate_image_tokens(*canvas, detail),
        format="WEBP",
        source_size=canvas,
        source_bytes=len(data),
        changed=False,
    )


def _unprepared_mime(fmt: str, size: tuple[int, int], data: bytes, why: str) -> str:
    """The MIME type to send an image too large to decode here as it is, with a warning.

    The API takes it (its format, at most 20 MB) and resizes it itself; what the API would
    refuse too is refused (``image_too_large``). ``why`` says what decoding it would take.
    """
    mime = API_FORMATS.get(fmt)
    w, h = size
    if mime is None or len(data) > MAX_IMAGE_BYTES:
        msg = (
            f"image is {w}x{h}: {why}; and the API does not take it as it is "
            f"({fmt}, {len(data):,} bytes)"
        )
        raise too_large(msg)
    msg = (
        f"{fmt} image of {w}x{h} sent as it is, unprepared: {why} "
        "(the API takes it as it is, and resizes it itself)"
    )
    warnings.warn(UnpreparedImageWarning(msg), stacklevel=4)
    return mime


def _passthrough_mime(
    image: Image.Image, data: bytes, orientation: int, target: tuple[int, int]
) -> str | None:
    """The MIME type to send ``data`` untouched under, or None if it needs re-encoding."""
    fmt = image.format or ""
    fits = image.size == target and orientation == 1 and len(data) <= MAX_IMAGE_BYTES
    if not fits or image.mode not in _PASSTHROUGH_MODES.get(fmt, ()):
        return None
    if getattr(image, "is_animated", False) or not _is_plain_file(fmt, data):
        return None
    return API_FORMATS[fmt]


def _is_plain_file(fmt: str, data: bytes) -> bool:
    """Whether ``data`` ends where its image ends (no appended payload); PNG at most 8-bit."""
    end = image_end(fmt, data)
    if end is None or data[end:].strip(b"\x00"):  # a few trailing NULs are camera padding
        return False
    return fmt != "PNG" or data[24] <= 8
