"""Turn any image into one the Afarensis Vision API accepts, at the size the model sees.

The API scales every image down to its *effective size* (:func:`~._contract.effective_size`)
before the model looks at it, and bills it by that size. Resizing to exactly that size on the
client therefore changes neither what the model sees nor what it costs, and sends far fewer
bytes: a 5 MB 12 MP camera photo becomes a ~150 kB 1024 x 768 JPEG. On the way,
:func:`prepare_image` refuses what the API would refuse (with the API's own error codes),
converts what it does not accept (TIFF, BMP, ICO, AVIF, HEIC, CMYK, 16-bit, ...), applies the
EXIF orientation (the model is weak on rotated images) and drops EXIF metadata such as GPS tags
from everything it re-encodes. Small images already in an accepted format go out byte for byte.

Sources are read and opened by :mod:`._sources` (size caps, the format allow-list, header
checks before any decode); this module is the pipeline after that: orient, convert, resize and
encode, with Pillow's own ``draft``, ``resize`` (``reducing_gap``: ``reduce`` by whole factors
first) and ``save``, one image per call on the calling thread. Speed for many images comes from
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
import io
import secrets
import warnings
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from PIL import Image, ImageCms, JpegImagePlugin

from langchain_afarensis_vision._api.contract import (
    API_FORMATS,
    MAX_IMAGE_BYTES,
    Detail,
    effective_size,
    estimate_image_tokens,
)
from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.read import (
    DECODE_BUDGET,
    ImageSource,
    check_frames,
    check_pixels,
    decoded_bytes,
    mapped_errors,
    open_image,
    orientation,
    oriented,
    read_source,
    too_large,
)
from langchain_afarensis_vision.errors import checked_detail
from langchain_afarensis_vision.images._end import image_end
from langchain_afarensis_vision.images._view import ShownInJupyter

__all__ = [
    "BUDGET",
    "PreparedImage",
    "UnpreparedImageWarning",
    "clear_cache",
    "prepare_image",
    "unseal",
]

JPEG_QUALITY: Final = 90
PNG_COMPRESS_LEVEL: Final = 3  # zlib level 3: about level 6 sizes (the default) in far less time
CACHE_ENTRIES: Final = 128  # > the 94 low-detail images of an 8,000-token ImageBudgetEdit
CACHE_BYTES: Final = 64 * 1024 * 1024
BUDGET: Final = MemoryBudget(512 * 1024 * 1024)
"""Decoded bytes in flight across every ``prepare_image`` call of the process (any thread):
a call waits while others hold the budget, so many images at once stay bounded in memory."""


class UnpreparedImageWarning(UserWarning):
    """An image too large to decode within the budget was sent as it is (the API resizes it)."""


# The modes an accepted format is sent in untouched.
_PASSTHROUGH_MODES: Final = {
    "PNG": frozenset({"1", "L", "LA", "P", "RGB", "RGBA"}),
    "JPEG": frozenset({"L", "RGB"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "GIF": frozenset({"L", "P"}),
}
_LOSSY = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF"})
_DRAFTABLE = frozenset({"JPEG", "MPO"})  # libjpeg decodes at 1/2, 1/4 or 1/8 scale
# EXIF orientation 2..8 -> the transpose that makes the image upright (FLIP_LEFT_RIGHT, ...).
_TRANSPOSE: Final = dict(zip(range(2, 9), map(Image.Transpose, (0, 3, 1, 5, 4, 6, 2)), strict=True))
_SIMPLE_CONVERSIONS: Final = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", "P": "RGB"}
_RESIZE_THEN_CONVERT = frozenset({"CMYK", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 1.5  # reduce() by whole factors while the rest is >= 1.5x: fast, sharp
_ICC_SPACES: Final = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}
_SEAL_KEY: Final = secrets.token_bytes(32)  # this process's: a seal proves we prepared it
_SEAL: Final = "afarensis_prepared"


@dataclass(frozen=True, slots=True, repr=False)
class PreparedImage(ShownInJupyter):
    """An image ready to send: ``data`` is exactly what goes out, in an accepted format.

    ``tokens`` is what the image costs at ``detail``; ``source_*`` describe the input (its
    oriented size, its Pillow format name, its length, 0 for a PIL image), and ``changed`` is
    ``False`` when ``data`` is the input itself, untouched. In Jupyter it shows as what the
    model sees, its 512-px tiles drawn over it, with its sizes, bytes and tokens (``_display``).
    """

    data: bytes
    mime_type: str
    width: int
    height: int
    detail: Detail
    tokens: int
    source_format: str
    source_size: tuple[int, int]
    source_bytes: int
    changed: bool

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of ``data``."""
        return self.width, self.height

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
        origin = f"from {self.source_format} {w}x{h}, {self.source_bytes:,} bytes"
        if not self.changed:
            origin = f"unchanged {self.source_format}"
        return (
            f"PreparedImage({self.mime_type} {self.width}x{self.height}, {len(self.data):,} bytes"
            f" ({origin}), detail={self.detail!r}, tokens={self.tokens})"
        )


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
        InvalidImageError: ``invalid_image_format``, ``invalid_image`` (corrupt data),
            ``animated_gif_not_supported`` or ``image_too_large`` (over
            :data:`~._sources.MAX_INPUT_BYTES` encoded or :data:`~._sources.MAX_PIXELS`).
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
    source_format = image.format or ("PIL" if data is None else "unknown")
    draft = data is not None and source_format in _DRAFTABLE
    check_pixels(image.size, 64 if draft else 1)
    turn = orientation(image)
    size = oriented(image.size, turn)
    target = effective_size(*size, detail)
    prepared = functools.partial(
        PreparedImage,
        detail=detail,
        tokens=estimate_image_tokens(*size, detail),
        source_format=source_format,
        source_size=size,
        source_bytes=len(data or b""),
    )
    need = decoded_bytes(image, oriented(target, turn) if draft else None)
    if data is not None and need > DECODE_BUDGET:  # too large to decode here: as it is, or not
        check_frames(image, first_frame=False)
        as_is = _unprepared_mime(image, data, need)
        return prepared(data, as_is, *image.size, changed=False)
    with BUDGET.reserve(need):  # decoded bytes in flight, across every thread of the process
        check_frames(image, first_frame)
        if data is not None and (mime := _passthrough_mime(image, data, turn, target)):
            image.load()  # a full decode: refuse truncated data instead of sending it
            return prepared(data, mime, *target, changed=False)
        jpeg = _jpeg_settings(image) if draft else None
        out = _render(image, turn, target, draft=draft)
        lossy = source_format in _LOSSY
        payload, mime = _encode(out, lossy, image.info.get("icc_profile"), jpeg, len(data or b""))
    return prepared(payload, mime, *out.size, changed=True)


def _unprepared_mime(image: Image.Image, data: bytes, need: int) -> str:
    """The MIME type to send an image too large to decode here as it is, with a warning.

    The API takes it (its format, at most 20 MB) and resizes it itself; what the API would
    refuse too is refused (``image_too_large``).
    """
    mime = API_FORMATS.get(image.format or "")
    w, h = image.size
    if mime is None or len(data) > MAX_IMAGE_BYTES:
        msg = (
            f"image is {w}x{h} ({need:,} bytes decoded, over the {DECODE_BUDGET:,}-byte budget) "
            f"and the API does not take it as it is ({image.format}, {len(data):,} bytes)"
        )
        raise too_large(msg)
    msg = (
        f"{image.format} image of {w}x{h} sent as it is, unprepared: it would take {need:,} "
        f"bytes decoded, over the {DECODE_BUDGET:,}-byte budget (the API resizes it itself)"
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


def _render(
    image: Image.Image, orientation: int, target: tuple[int, int], *, draft: bool
) -> Image.Image:
    """Decode ``image`` and return it upright, at exactly ``target``, in an encodable mode."""
    stored = oriented(target, orientation)
    box = None
    if draft:  # let libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the target
        drafted = image.draft(image.mode, stored)
        box = drafted[1] if drafted else None
    check_pixels(image.size)
    image.load()
    late = image.mode in _RESIZE_THEN_CONVERT  # cheaper on the resized image
    opaque_palette = image.mode == "P" and "transparency" not in image.info
    keep = late or (opaque_palette and image.size == stored)  # a palette PNG stays small
    out = image if keep else _normalize_mode(image)
    if out.size != stored:
        gap = None if out.mode.startswith("I;16") else _REDUCING_GAP  # no reduce() for I;16
        out = out.resize(stored, _RESAMPLE, box=box, reducing_gap=gap)
    if late:
        out = _normalize_mode(out)
    if (method := _TRANSPOSE.get(orientation)) is not None:
        out = out.transpose(method)
    return out


def _normalize_mode(image: Image.Image) -> Image.Image:
    """Convert to L, LA, RGB or RGBA, scaling deep images to 8 bits."""
    mode = image.mode
    if "transparency" in image.info and mode in {"L", "RGB", "P"}:
        return image.convert("LA" if mode == "L" else "RGBA")
    if mode in {"L", "LA", "RGB", "RGBA"}:
        return image
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image)
    return image.convert(_SIMPLE_CONVERSIONS.get(mode, "RGB"))


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float image to L: by bit depth when known, else by its range."""
    sixteen = image.mode.startswith("I;16")
    image = image.convert("I") if sixteen else image
    low, high = image.getextrema()
    assert isinstance(low, int | float)
    assert isinstance(high, int | float)
    if sixteen or (image.mode == "I" and low >= 0 and 255 < high <= 65535):
        scale, offset = 255 / 65535, 0.0
    elif image.mode == "I" and low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale = 255 / (high - low) if high > low else 0.0
        offset = -low * scale
    return image.point(lambda v: v * scale + offset).convert("L")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """CMYK to sRGB through the embedded ICC profile when there is a usable one."""
    with contextlib.suppress(ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError):
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        srgb = ImageCms.createProfile("sRGB")
        if (out := ImageCms.profileToProfile(image, profile, srgb, outputMode="RGB")) is not None:
            return out
    return image.convert("RGB")


def _jpeg_settings(source: Image.Image) -> dict[str, Any] | None:
    """A JPEG source's own quantization tables and chroma subsampling, to save at its quality."""
    tables = getattr(source, "quantization", None)
    if not tables:
        return None
    return {"qtables": tables, "subsampling": JpegImagePlugin.get_sampling(source)}


def _encode(
    image: Image.Image,
    lossy: bool,
    icc: bytes | None,
    jpeg: dict[str, Any] | None = None,
    source_bytes: int = 0,
) -> tuple[bytes, str]:
    """Encode as PNG (alpha or lossless source) or JPEG, without metadata, within 20 MB.

    A JPEG whose :data:`JPEG_QUALITY` encoding outgrows its JPEG source (``source_bytes`` long,
    saved with the ``jpeg`` settings of :func:`_jpeg_settings`) is saved at the source's own
    quality instead when that is smaller: a resize never grows a lower-quality JPEG.
    """
    if image.mode in {"LA", "RGBA"} and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert(image.mode[:-1])  # an opaque alpha channel carries nothing
    if image.mode in {"LA", "RGBA"} or not lossy:
        data = _save(image, "PNG", icc, compress_level=PNG_COMPRESS_LEVEL)
        if len(data) <= MAX_IMAGE_BYTES:
            return data, API_FORMATS["PNG"]
    flat = image if image.mode in {"L", "RGB"} else image.convert("RGB")
    data = _save(flat, "JPEG", icc, quality=JPEG_QUALITY)
    if jpeg is not None and len(data) > source_bytes:
        data = min(data, _save(flat, "JPEG", icc, **jpeg), key=len)
    if len(data) > MAX_IMAGE_BYTES:
        raise too_large(f"image is still {len(data):,} bytes after resizing and re-encoding")
    return data, API_FORMATS["JPEG"]


def _save(image: Image.Image, fmt: str, icc: bytes | None, **options: Any) -> bytes:
    """Encode with no EXIF, XMP, text or comment; keep an ICC profile that fits the mode."""
    buffer = io.BytesIO()
    icc = _fitting(icc, image.mode)
    image.save(buffer, fmt, icc_profile=icc, comment=b"", transparency=None, **options)
    return buffer.getvalue()


def _fitting(icc: bytes | None, mode: str) -> bytes | None:
    """``icc`` if it describes ``mode``'s colour space (not, e.g., a CMYK profile), else None."""
    return icc if icc is not None and icc[16:20] == _ICC_SPACES.get(mode) else None
