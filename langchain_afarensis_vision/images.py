"""Turn any local image into one the Afarensis Vision API accepts, at the size the model sees.

The API scales every image down to its *effective size* (:func:`~._contract.effective_size`)
before the model looks at it, and bills it by that size. Resizing to exactly that size on the
client therefore changes neither what the model sees nor what it costs, and sends far fewer
bytes: a 5 MB 12 MP camera photo becomes a ~150 kB 1024 x 768 JPEG. On the way,
:func:`prepare_image` refuses what the API would refuse (with the API's own error codes),
converts what it does not accept (TIFF, BMP, ICO, AVIF, HEIC, CMYK, 16-bit, ...), applies the
EXIF orientation (the model is weak on rotated images) and drops EXIF metadata such as GPS tags
from everything it re-encodes. Small images already in an accepted format go out byte for byte.

Inputs are untrusted: Pillow opens only an allow-list of raster formats (never EPS, PDF or
SVG), pixel counts are checked from the header before decoding, and every Pillow failure
becomes an :class:`~.errors.InvalidImageError`. Pillow's warnings (``DecompressionBombWarning``
...) follow the caller's warning filters: a filter that makes them errors refuses the image.
This module and its helper :mod:`._pixels` (resizing and PNG encoding spread over the cores)
are the client's only Pillow code.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import io
import os
import struct
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, TypeAlias

from PIL import Image, ImageCms, UnidentifiedImageError, features

from . import _pixels
from ._contract import MAX_IMAGE_BYTES, Detail, check_detail, effective_size, estimate_image_tokens
from .errors import InvalidImageError

__all__ = [
    "ImageInfo",
    "ImageSource",
    "PreparedImage",
    "clear_cache",
    "decode_base64",
    "decode_data_url",
    "inspect_image",
    "prepare_image",
    "read_image_size",
]

MAX_PIXELS: Final = 100_000_000
"""Most pixels ever decoded (about 400 MB); a JPEG may declare 64x more: it decodes downscaled."""
MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
"""Larger encoded inputs are refused (``image_too_large``) before they are read or decoded."""
JPEG_QUALITY: Final = 90
CACHE_ENTRIES: Final = 32
CACHE_BYTES: Final = 64 * 1024 * 1024

ImageSource: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image"

# What Pillow may open (MPO comes through the JPEG opener). TGA, which has no magic number, last.
_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP", "DIB", "ICO", "PPM", "AVIF", "HEIF", "TGA")
_PASSTHROUGH: Final = {
    "PNG": ("image/png", frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})),
    "JPEG": ("image/jpeg", frozenset({"L", "RGB"})),
    "WEBP": ("image/webp", frozenset({"RGB", "RGBA"})),
    "GIF": ("image/gif", frozenset({"L", "P"})),
}
_LOSSY = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF"})
_ANIMATED = frozenset({"GIF", "PNG", "WEBP", "AVIF"})  # other multi-frame files: first frame
_ORIENTATION = 0x0112
# EXIF orientation 2..8 -> the transpose that makes the image upright (FLIP_LEFT_RIGHT, ...).
_TRANSPOSE: Final = dict(zip(range(2, 9), map(Image.Transpose, (0, 3, 1, 5, 4, 6, 2)), strict=True))
_SIMPLE_CONVERSIONS: Final = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", "P": "RGB"}
_RESIZE_THEN_CONVERT = frozenset({"CMYK", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 1.5  # reduce() by whole factors while the rest is >= 1.5x: fast, sharp
_HASH_ASIDE = 1024 * 1024  # inputs this large are hashed on another core while decoding
_PNG_LEVEL = 3  # zlib level 3: about level 6 sizes (the default) at a fraction of the time
# What Pillow raises on hostile data (Warning: when the caller's filters make warnings errors).
_PILLOW_ERRORS: tuple[type[Exception], ...] = (OSError, SyntaxError, ValueError, TypeError)
_PILLOW_ERRORS += (LookupError, ArithmeticError, EOFError, struct.error, RuntimeError, Warning)
_NOT_RASTER = {b"%pdf": "a PDF document", b"%!ps": "PostScript/EPS", b"<svg": "SVG text"}
_NOT_RASTER |= {b"<html": "HTML text", b"<?xml": "XML text", b"pk\x03\x04": "a ZIP archive"}
_ICC_SPACES: Final = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}
_CORRUPT_RASTER = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"))
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


@dataclass(frozen=True, slots=True, repr=False)
class PreparedImage:
    """An image ready to send: ``data`` is exactly what goes out, in an accepted format.

    ``tokens`` is what the image costs at ``detail``; ``source_*`` describe the input (its
    oriented size, its Pillow format name, its length, 0 for a PIL image), and ``changed`` is
    ``False`` when ``data`` is the input itself, untouched.
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
    def data_url(self) -> str:
        """``data:<mime>;base64,<data>``, the form the API takes inline images in."""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def __repr__(self) -> str:
        w, h = self.source_size
        origin = f"from {self.source_format} {w}x{h}, {self.source_bytes:,} bytes"
        if not self.changed:
            origin = f"unchanged {self.source_format}"
        return (
            f"PreparedImage({self.mime_type} {self.width}x{self.height}, {len(self.data):,} bytes"
            f" ({origin}), detail={self.detail!r}, tokens={self.tokens})"
        )


def prepare_image(
    source: ImageSource, detail: Detail = "auto", *, first_frame: bool = False
) -> PreparedImage:
    """Validate, orient, resize and encode an image for the API.

    ``source`` is a path, bytes, a ``data:`` URL (its declared type is ignored: the bytes are
    sniffed) or a PIL image. A PNG, JPEG, WEBP or static GIF already within its effective
    size, upright and at most 20 MB is sent untouched, metadata included (a JPEG keeps any GPS
    tags); anything else is re-encoded without metadata at exactly its effective size: PNG if
    it has transparency or came from a lossless format, else JPEG. Results for byte inputs are
    cached by SHA-256, so an agent loop that resends the same photo prepares it once.

    Args:
        source: The image.
        detail: ``low``, ``high`` or ``auto``; sets the effective size.
        first_frame: Send the first frame of an animated GIF/WEBP/PNG instead of refusing it
            (a PIL image is seeked to its frame 0).

    Raises:
        InvalidImageError: ``invalid_image_format``, ``invalid_image`` (corrupt data),
            ``animated_gif_not_supported`` or ``image_too_large`` (over
            :data:`MAX_INPUT_BYTES` encoded or :data:`MAX_PIXELS` decoded).
        FileNotFoundError: if ``source`` is a path that does not exist.
    """
    detail = check_detail(detail)
    if isinstance(source, Image.Image):
        with _mapped_errors():
            return _prepare(source, None, detail, first_frame)
    data = _read_source(source)
    pending = None
    if len(data) < _HASH_ASIDE or _maybe_cached(len(data)):
        if (hit := _cache_get(key := _key(data, detail, first_frame))) is not None:
            return hit
    else:  # no input of this length is cached, a sure miss: hash on another core meanwhile
        pending = _pixels.start(lambda: _key(data, detail, first_frame))
    try:
        with _mapped_errors():
            prepared = _prepare(_open(data), data, detail, first_frame)
    finally:
        if pending is not None:
            key = pending.result()
    _cache_put(key, prepared)
    if prepared.changed:
        # Preparing the output again would send it as it is (the effective size of an effective
        # size is itself): remember that too, so a prepared image placed in a message by its
        # data URL (the tool, the loader, the CLI) is not decoded a second time.
        again = dataclasses.replace(
            prepared,
            source_format=prepared.mime_type.removeprefix("image/").upper(),
            source_size=prepared.size,
            source_bytes=len(prepared.data),
            changed=False,
        )
        _cache_put(_key(prepared.data, detail, first_frame), again)
    return prepared


def read_image_size(data: bytes) -> tuple[int, int]:
    """The oriented ``(width, height)`` of an encoded image, from its header (no decoding)."""
    with _mapped_errors():
        image = _open(bytes(data))
        return _oriented(image.size, _orientation(image))


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`inspect_image` learned: the MIME type, oriented size, frames, orientation."""

    mime_type: str
    width: int
    height: int
    frames: int
    orientation: int


_API_MIME: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


def inspect_image(data: bytes) -> ImageInfo:
    """Check ``data`` by the API's own rules, converting nothing: what the API would refuse.

    Unlike :func:`prepare_image`, TIFF or BMP are refused (``invalid_image_format``), as are
    animated images (``animated_gif_not_supported``) and anything over 20 MB
    (``image_too_large``). The whole image is decoded (JPEG at 1/8 scale) to find broken data.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(f"image is {len(data):,} bytes; the API takes at most {MAX_IMAGE_BYTES:,}")
    with _mapped_errors():
        image = _open(bytes(data))
        mime = _API_MIME.get(image.format or "")
        if mime is None:
            accepted = "PNG, JPEG, WEBP or non-animated GIF"
            msg = f"{image.format} images are not accepted: send {accepted}"
            raise InvalidImageError(msg, code="invalid_image_format")
        _check_frames(image, first_frame=False)
        jpeg = mime == "image/jpeg"
        _check_pixels(image.size, MAX_PIXELS * (64 if jpeg else 1))
        orientation = _orientation(image)
        size = _oriented(image.size, orientation)
        if jpeg:
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        return ImageInfo(mime, *size, getattr(image, "n_frames", 1), orientation)


def clear_cache() -> None:
    """Forget every cached :class:`PreparedImage`."""
    with _cache_lock:
        _cache.clear()


_Key: TypeAlias = tuple[int, bytes, str, bool]  # (input length, its SHA-256, detail, first_frame)
_cache: OrderedDict[_Key, PreparedImage] = OrderedDict()  # LRU order, guarded by _cache_lock
_cache_lock = threading.Lock()


def _key(data: bytes, detail: Detail, first_frame: bool) -> _Key:
    return len(data), hashlib.sha256(data).digest(), detail, first_frame


def _maybe_cached(length: int) -> bool:
    """Whether an input of ``length`` bytes is cached (a different length is a sure miss)."""
    with _cache_lock:
        return any(key[0] == length for key in _cache)


def _cache_get(key: _Key) -> PreparedImage | None:
    with _cache_lock:
        if (hit := _cache.get(key)) is not None:
            _cache.move_to_end(key)
        return hit


def _cache_put(key: _Key, prepared: PreparedImage) -> None:
    with _cache_lock:
        _cache[key] = prepared
        while (
            len(_cache) > CACHE_ENTRIES or sum(len(p.data) for p in _cache.values()) > CACHE_BYTES
        ):
            _cache.popitem(last=False)


def _too_large(what: str) -> InvalidImageError:
    return InvalidImageError(what, code="image_too_large")


def _read_source(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str) and source[:5].lower() == "data:":
        data = decode_data_url(source)
    elif isinstance(source, str | os.PathLike):
        data = _read_file(source)
    else:
        msg = f"expected a path, bytes, a data: URL or a PIL image; got {type(source).__name__}"
        raise TypeError(msg)
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large(f"image data is {len(data):,} bytes; at most {MAX_INPUT_BYTES:,} read")
    return data


def _read_file(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_INPUT_BYTES:
            raise _too_large(f"{os.fspath(path)!r} is larger than {MAX_INPUT_BYTES:,} bytes")
        # Bounded even for a growing or special file, and no 64 MiB buffer for a small one
        # (read(n) reserves n bytes up front); the caller refuses more than MAX_INPUT_BYTES.
        return file.read(size + 1) if size else file.read(MAX_INPUT_BYTES + 1)


def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:`` URL (base64 or percent-encoded); its declared type is ignored."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidImageError("malformed data URL: no ',' before the data", code="invalid_image")
    if not header.lower().endswith(";base64"):
        return urllib.parse.unquote_to_bytes(payload)
    return decode_base64(payload)


def decode_base64(text: str) -> bytes:
    """Strict base64 (line breaks allowed), refusing anything else with ``invalid_image``."""
    try:
        try:
            return base64.b64decode(text, validate=True)  # the usual case: one unbroken line
        except binascii.Error:
            return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"image base64 data is not valid base64: {exc}"
        raise InvalidImageError(msg, code="invalid_image") from exc


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Turn whatever Pillow raises on hostile data into an :class:`InvalidImageError`."""
    try:
        yield
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise _too_large(f"image is too large to decode safely: {exc}") from exc
    except _PILLOW_ERRORS as exc:
        msg = f"image data is corrupt or truncated ({type(exc).__name__}: {exc})"
        raise InvalidImageError(msg, code="invalid_image") from exc


@functools.cache
def _allowed_formats() -> tuple[str, ...]:
    with contextlib.suppress(ImportError):  # HEIC/HEIF only with the optional pillow-heif
        importlib.import_module("pillow_heif").register_heif_opener()
    Image.init()
    usable = [f for f in _FORMATS if f in Image.OPEN]
    return tuple(f for f in usable if f != "AVIF" or features.check("avif"))


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_allowed_formats())
    except UnidentifiedImageError:
        raise _unidentified(data) from None


def _unidentified(data: bytes) -> InvalidImageError:
    if name := next((n for magic, n in _CORRUPT_RASTER if data.startswith(magic)), None):
        msg = f"image data looks like {name} but cannot be read"
        return InvalidImageError(msg, code="invalid_image")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    what = next((kind for magic, kind in _NOT_RASTER.items() if magic in head), "unknown data")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        what = "HEIC/HEIF (install pillow-heif to convert it)"
    others = ", ".join(f for f in _allowed_formats() if f not in _PASSTHROUGH and f != "DIB")
    msg = (
        f"not a supported raster image: looks like {what if data else 'nothing (0 bytes)'}. "
        f"Accepted: PNG, JPEG, WEBP, static GIF and (converted) {others}."
    )
    return InvalidImageError(msg, code="invalid_image_format")


def _check_frames(image: Image.Image, first_frame: bool) -> None:
    if not first_frame and image.format in _ANIMATED and getattr(image, "is_animated", False):
        msg = f"animated {image.format} images are not accepted (first_frame=True sends frame 0)"
        raise InvalidImageError(msg, code="animated_gif_not_supported")
    if first_frame and image.tell() != 0:
        image.seek(0)


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise _too_large(f"image is {size[0]}x{size[1]} pixels; at most {limit:,} are decoded")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8), read without decoding pixels; 1 if absent or broken."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow would decode the whole PNG to look for an eXIf chunk after IDAT
    if image.format == "TIFF" and _pillow_orients_tiff():
        return 1  # Pillow itself turns TIFFs upright as it loads them (and reports that size)
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except _PILLOW_ERRORS:
        return 1
    return value if value in _TRANSPOSE else 1


@functools.cache
def _pillow_orients_tiff() -> bool:
    """Whether this Pillow applies a TIFF's orientation tag when loading it (newer ones do)."""
    exif = Image.Exif()
    exif[_ORIENTATION] = 2  # mirrored: a 2 x 1 image reads back reversed if Pillow applies it
    buffer = io.BytesIO()
    Image.frombytes("L", (2, 1), b"\x00\xff").save(buffer, "TIFF", exif=exif.tobytes())
    with Image.open(buffer) as probe:
        return probe.getpixel((0, 0)) == 255


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _prepare(
    image: Image.Image, data: bytes | None, detail: Detail, first_frame: bool
) -> PreparedImage:
    """Prepare an opened image; ``data`` is its encoded bytes, None for a caller's PIL image."""
    source_format = image.format or ("PIL" if data is None else "unknown")
    _check_frames(image, first_frame)
    draft = data is not None and source_format in {"JPEG", "MPO"}
    _check_pixels(image.size, MAX_PIXELS * (64 if draft else 1))
    orientation = _orientation(image)
    size = _oriented(image.size, orientation)
    target = effective_size(*size, detail)
    prepared = functools.partial(
        PreparedImage,
        detail=detail,
        tokens=estimate_image_tokens(*size, detail),
        source_format=source_format,
        source_size=size,
        source_bytes=len(data or b""),
    )
    if data is not None and (mime := _passthrough_mime(image, data, orientation, target)):
        image.load()  # a full decode: refuse truncated data instead of sending it
        return prepared(data, mime, *target, changed=False)
    out = _render(image, orientation, target, draft=draft)
    payload, mime = _encode(out, source_format in _LOSSY, image.info.get("icc_profile"))
    return prepared(payload, mime, *out.size, changed=True)


def _passthrough_mime(
    image: Image.Image, data: bytes, orientation: int, target: tuple[int, int]
) -> str | None:
    """The MIME type to send ``data`` untouched under, or None if it needs re-encoding."""
    mime, modes = _PASSTHROUGH.get(image.format or "", ("", frozenset()))
    fits = image.size == target and orientation == 1 and len(data) <= MAX_IMAGE_BYTES
    if not fits or image.mode not in modes or getattr(image, "is_animated", False):
        return None
    return mime if _is_plain_file(image.format or "", data) else None


def _is_plain_file(fmt: str, data: bytes) -> bool:
    """Whether ``data`` ends where its image ends (no appended payload); PNG at most 8-bit."""
    if fmt == "PNG":
        return data.endswith(b"IEND\xaeB`\x82") and data[24] <= 8
    if fmt == "JPEG":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "GIF":
        return data.endswith(b";")
    riff_size = int.from_bytes(data[4:8], "little")
    return len(data) - 8 in (riff_size, riff_size + 1)


def _render(
    image: Image.Image, orientation: int, target: tuple[int, int], *, draft: bool
) -> Image.Image:
    """Decode ``image`` and return it upright, at exactly ``target``, in an encodable mode."""
    stored = _oriented(target, orientation)
    box = None
    if draft:  # let libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the target
        drafted = image.draft(image.mode, stored)
        box = drafted[1] if drafted else None
    _check_pixels(image.size, MAX_PIXELS)
    image.load()
    late = image.mode in _RESIZE_THEN_CONVERT  # cheaper on the resized image
    opaque_palette = image.mode == "P" and "transparency" not in image.info
    keep = late or (opaque_palette and image.size == stored)  # a palette PNG stays small
    out = image if keep else _normalize_mode(image)
    if out.size != stored:
        gap = None if out.mode.startswith("I;16") else _REDUCING_GAP  # no reduce() for I;16
        out = _pixels.resize(out, stored, _RESAMPLE, box=box, reducing_gap=gap)
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


def _encode(image: Image.Image, lossy: bool, icc: bytes | None) -> tuple[bytes, str]:
    """Encode as PNG (alpha or lossless source) or JPEG, without metadata, within 20 MB."""
    if image.mode in {"LA", "RGBA"} and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert(image.mode[:-1])  # an opaque alpha channel carries nothing
    if image.mode in {"LA", "RGBA"} or not lossy:
        if image.mode in _pixels.PNG_MODES:
            data = _pixels.encode_png(image, _fitting(icc, image.mode), _PNG_LEVEL)
        else:
            data = _save(image, "PNG", icc, compress_level=_PNG_LEVEL)
        if len(data) <= MAX_IMAGE_BYTES:
            return data, "image/png"
    flat = image if image.mode in {"L", "RGB"} else image.convert("RGB")
    data = _save(flat, "JPEG", icc, quality=JPEG_QUALITY)
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_large(f"image is still {len(data):,} bytes after resizing and re-encoding")
    return data, "image/jpeg"


def _save(image: Image.Image, fmt: str, icc: bytes | None, **options: int) -> bytes:
    """Encode with no EXIF, XMP, text or comment; keep an ICC profile that fits the mode."""
    buffer = io.BytesIO()
    icc = _fitting(icc, image.mode)
    image.save(buffer, fmt, icc_profile=icc, comment=b"", transparency=None, **options)
    return buffer.getvalue()


def _fitting(icc: bytes | None, mode: str) -> bytes | None:
    """``icc`` if it describes ``mode``'s colour space (not, e.g., a CMYK profile), else None."""
    return icc if icc is not None and icc[16:20] == _ICC_SPACES.get(mode) else None
