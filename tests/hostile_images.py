"""A corpus of broken, hostile and odd images, built in memory, with what prepare_image must do.

Every entry is a :class:`Case`: a name, a builder of the bytes (cached: the corpus is built once
per process) and the expectation: either an ``InvalidImageError`` code, or a prepared image with
some properties. Nothing here is committed as a file; the biggest entry (a 25 MB noise PNG)
takes about a second to build.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import ExifTags, Image, ImageDraw, features

from langchain_afarensis_vision._api.contract import Detail
from langchain_afarensis_vision.images import PreparedImage

Check = Callable[[PreparedImage], None]

# Four quadrant colours: an image whose rotation and mirroring can be read from its pixels.
QUADRANTS = {"top_left": (255, 0, 0), "top_right": (0, 255, 0), "bottom_left": (0, 0, 255)}
QUADRANTS["bottom_right"] = (255, 255, 255)
UPRIGHT_SIZE = (96, 64)
# The transpose that undoes each EXIF orientation's correction (stored = upright.transpose(...)).
_STORE = dict(zip(range(2, 9), map(Image.Transpose, (0, 3, 1, 5, 2, 6, 4)), strict=True))


@dataclass(frozen=True)
class Case:
    """One corpus entry: ``build()`` gives the bytes; ``code`` set means it must be refused."""

    name: str
    build: Callable[[], bytes]
    code: str | None = None
    message: str | None = None  # a substring of the error message
    mime: str | None = None
    size: tuple[int, int] | None = None
    changed: bool | None = None
    detail: Detail = "auto"
    first_frame: bool = False
    checks: tuple[Check, ...] = field(default=())
    unprepared: bool = False  # too large to decode here: sent as it is, with a warning

    def data(self) -> bytes:
        return self.build()


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Random pixels: incompressible, like the worst real photo."""
    count = size[0] * size[1] * len(mode)
    return Image.frombytes(mode, size, random.Random(seed).randbytes(count))


def upright() -> Image.Image:
    """The reference image for orientation checks: four coloured quadrants."""
    w, h = UPRIGHT_SIZE
    image = Image.new("RGB", UPRIGHT_SIZE)
    draw = ImageDraw.Draw(image)
    for (x, y), key in zip(
        [(0, 0), (1, 0), (0, 1), (1, 1)], QUADRANTS, strict=True
    ):  # quadrant order of QUADRANTS
        draw.rectangle((x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2), QUADRANTS[key])
    return image


def quadrant_colours(image: Image.Image) -> dict[str, tuple[int, ...]]:
    """The colour at the centre of each quadrant of ``image``."""
    w, h = image.size
    rgb = image.convert("RGB")
    points = {
        "top_left": (1, 1),
        "top_right": (3, 1),
        "bottom_left": (1, 3),
        "bottom_right": (3, 3),
    }
    return {k: _rgb_at(rgb, (x * w // 4, y * h // 4)) for k, (x, y) in points.items()}


def _rgb_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return tuple(int(v) for v in value)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(
    width: int, height: int, *, depth: int = 8, colour: int = 2, rows: bytes | None = None
) -> bytes:
    """A PNG written chunk by chunk, so that its header can say anything."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def _with_chunk_before_idat(png: bytes, chunk: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk + png[at:]


@functools.cache
def small_png() -> bytes:
    return _encode(noise((32, 32)), "PNG")


@functools.cache
def small_jpeg() -> bytes:
    return _encode(noise((64, 48)), "JPEG", quality=90)


@functools.cache
def small_gif() -> bytes:
    return _encode(noise((32, 32)).convert("P"), "GIF")


@functools.cache
def photo_jpeg() -> bytes:
    return _encode(noise((640, 480)), "JPEG", quality=85)


@functools.cache
def camera_jpeg() -> bytes:
    """A 4032 x 3024 JPEG with smooth areas and mild grain, like a 12 MP phone photo."""
    size = (4032, 3024)
    base = upright().resize(size, Image.Resampling.BILINEAR)
    grain = Image.merge("RGB", [Image.effect_noise(size, 8) for _ in range(3)])
    return _encode(Image.blend(base, grain, 0.25), "JPEG", quality=90)


@functools.cache
def orientation_jpeg(orientation: int) -> bytes:
    """The upright image, stored so that EXIF ``orientation`` turns it upright again."""
    stored = upright()
    if orientation in _STORE:
        stored = stored.transpose(_STORE[orientation])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return _encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _gps_exif() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 3.0)})
    return exif.tobytes()


@functools.cache
def gps_jpeg(width: int, height: int) -> bytes:
    return _encode(noise((width, height)), "JPEG", quality=80, exif=_gps_exif())


def _sixteen_bit_rgb() -> bytes:
    w, h = 40, 30
    row = b"\0" + b"".join(struct.pack(">HHH", x * 1600, 30000, 65535 - x * 1600) for x in range(w))
    return raw_png(w, h, depth=16, colour=2, rows=row * h)


def _zlib_bomb_png() -> bytes:
    body = b"Comment\0\0" + zlib.compress(b"\0" * 64 * 1024 * 1024, 9)  # 64 MB in ~64 kB
    return _with_chunk_before_idat(small_png(), png_chunk(b"zTXt", body))


def _huge_sof_jpeg() -> bytes:
    data = bytearray(small_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)
    return bytes(data)


def _huge_screen_gif() -> bytes:
    data = bytearray(small_gif())
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def _huge_frame_gif() -> bytes:
    data = bytearray(small_gif())
    descriptor = data.index(b",", 13)  # the first image descriptor, after the colour table
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 60000, 60000)
    return bytes(data)


def _png_with_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.js", "alert(document.cookie)")
    return small_png() + archive.getvalue()


def _animated(fmt: str, mode: str = "RGB") -> bytes:
    frames = [noise((48, 48), mode, seed) for seed in range(3)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_alpha(size: tuple[int, int]) -> bytes:
    image = noise(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "PNG", transparency=0)


def _la(size: tuple[int, int]) -> bytes:
    gradient = Image.linear_gradient("L").resize(size)
    return _encode(
        Image.merge("LA", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT))), "PNG"
    )


def _float_tiff() -> bytes:
    image = Image.linear_gradient("L").resize((300, 200)).convert("F")
    return _encode(image.point(lambda v: v * 1000.0 - 5000.0), "TIFF")


def _png_oriented_6() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    stored = upright().transpose(_STORE[6])
    return _encode(stored, "PNG", exif=exif.tobytes())


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _built(build: Callable[[], bytes]) -> Callable[[], bytes]:
    return functools.cache(build)


def _modes(*modes: str) -> Check:
    def check(prepared: PreparedImage) -> None:
        assert Image.open(io.BytesIO(prepared.data)).mode in modes

    return check


def _lacks(needle: bytes) -> Check:
    def check(prepared: PreparedImage) -> None:
        assert needle not in prepared.data

    return check


def _pixel(xy: tuple[int, int], expected: int | tuple[int, ...], tolerance: int = 3) -> Check:
    def check(prepared: PreparedImage) -> None:
        value = Image.open(io.BytesIO(prepared.data)).getpixel(xy)
        assert value is not None
        got = value if isinstance(value, tuple) else (value,)
        want = expected if isinstance(expected, tuple) else (expected,)
        assert all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=False)), got

    return check


def _upright_colours(prepared: PreparedImage) -> None:
    colours = quadrant_colours(Image.open(io.BytesIO(prepared.data)))
    for key, want in QUADRANTS.items():
        assert all(abs(g - w) <= 40 for g, w in zip(colours[key], want, strict=True)), (
            key,
            colours,
        )


def _no_exif(prepared: PreparedImage) -> None:
    assert not Image.open(io.BytesIO(prepared.data)).getexif()


HEIF_PLUGIN = False
try:  # the optional HEIC plugin changes what a HEIC file turns into
    import pillow_heif  # type: ignore[import-not-found]  # noqa: F401

    HEIF_PLUGIN = True
except ImportError:
    pass

PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
_TEXT = {
    "svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
    b'<circle r="4"/><script>alert(1)</script></svg>',
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    "html": b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>\n",
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n(pwned) print showpage\n",
}


def _orientation_cases() -> list[Case]:
    return [
        Case(
            f"exif_orientation_{n}",
            functools.partial(orientation_jpeg, n),
            mime=JPEG,
            size=UPRIGHT_SIZE,
            changed=n != 1,
            checks=(_upright_colours, _no_exif) if n != 1 else (_upright_colours,),
        )
        for n in range(1, 9)
    ]


def _refused() -> list[Case]:
    fmt, invalid, large = "invalid_image_format", "invalid_image", "image_too_large"
    cut = (invalid, "image data is truncated")
    return [
        Case("zero_bytes", _constant(b""), fmt, "0 bytes"),
        Case("random_junk", _built(lambda: random.Random(7).randbytes(4096)), fmt),
        Case("truncated_jpeg", _built(lambda: photo_jpeg()[: len(photo_jpeg()) // 2]), invalid),
        Case("truncated_png", _built(lambda: _encode(noise((300, 300)), "PNG")[:40_000]), invalid),
        Case("png_signature_only", _built(lambda: small_png()[:20]), invalid),
        Case("jpeg_soi_then_junk", _constant(b"\xff\xd8\xff\xe0" + b"\x13" * 200), invalid),
        Case(
            "png_bad_crc",
            _built(lambda: small_png()[:29] + b"\0\0\0\0" + small_png()[33:]),
            invalid,
        ),
        Case("gif_header_then_html", _constant(b"GIF89a\1\0\1\0\0\0\0" + _TEXT["html"]), invalid),
        Case("svg_text", _constant(_TEXT["svg"]), fmt, "SVG"),
        Case("pdf_bytes", _constant(_TEXT["pdf"]), fmt, "PDF"),
        Case("html_page", _constant(_TEXT["html"]), fmt, "HTML"),
        Case("eps_postscript", _constant(_TEXT["eps"]), fmt, "PostScript"),
        Case("zip_archive", _built(lambda: _png_with_zip()[len(small_png()) :]), fmt, "ZIP"),
        Case(
            "heic_like_ftyp",
            _constant(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64),
            invalid if HEIF_PLUGIN else fmt,
            None if HEIF_PLUGIN else "HEIC",
        ),
        # Pillow refuses text chunks that inflate past 1 MB (PngImagePlugin.MAX_TEXT_CHUNK).
        Case("png_zlib_bomb_in_ztxt", _built(_zlib_bomb_png), invalid),
        # Headers declaring more pixels than their few bytes can hold, however well compressed:
        # truncated, refused before anything is decoded (never "too large": the API takes any
        # valid image up to 20 MB).
        Case("png_just_over_pixel_budget", _built(lambda: raw_png(10_001, 10_000)), *cut),
        Case("png_bomb_ihdr", _built(lambda: raw_png(100_000, 100_000)), *cut),
        Case("gif_bomb_frame_extent", _built(_huge_frame_gif), *cut),
        Case("jpeg_bomb_sof", _built(_huge_sof_jpeg), *cut),
        Case("tiff_bomb", _built(lambda: _huge_tiff()), large),
        Case("animated_gif", _built(lambda: _animated("GIF", "L")), "animated_gif_not_supported"),
        Case("animated_webp", _built(lambda: _animated("WEBP")), "animated_gif_not_supported"),
        Case("animated_png", _built(lambda: _animated("PNG")), "animated_gif_not_supported"),
    ]


def _huge_tiff() -> bytes:
    """A TIFF whose header declares 200000 x 200000 pixels."""
    data = bytearray(_encode(Image.new("L", (8, 8)), "TIFF"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * n
        if struct.unpack_from("<H", data, at)[0] in (256, 257):  # ImageWidth, ImageLength
            struct.pack_into("<HII", data, at + 2, 4, 1, 200_000)
    return bytes(data)


def sun_raster(size: tuple[int, int], bgr: bytes) -> bytes:
    """A 24-bit Sun raster file of one colour (Pillow reads the format but cannot write it)."""
    width, height = size
    row = bgr * width + b"\0" * (width * 3 % 2)  # rows padded to 16 bits
    header = struct.pack(">8I", 0x59A66A95, width, height, 24, len(row) * height, 1, 0, 0)
    return header + row * height


def _prepared() -> list[Case]:
    return [
        # A valid GIF whose 32 x 32 frame sits on a 65535 x 65535 screen: the API takes it, and
        # it is too large to decode here, so it goes as it is.
        Case(
            "gif_bomb_logical_screen",
            _built(_huge_screen_gif),
            mime=GIF,
            size=(65535, 65535),
            changed=False,
            unprepared=True,
        ),
        # Formats Pillow reads besides the API's: converted (a lossless source becomes a PNG).
        Case("pcx_converted", _built(lambda: _encode(noise((20, 20)), "PCX")), mime=PNG),
        Case(
            "xbm_converted",
            _built(lambda: _encode(Image.new("1", (16, 16), 1), "XBM")),
            mime=PNG,
            size=(16, 16),
            checks=(_modes("L"), _pixel((3, 3), 255, 0)),
        ),
        Case(
            "sgi_converted",
            _built(lambda: _encode(noise((20, 20)), "SGI")),
            mime=PNG,
            size=(20, 20),
            checks=(_modes("RGB"),),
        ),
        Case(
            "sun_raster_converted",
            _built(lambda: sun_raster((5, 3), b"\x30\x20\x10")),  # blue, green, red
            mime=PNG,
            size=(5, 3),
            checks=(_modes("RGB"), _pixel((2, 1), (0x10, 0x20, 0x30), 0)),
        ),
        Case("png_named_jpg_bytes", small_png, mime=PNG, size=(32, 32), changed=False),
        Case("one_by_one_png", _built(lambda: _encode(Image.new("RGB", (1, 1)), "PNG")), mime=PNG),
        Case("one_by_one_jpeg", _built(lambda: _encode(Image.new("L", (1, 1)), "JPEG")), mime=JPEG),
        Case(
            "gif_with_script_appended",
            _built(lambda: small_gif() + b"<script>alert(1)</script>"),
            mime=PNG,
            changed=True,
            checks=(_lacks(b"<script"),),
        ),
        Case(
            "png_with_zip_appended",
            _built(_png_with_zip),
            mime=PNG,
            changed=True,
            checks=(_lacks(b"PK\3\4"),),
        ),
        Case(
            "noise_png_25mb",
            _built(lambda: _encode(noise((2900, 2900)), "PNG", compress_level=1)),
            mime=PNG,
            size=(768, 768),
        ),
        Case(
            "png_16bit_grey",
            _built(lambda: _encode(Image.new("I;16", (40, 30), 40000), "PNG")),
            mime=PNG,
            checks=(_modes("L"), _pixel((5, 5), 155, 1)),
        ),
        Case(
            "png_16bit_rgb",
            _built(_sixteen_bit_rgb),
            mime=PNG,
            changed=True,
            checks=(_modes("RGB"),),
        ),
        Case(
            "tiff_16bit_grey",
            _built(lambda: _encode(Image.new("I;16", (40, 30), 65535), "TIFF")),
            mime=PNG,
            checks=(_pixel((1, 1), 255, 0),),
        ),
        Case(
            "cmyk_jpeg",
            _built(lambda: _encode(Image.new("CMYK", (1200, 900), (0, 255, 255, 0)), "JPEG")),
            mime=JPEG,
            size=(1024, 768),
            checks=(_modes("RGB"), _pixel((10, 10), (255, 0, 0), 40)),
        ),
        Case(
            "palette_alpha_png_small",
            _built(lambda: _palette_alpha((64, 64))),
            mime=PNG,
            changed=False,
        ),
        Case(
            "palette_alpha_png_large",
            _built(lambda: _palette_alpha((1000, 1000))),
            mime=PNG,
            size=(768, 768),
            checks=(_modes("RGBA"),),
        ),
        Case(
            "animated_gif_first_frame",
            _built(lambda: _animated("GIF", "L")),
            mime=PNG,
            first_frame=True,
        ),
        Case(
            "animated_webp_first_frame",
            _built(lambda: _animated("WEBP")),
            mime=JPEG,
            first_frame=True,
        ),
        Case(
            "animated_png_first_frame", _built(lambda: _animated("PNG")), mime=PNG, first_frame=True
        ),
        Case(
            "panorama_20000x400",
            _built(lambda: _encode(Image.new("RGB", (20000, 400), (10, 120, 200)), "PNG")),
            mime=PNG,
            size=(2048, 40),
            detail="high",
        ),
        Case(
            "tiff_rgb_lzw",
            _built(lambda: _encode(noise((80, 60)), "TIFF", compression="tiff_lzw")),
            mime=PNG,
        ),
        Case(
            "bmp_1bit",
            _built(lambda: _encode(noise((90, 70)).convert("1"), "BMP")),
            mime=PNG,
            checks=(_modes("L"),),
        ),
        Case(
            "ico",
            _built(lambda: _encode(noise((64, 64)), "ICO", sizes=[(64, 64)])),
            mime=PNG,
            size=(64, 64),
        ),
        Case("ppm", _built(lambda: _encode(noise((50, 40)), "PPM")), mime=PNG, size=(50, 40)),
        Case("tga", _built(lambda: _encode(noise((50, 40)), "TGA")), mime=PNG, size=(50, 40)),
        Case("la_png_small", _built(lambda: _la((200, 100))), mime=PNG, changed=False),
        Case(
            "la_png_large",
            _built(lambda: _la((1600, 1000))),
            mime=PNG,
            size=(1228, 768),
            checks=(_modes("LA"),),
        ),
        Case("float_tiff", _built(_float_tiff), mime=PNG, size=(300, 200), checks=(_modes("L"),)),
        Case(
            "mpo_two_frames",
            _built(
                lambda: _encode(
                    noise((80, 60)), "MPO", save_all=True, append_images=[noise((80, 60), seed=1)]
                )
            ),
            mime=JPEG,
            changed=True,
        ),
        Case(
            "jpeg_gps_small_passthrough",
            functools.partial(gps_jpeg, 120, 90),
            mime=JPEG,
            changed=False,
        ),
        Case(
            "jpeg_gps_large_stripped",
            functools.partial(gps_jpeg, 1600, 1200),
            mime=JPEG,
            size=(1024, 768),
            checks=(_no_exif,),
        ),
        Case(
            "jpeg_trailing_garbage",
            _built(lambda: small_jpeg() + b"#!/bin/sh\nrm -rf /\n"),
            mime=JPEG,
            changed=True,
            checks=(_lacks(b"#!/bin/sh"),),
        ),
        Case(
            "grey_jpeg_progressive",
            _built(lambda: _encode(noise((2000, 1500), "L"), "JPEG", progressive=True)),
            mime=JPEG,
            size=(1024, 768),
            checks=(_modes("L"),),
        ),
        Case(
            "webp_alpha_large",
            _built(lambda: _encode(noise((1000, 800), "RGBA"), "WEBP", quality=50)),
            mime=PNG,
            size=(960, 768),
            checks=(_modes("RGBA"),),
        ),
        Case(
            "rgba_png_opaque",
            _built(lambda: _encode(noise((1000, 1000)).convert("RGBA"), "PNG", compress_level=1)),
            mime=PNG,
            size=(768, 768),
            checks=(_modes("RGB"),),
        ),
        Case(
            "png_exif_orientation_6",
            _built(_png_oriented_6),
            mime=PNG,
            size=UPRIGHT_SIZE,
            checks=(_upright_colours,),
        ),
        Case("low_detail_photo", photo_jpeg, mime=JPEG, size=(512, 384), detail="low"),
    ]


def _optional() -> list[Case]:
    if not features.check("avif"):
        return []
    return [
        Case("avif", _built(lambda: _encode(noise((900, 900)), "AVIF")), mime=JPEG, size=(768, 768))
    ]


@functools.cache
def corpus() -> tuple[Case, ...]:
    """Every case; builders run lazily (and once) when a test asks for ``case.data()``."""
    cases = _refused() + _prepared() + _orientation_cases() + _optional()
    assert len({c.name for c in cases}) == len(cases)
    return tuple(cases)


def case(name: str) -> Case:
    """The corpus entry called ``name``."""
    return next(c for c in corpus() if c.name == name)


# -- tiny on the wire, huge once decoded: what the local server must refuse before decoding ---


class _Bits:
    """A little-endian bit writer (the WEBP lossless bitstream is written LSB first)."""

    def __init__(self) -> None:
        self.value = self.count = 0

    def put(self, value: int, bits: int) -> None:
        self.value |= (value & ((1 << bits) - 1)) << self.count
        self.count += bits

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def tiny_huge_webp(
    width: int = 10_000, height: int = 10_000, rgb: tuple[int, int, int] = (10, 200, 30)
) -> bytes:
    """A lossless WEBP of one colour written bit by bit: 34 bytes that decode to ``width`` x
    ``height`` pixels (400 MB at 10000 x 10000), with no transform and one-symbol codes."""
    bits = _Bits()
    bits.put(0x2F, 8)  # the VP8L signature
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(0, 1 + 3)  # no alpha, version 0
    bits.put(0, 1 + 1 + 1)  # no transform, no colour cache, no meta prefix codes
    for symbol in (rgb[1], rgb[0], rgb[2], 255, 0):  # green, red, blue, alpha, distance
        bits.put(1, 1)  # a simple prefix code ...
        bits.put(0, 1)  # ... of one symbol, written in 8 bits
        bits.put(1, 1)
        bits.put(symbol, 8)
    payload = bits.bytes()
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def ico_holding_png(width: int, height: int) -> bytes:
    """An ICO whose one frame is a PNG declaring ``width`` x ``height`` RGBA pixels (Pillow
    decodes an ICO's PNG frames while it opens the ICO)."""
    png = raw_png(width, height, colour=6)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)
    return b"\0\0\1\0" + struct.pack("<H", 1) + entry + png


@functools.cache
def tiff_line_rgba(length: int = 100_000_000) -> bytes:
    """A 1 x ``length`` RGBA TIFF of deflated zeros: about 400 kB that decode to 4 x ``length``
    bytes (400 MB)."""
    compressor = zlib.compressobj(9)
    row = bytes(1024 * 1024)
    strip = b"".join(compressor.compress(row) for _ in range(4 * length // len(row)))
    strip += compressor.compress(bytes(4 * length % len(row))) + compressor.flush()
    tags = [  # (tag, type, count, value): 3 SHORT, 4 LONG
        (256, 4, 1, 1),  # ImageWidth
        (257, 4, 1, length),  # ImageLength
        (258, 3, 4, 0),  # BitsPerSample: 8, 8, 8, 8 (at the offset filled in below)
        (259, 3, 1, 8),  # Compression: deflate
        (262, 3, 1, 2),  # PhotometricInterpretation: RGB
        (273, 4, 1, 0),  # StripOffsets (filled in below)
        (277, 3, 1, 4),  # SamplesPerPixel
        (278, 4, 1, length),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfiguration: chunky
        (338, 3, 1, 2),  # ExtraSamples: unassociated alpha
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    bits_at = 8 + ifd_size
    strip_at = bits_at + 8
    entries = b"".join(
        struct.pack("<HHI", tag, kind, count)
        + struct.pack("<I", {258: bits_at, 273: strip_at}.get(tag, value))
        if kind == 4 or tag == 258
        else struct.pack("<HHIHH", tag, kind, count, value, 0)
        for tag, kind, count, value in tags
    )
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<4H", 8, 8, 8, 8) + strip


def server_worst_inputs() -> list[tuple[str, bytes, str | None]]:
    """Name, bytes and the code the API refuses them with (None: it accepts them, and so must
    the local server, from their header when it cannot decode them), of the worst images to
    send the local server: each a few bytes (or kB) that would decode to hundreds of MB or
    more."""
    return [
        ("webp_10000x10000_34_bytes", tiny_huge_webp(), None),
        ("ico_holding_png_1x178M", ico_holding_png(1, 178_000_000), "invalid_image_format"),
        ("tiff_rgba_1x100M", tiff_line_rgba(), "invalid_image_format"),
        ("png_ihdr_100000x100000", raw_png(100_000, 100_000), "invalid_image"),  # truncated
        ("progressive_jpeg_13370x13370_cmyk", flat_progressive_jpeg(components=4), None),
        ("png_10000x10000_palette_trns", palette_png(10_000, 10_000), None),
    ]


# -- the worst inputs for the client: tiny files that declare huge images -------------------


def _deflate_zeros(total: int, row: bytes | None = None, rows: int = 0) -> bytes:
    """zlib data of ``total`` zero bytes (or ``rows`` copies of ``row``), made in slices."""
    packer = zlib.compressobj(9)
    out = []
    chunk = (row * max(1, (1 << 20) // len(row))) if row else b"\0" * (1 << 20)
    left = rows * len(row) if row else total
    while left > 0:
        piece = chunk[: min(left, len(chunk))]
        out.append(packer.compress(piece))
        left -= len(piece)
    out.append(packer.flush())
    return b"".join(out)


def tall_png(width: int, height: int, colour: int = 0) -> bytes:
    """A PNG of ``width`` x ``height`` zero pixels (8-bit; grey, RGB with colour 2, RGBA with 6)."""
    row = b"\0" * (1 + width * {2: 3, 6: 4}.get(colour, 1))
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", _deflate_zeros(0, row, height))
        + png_chunk(b"IEND", b"")
    )


def ico_hiding_a_tall_png() -> bytes:
    """An ICO whose directory says 1 x 256 but holds a 1 x 178,000,000 PNG."""
    png = tall_png(1, 178_000_000)
    entry = struct.pack("<BBBBHHII", 1, 0, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


def palette_png(width: int, height: int) -> bytes:
    """A PNG of ``width`` x ``height`` palette pixels (index 1, opaque red) whose palette has a
    transparent colour (tRNS for index 0): Pillow opens it as P, and it expands to RGBA."""
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    row = b"\0" + b"\1" * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"PLTE", b"\0\0\0\xc8\x1e\x1e")
        + png_chunk(b"tRNS", b"\0")
        + png_chunk(b"IDAT", _deflate_zeros(0, row, height))
        + png_chunk(b"IEND", b"")
    )


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


@functools.cache
def flat_progressive_jpeg(side: int = 13370, components: int = 3) -> bytes:
    """A progressive JPEG of ``side`` x ``side`` flat mid-grey pixels (YCbCr, or CMYK with 4
    ``components``), written segment by segment: one DC scan, every block's DC difference 0
    (a one-code Huffman table: one 0 bit a block), so about 1 bit a block. libjpeg keeps the
    coefficients of the whole image (128 bytes a block and component) for any progressive
    file, whatever scale it decodes at: 1 GB at 13370 x 13370 with 3 components."""
    ids = bytes(range(1, components + 1))
    frame = struct.pack(">BHHB", 8, side, side, components)
    frame += b"".join(bytes([i, 0x11, 0]) for i in ids)  # no subsampling, table 0
    huffman = bytes([0x00, 1]) + bytes(15) + b"\0"  # DC table 0: one code, "0", for category 0
    scan = bytes([components]) + b"".join(bytes([i, 0x00]) for i in ids) + b"\0\0\0"
    blocks = (-(-side // 8)) ** 2 * components
    data = bytes(blocks // 8)  # the 0 bits, then the last ones padded with 1 bits
    data += bytes([(1 << (8 - blocks % 8)) - 1]) if blocks % 8 else b""
    return (
        b"\xff\xd8"
        + _segment(0xDB, b"\0" + b"\1" * 64)  # quantization table 0: all ones
        + _segment(0xC2, frame)  # SOF2: progressive
        + _segment(0xC4, huffman)
        + _segment(0xDA, scan)  # DC first scan (Ss 0, Se 0, Ah Al 0) of all components
        + data
        + b"\xff\xd9"
    )


def worst_inputs() -> dict[str, Callable[[], bytes]]:
    """Files of 1.4 MB or less whose pixels would take gigabytes: the memory attacks."""
    return {
        "webp_10000x10000_lossless": tiny_huge_webp,
        "ico_hiding_1x178M_png": ico_hiding_a_tall_png,
        "tiff_1x100M_rgba": tiff_line_rgba,
        "png_10000x10000_rgb": lambda: tall_png(10_000, 10_000, colour=2),
        "progressive_jpeg_13370x13370_ycbcr": flat_progressive_jpeg,
        "progressive_jpeg_13370x13370_cmyk": lambda: flat_progressive_jpeg(components=4),
        "png_10000x10000_palette_trns": lambda: palette_png(10_000, 10_000),
        "png_4096x8192_rgb": lambda: tall_png(4096, 8192, colour=2),
    }
