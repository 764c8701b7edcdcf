"""Pixels in, bytes out: an opened image made upright, converted, resized and encoded.

The second half of :func:`~.prepare_image` (:mod:`._preparation` decides what to do; this
module does it), with Pillow's own ``draft``, ``resize`` (``reducing_gap``: ``reduce`` by whole
factors first), ``convert``, ``ImageCms`` and ``save``. No EXIF, XMP, text or comment is kept.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Final

from PIL import Image, ImageCms, JpegImagePlugin

from langchain_afarensis_vision._api.contract import API_FORMATS, MAX_IMAGE_BYTES
from langchain_afarensis_vision._sources.opening import check_pixels, oriented
from langchain_afarensis_vision._sources.read import too_large

__all__ = ["JPEG_QUALITY", "PNG_COMPRESS_LEVEL", "encode", "jpeg_settings", "render"]

JPEG_QUALITY: Final = 90
PNG_COMPRESS_LEVEL: Final = 3  # zlib level 3: about level 6 sizes (the default) in far less time
# EXIF orientation 2..8 -> the transpose that makes the image upright (FLIP_LEFT_RIGHT, ...).
_TRANSPOSE: Final = dict(zip(range(2, 9), map(Image.Transpose, (0, 3, 1, 5, 4, 6, 2)), strict=True))
_SIMPLE_CONVERSIONS: Final = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", "P": "RGB"}
_RESIZE_THEN_CONVERT = frozenset({"CMYK", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 1.5  # reduce() by whole factors while the rest is >= 1.5x: fast, sharp
_ICC_SPACES: Final = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}


def render(
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


def jpeg_settings(source: Image.Image) -> dict[str, Any] | None:
    """A JPEG source's own quantization tables and chroma subsampling, to save at its quality."""
    tables = getattr(source, "quantization", None)
    if not tables:
        return None
    return {"qtables": tables, "subsampling": JpegImagePlugin.get_sampling(source)}


def encode(
    image: Image.Image,
    lossy: bool,
    icc: bytes | None,
    jpeg: dict[str, Any] | None = None,
    source_bytes: int = 0,
) -> tuple[bytes, str]:
    """Encode as PNG (alpha or lossless source) or JPEG, without metadata, within 20 MB.

    A JPEG whose :data:`JPEG_QUALITY` encoding outgrows its JPEG source (``source_bytes`` long,
    saved with the ``jpeg`` settings of :func:`jpeg_settings`) is saved at the source's own
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
