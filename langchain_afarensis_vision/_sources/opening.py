"""Opening image bytes safely: an opened, not yet decoded, Pillow image and its header's facts.

Pillow opens every raster format it reads but a refusal list of unsafe ones (:data:`_UNSAFE`:
never EPS, which runs Ghostscript; PDF and SVG are no Pillow formats at all), and what an opened
image declares (its pixel count, its frames, its EXIF orientation, what it takes decoded) is
read from the header, before any pixel is decoded: what decoding it will really allocate
(:func:`decoded_bytes`, :func:`working_bytes`) is estimated from the header too. Every failure is an
:class:`~.errors.InvalidImageError` with the API's own code. The prepare pipeline
(:mod:`.images`), token counting and the local server all open images here, and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import struct
from collections.abc import Iterator
from typing import IO, Final

from PIL import Image, UnidentifiedImageError, features

from langchain_afarensis_vision._api.contract import ANIMATABLE_FORMATS, API_FORMATS, ErrorCode
from langchain_afarensis_vision._sources.declared import check_enough_data
from langchain_afarensis_vision._sources.read import too_large
from langchain_afarensis_vision.errors import InvalidImageError

__all__ = [
    "ALPHA_MODES",
    "DECODE_BUDGET",
    "MAX_PIXELS",
    "ORIENTATION_TAG",
    "allowed_formats",
    "check_decoded_bytes",
    "check_frames",
    "check_pixels",
    "decoded_bytes",
    "draft_scale",
    "mapped_errors",
    "open_image",
    "orientation",
    "oriented",
    "read_image_size",
    "webp_bytes",
    "working_bytes",
]

MAX_PIXELS: Final = 100_000_000
"""Most pixels ever decoded (about 400 MB); a JPEG may declare 64x more: it decodes downscaled."""
DECODE_BUDGET: Final = 128 * 1024 * 1024
"""Most bytes a picture decoded on the spot, with nothing to wait for, may take: an ICO's
frames (Pillow decodes them as it opens the file) and a thumbnail drawn for display. Images
prepared or examined reserve what they take from a shared :class:`~.budget.MemoryBudget`
instead, and wait for it."""
# What Pillow may open: every format it reads except _UNSAFE, tried in this order first (MPO
# comes through the JPEG opener), then the others in Pillow's own order, TGA (no magic) last.
_FIRST = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP", "DIB", "ICO", "PPM", "AVIF", "HEIF")
_LAST = ("TGA",)
_UNSAFE: Final = {
    "EPS": "PostScript: Pillow renders it by running Ghostscript",
    "WMF": "a Windows metafile: drawn by the system's graphics library",
    "ICNS": "a container whose PNG and JPEG 2000 images open without the size checks",
    "MIC": "an OLE container of images",
    "IPTC": "IPTC metadata, not a picture",
    "MPEG": "a video: Pillow reads its header and decodes nothing",
    "BUFR": "a weather-data stub (needs an outside handler)",
    "GRIB": "a weather-data stub (needs an outside handler)",
    "HDF5": "a scientific-data stub (needs an outside handler)",
}
"""Formats Pillow knows but never opens here, and why: the refusal list."""
# What Pillow raises on hostile data (Warning: when the caller's filters make warnings errors).
_PILLOW_ERRORS: tuple[type[Exception], ...] = (OSError, SyntaxError, ValueError, TypeError)
_PILLOW_ERRORS += (LookupError, ArithmeticError, EOFError, struct.error, RuntimeError, Warning)
_NOT_RASTER = {b"%pdf": "a PDF document", b"%!ps": "PostScript/EPS", b"<svg": "SVG text"}
_NOT_RASTER |= {b"<html": "HTML text", b"<?xml": "XML text", b"pk\x03\x04": "a ZIP archive"}
_CORRUPT_RASTER = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"))
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
ORIENTATION_TAG: Final = 0x0112
_PACKAGE: Final = __name__.split(".")[0]
_ROW_POINTER = 8  # Pillow keeps a pointer to every row
_ICO_MAGIC = b"\x00\x00\x01\x00"
_DRAFTABLE = frozenset({"JPEG", "MPO"})
# What Pillow stores a pixel in: one byte for 1, L, P; two for 16-bit; four for the rest.
_BYTES_PER_PIXEL: Final = {"1": 1, "L": 1, "P": 1} | dict.fromkeys(
    ("I;16", "I;16L", "I;16B", "I;16N"), 2
)
_BLOCK_BYTES: Final = 128  # libjpeg's coefficients of one 8x8 block: 64 of 2 bytes
_WEBP_COPIES: Final = 4  # libwebp's two canvases, the frame it hands Pillow, Pillow's image
_WORKING_MODES: Final = frozenset({"L", "LA", "RGB", "RGBA"})
ALPHA_MODES: Final = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
"""Modes with an alpha channel (a palette or grey image may have a transparent colour instead:
``"transparency"`` in its ``info``)."""


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Turn whatever Pillow raises on hostile data into an :class:`InvalidImageError`."""
    try:
        yield
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise too_large(f"image is too large to decode safely: {exc}") from exc
    except _PILLOW_ERRORS as exc:
        if isinstance(exc, Warning) and type(exc).__module__.startswith(_PACKAGE):
            raise  # this package's own warning (made an error by the caller's filters)
        msg = f"image data is corrupt or truncated ({type(exc).__name__}: {exc})"
        raise InvalidImageError(msg) from exc


@functools.cache
def allowed_formats() -> tuple[str, ...]:
    """The Pillow formats opened here: all it reads but :data:`_UNSAFE` (HEIC with pillow-heif)."""
    with contextlib.suppress(ImportError):
        importlib.import_module("pillow_heif").register_heif_opener()
    Image.init()
    others = [f for f in Image.ID if f not in _FIRST + _LAST]
    usable = [f for f in (*_FIRST, *others, *_LAST) if f in Image.OPEN and f not in _UNSAFE]
    return tuple(f for f in usable if f != "AVIF" or features.check("avif"))


def open_image(data: bytes, formats: tuple[str, ...] | None = None) -> Image.Image:
    """Open ``data`` with an allow-listed Pillow opener: the header is read, no pixels yet.

    ``formats`` narrows the allow-list (the local server opens only what the API accepts).
    Call it inside :func:`mapped_errors` (a broken header raises Pillow's own errors).
    """
    formats = allowed_formats() if formats is None else formats
    check_enough_data(data)  # a header declaring more than its data can hold: truncated
    if data[:4] == _ICO_MAGIC and "ICO" in formats:
        _check_ico(data)  # Pillow decodes an ICO's PNG frames while opening
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except Image.DecompressionBombError:
        if (opened := _past_pillows_guard(data, formats)) is None:
            raise
        return opened


def _past_pillows_guard(data: bytes, formats: tuple[str, ...]) -> Image.Image | None:
    """``data`` opened past Pillow's pixel guard, if it is in a format the API accepts.

    The guard refuses what the API accepts (any valid image up to 20 MB); the caller's own
    memory budget decides what may be decoded. None for other formats.
    """
    for name in (f for f in formats if f in API_FORMATS and f in Image.OPEN):
        factory, accept = Image.OPEN[name]
        if accept is None or accept(data[:16]) is True:
            return factory(io.BytesIO(data), "")
    return None


def _check_ico(data: bytes) -> None:
    """Refuse an ICO whose frames (PNG or BMP) declare more than may be decoded."""
    count = int.from_bytes(data[4:6], "little")
    for entry in range(min(count, 256)):
        offset = int.from_bytes(data[6 + 16 * entry + 12 : 6 + 16 * entry + 16], "little")
        frame = data[offset : offset + 24]
        if frame[:8] == b"\x89PNG\r\n\x1a\n":
            size = int.from_bytes(frame[16:20], "big"), int.from_bytes(frame[20:24], "big")
        else:  # a BMP info header: width, then twice the height (colour and mask)
            width = int.from_bytes(frame[4:8], "little", signed=True)
            size = abs(width), abs(int.from_bytes(frame[8:12], "little", signed=True)) // 2
        check_pixels(size)
        check_decoded_bytes(size[1] * (size[0] * 4 + _ROW_POINTER))


def _unidentified(data: bytes) -> InvalidImageError:
    if name := next((n for magic, n in _CORRUPT_RASTER if data.startswith(magic)), None):
        return InvalidImageError(f"image data looks like {name} but cannot be read")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    what = next((kind for magic, kind in _NOT_RASTER.items() if magic in head), "unknown data")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        what = "HEIC/HEIF (install pillow-heif to convert it)"
    others = ", ".join(f for f in allowed_formats() if f not in API_FORMATS and f != "DIB")
    msg = (
        f"not a supported raster image: looks like {what if data else 'nothing (0 bytes)'}. "
        f"Accepted: PNG, JPEG, WEBP, static GIF and (converted) {others}."
    )
    return InvalidImageError(msg, code=ErrorCode.INVALID_IMAGE_FORMAT)


# -- what the header declares ----------------------------------------------------------------


def check_frames(image: Image.Image, first_frame: bool) -> None:
    """Refuse an animated image (or, with ``first_frame``, go to its frame 0)."""
    if (
        not first_frame
        and image.format in ANIMATABLE_FORMATS
        and getattr(image, "is_animated", False)
    ):
        msg = f"animated {image.format} images are not accepted (first_frame=True sends frame 0)"
        raise InvalidImageError(msg, code=ErrorCode.ANIMATED_GIF_NOT_SUPPORTED)
    if first_frame and image.tell() != 0:
        image.seek(0)


def check_pixels(size: tuple[int, int], factor: int = 1) -> None:
    """Refuse an image of more than ``factor`` x :data:`MAX_PIXELS` pixels.

    ``factor`` is 64 for a JPEG that will be decoded at 1/8 scale.
    """
    limit = MAX_PIXELS * factor
    if size[0] * size[1] > limit:
        raise too_large(f"image is {size[0]}x{size[1]} pixels; at most {limit:,} are decoded")


def draft_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) that decodes ``size`` to no less than ``target``."""
    fits = (s for s in (8, 4, 2) if size[0] // s >= target[0] and size[1] // s >= target[1])
    return next(fits, 1)


def decoded_bytes(image: Image.Image, target: tuple[int, int] | None = None) -> int:
    """The bytes decoding ``image`` (one frame) allocates, read from its header.

    Pillow's pixels: each row costs its pixels and a pointer (so a 1 x 30,000,000 image costs
    240 MB of row pointers on its own); with ``target`` (in stored orientation), a JPEG counts
    at the scale ``draft`` will decode it. And the decoder's own buffers: libjpeg keeps the
    coefficients of the whole image, at full size whatever the draft scale, for a progressive
    JPEG or one whose components come in separate scans; libwebp decodes into two canvases
    of its own and hands Pillow a copy.
    """
    if image.format == "WEBP":
        return webp_bytes(image.size)
    width, height = _decoded_size(image, target)
    per_pixel = _BYTES_PER_PIXEL.get(image.mode, 4)
    return height * (width * per_pixel + _ROW_POINTER) + _coefficient_bytes(image)


def webp_bytes(size: tuple[int, int]) -> int:
    """What decoding a WEBP of ``size`` allocates, 4 bytes a pixel four times over.

    libwebp's two canvases, the frame it hands Pillow, and Pillow's image (``size`` is read
    from the file's first bytes: Pillow's opener already has libwebp allocate the canvases).
    """
    return size[1] * (size[0] * 4 * _WEBP_COPIES + _ROW_POINTER)


def working_bytes(image: Image.Image, target: tuple[int, int] | None = None) -> int:
    """The most bytes decoding ``image`` and shrinking it to ``target`` hold at once.

    :func:`decoded_bytes`, plus a full-size copy (4 bytes a pixel) when its mode is none of
    L, LA, RGB, RGBA (a palette image with a transparent colour expands to RGBA; 1, P,
    16-bit, CMYK are converted), plus one more when it has alpha: Pillow resizes an RGBA
    image as a premultiplied copy.
    """
    width, height = _decoded_size(image, target)
    transparent = "transparency" in image.info
    copies = (image.mode not in _WORKING_MODES or transparent) + (
        image.mode in ALPHA_MODES or transparent
    )
    return decoded_bytes(image, target) + copies * height * (width * 4 + _ROW_POINTER)


def _decoded_size(image: Image.Image, target: tuple[int, int] | None) -> tuple[int, int]:
    width, height = image.size
    if target is not None and image.format in _DRAFTABLE:
        scale = draft_scale(image.size, target)
        width, height = -(-width // scale), -(-height // scale)
    return width, height


def _coefficient_bytes(image: Image.Image) -> int:
    """The whole-image coefficient buffers of libjpeg (0 when it decodes a row at a time).

    Each component's blocks, rounded up to whole sampling units, at 128 bytes a block.
    """
    layers: list[tuple[int, int, int, int]] = getattr(image, "layer", [])
    if image.format not in _DRAFTABLE or not layers or not _buffered_jpeg(image, len(layers)):
        return 0
    most_h, most_v = max(h for _, h, _, _ in layers), max(v for _, _, v, _ in layers)
    total = 0
    for _, h, v, _ in layers:
        columns = -(-image.width * h // (8 * most_h))
        rows = -(-image.height * v // (8 * most_v))
        total += -(-columns // h) * h * -(-rows // v) * v * _BLOCK_BYTES
    return total


def _buffered_jpeg(image: Image.Image, components: int) -> bool:
    """Whether libjpeg buffers the whole image's coefficients.

    It does for a progressive JPEG, and for one whose first scan holds fewer than all
    ``components`` (read from the first SOS segment; an unreadable one counts as buffered).
    """
    if image.info.get("progressive"):
        return True
    fp: IO[bytes] | None = getattr(image, "fp", None)
    if fp is None:  # loaded already: nothing more is allocated
        return False
    at = fp.tell()
    try:
        fp.seek(2)  # after SOI: segments, each with its length, up to the first scan
        while len(head := fp.read(4)) == 4 and head[0] == 0xFF:
            if head[1] == 0xDA:
                return fp.read(1)[:1] != bytes([components])
            fp.seek(int.from_bytes(head[2:], "big") - 2, io.SEEK_CUR)
        return True
    finally:
        fp.seek(at)


def check_decoded_bytes(amount: int) -> None:
    """Refuse what would take more than :data:`DECODE_BUDGET` bytes decoded."""
    if amount > DECODE_BUDGET:
        msg = f"image would take {amount:,} bytes decoded; at most {DECODE_BUDGET:,} are"
        raise too_large(msg)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8), read without decoding pixels; 1 if absent or broken."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow would decode the whole PNG to look for an eXIf chunk after IDAT
    if image.format == "TIFF" and _pillow_orients_tiff():
        return 1  # Pillow itself turns TIFFs upright as it loads them (and reports that size)
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except _PILLOW_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


@functools.cache
def _pillow_orients_tiff() -> bool:
    """Whether this Pillow applies a TIFF's orientation tag when loading it (newer ones do)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 2  # mirrored: a 2 x 1 image reads back reversed if Pillow applies it
    buffer = io.BytesIO()
    Image.frombytes("L", (2, 1), b"\x00\xff").save(buffer, "TIFF", exif=exif.tobytes())
    with Image.open(buffer) as probe:
        return probe.getpixel((0, 0)) == 255


def oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``size`` as seen once the EXIF ``orientation`` is applied (5 to 8 swap the sides)."""
    return (size[1], size[0]) if orientation >= 5 else size


def read_image_size(data: bytes) -> tuple[int, int]:
    """The oriented ``(width, height)`` of an encoded image, from its header (no decoding)."""
    with mapped_errors():
        image = open_image(bytes(data))
        return oriented(image.size, orientation(image))
