"""The local server's image rules: ``inspect_image`` checks by the API's own rules."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from PIL import BmpImagePlugin, IcoImagePlugin, Image, ImageFile, TiffImagePlugin, _webp

from langchain_afarensis_vision._sources import opening
from langchain_afarensis_vision._sources.declared import webp_canvas
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.server import _analysis, _ocr
from langchain_afarensis_vision.server._images import decode_image, inspect_image, read_header
from tests import hostile_images as hostile
from tests._support import TEST_IMAGES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("hopper.png", ("image/png", 128, 128), id="png"),
        pytest.param("hopper.jpg", ("image/jpeg", 128, 128), id="jpeg"),
        pytest.param("hopper.webp", ("image/webp", 128, 128), id="webp"),
        pytest.param("hopper.gif", ("image/gif", 128, 128), id="static-gif"),
        pytest.param("flower.jpg", ("image/jpeg", 480, 360), id="photo"),
        pytest.param("hopper.tif", "invalid_image_format", id="tiff-refused"),
        pytest.param("hopper.bmp", "invalid_image_format", id="bmp-refused"),
        pytest.param("iss634.gif", "animated_gif_not_supported", id="animated"),
    ],
)
def test_inspect_image_samples(name: str, expected: tuple[str, int, int] | str) -> None:
    data = (TEST_IMAGES / name).read_bytes()
    if isinstance(expected, str):
        with pytest.raises(InvalidImageError) as raised:
            inspect_image(data)
        assert raised.value.code == expected
    else:
        info = inspect_image(data)
        assert (info.mime_type, info.width, info.height) == expected


def test_inspect_image_refuses_over_20_mb_and_broken_data() -> None:
    with pytest.raises(InvalidImageError) as raised:
        inspect_image(b"\x89PNG" + b"\0" * (20 * 1024 * 1024))
    assert raised.value.code == "image_too_large"
    jpeg = (TEST_IMAGES / "flower.jpg").read_bytes()
    with pytest.raises(InvalidImageError) as raised:
        inspect_image(jpeg[: len(jpeg) // 2])
    assert raised.value.code == "invalid_image"
    with pytest.raises(InvalidImageError) as raised:
        inspect_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert raised.value.code == "invalid_image_format"


def test_inspect_image_reports_the_oriented_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(buffer, "JPEG", exif=exif)
    info = inspect_image(buffer.getvalue())
    assert (info.mime_type, info.width, info.height, info.orientation) == ("image/jpeg", 20, 40, 6)


@pytest.mark.parametrize("reader", [_analysis.sample, lambda data: _ocr._recognise(data)])
def test_pixel_readers_use_the_same_allow_listed_opener(reader: Any) -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InvalidImageError) as raised:
        reader(eps)
    assert raised.value.code == "invalid_image_format"


# -- refused before Pillow parses or decodes them ------------------------------------------------


def _never(what: str) -> Any:
    def called(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{what} was called")

    return called


@pytest.mark.parametrize(
    "data",
    [
        hostile.ico_holding_png(1, 178_000_000),
        hostile.tiff_line_rgba(1000),
        (TEST_IMAGES / "hopper.bmp").read_bytes(),
    ],
    ids=["ico-holding-a-1x178M-png", "tiff-rgba-line", "bmp"],
)
def test_formats_the_api_refuses_are_never_parsed(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for plugin in (IcoImagePlugin.IcoImageFile, TiffImagePlugin.TiffImageFile):
        monkeypatch.setattr(plugin, "_open", _never(f"{plugin.__name__}._open"))
    monkeypatch.setattr(BmpImagePlugin.BmpImageFile, "_open", _never("BmpImageFile._open"))
    monkeypatch.setattr(opening, "_check_ico", _never("the ICO frame check"))
    with pytest.raises(InvalidImageError) as raised:
        inspect_image(data)
    assert raised.value.code == "invalid_image_format", raised.value.message


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (hostile.tiny_huge_webp(), 400_000_000),
        (hostile.tall_png(8_000, 8_000, colour=6), 8_000 * (8_000 * 4 + 8)),  # a pointer a row
        (hostile.tall_png(6_000, 6_000, colour=2), 6_000 * (6_000 * 4 + 8)),
    ],
    ids=["webp-10000x10000-in-34-bytes", "png-8000x8000-rgba", "png-6000x6000-rgb"],
)
def test_what_would_decode_past_the_budget_is_described_from_its_header_undecoded(
    data: bytes, declared: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API accepts it (at most 20 MB, its format): so does the server, unexamined.
    monkeypatch.setattr(_webp, "WebPAnimDecoder", _never("libwebp's decoder"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", _never("ImageFile.load"))
    info = inspect_image(data, limit=declared - 1)
    assert not info.examined
    assert info.width * info.height * 4 <= declared


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        (hostile.flat_progressive_jpeg(4000, 3), 3 * 500 * 500 * 128),  # coefficients, 1/8 scale
        (hostile.flat_progressive_jpeg(4000, 4), 4 * 500 * 500 * 128),
        (hostile.palette_png(4000, 3000), 3000 * (4000 * 9 + 3 * 8)),  # P, then RGBA twice
    ],
    ids=["progressive-jpeg-ycbcr", "progressive-jpeg-cmyk", "palette-png-with-trns"],
)
def test_the_estimate_counts_what_the_decoder_allocates(data: bytes, decoded: int) -> None:
    header = read_header(data)
    assert header.decoded >= decoded  # the output image comes on top of the decoder's buffers
    assert header.decoded < decoded * 1.2


def test_an_image_within_the_budget_is_decoded() -> None:
    info = inspect_image(hostile.tiny_huge_webp(2000, 1000))
    assert (info.mime_type, info.width, info.height) == ("image/webp", 2000, 1000)


@pytest.mark.parametrize(
    ("save", "size"),
    [
        ({}, (1234, 567)),
        ({"lossless": True}, (640, 2)),
        ({"exif": Image.Exif().tobytes()}, (3, 4000)),
    ],
    ids=["lossy", "lossless", "extended"],
)
def test_webp_canvas_is_read_from_the_header(save: dict[str, Any], size: tuple[int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA" if "exif" in save else "RGB", size).save(buffer, "WEBP", **save)
    assert webp_canvas(buffer.getvalue()) == size
    assert webp_canvas(hostile.tiny_huge_webp(10_000, 9_000)) == (10_000, 9_000)
    assert webp_canvas(hostile.small_png()) is None


def test_the_check_and_the_colours_share_one_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server decodes a PNG whole to check it: the colours are measured from that decode.
    buffer = io.BytesIO()
    hostile.noise((40, 30), seed=2218).save(buffer, "PNG")
    data = buffer.getvalue()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    expected = _analysis.analyse(data, b"another key")
    loads: list[str | None] = []
    load = ImageFile.ImageFile.load

    def counted(image: ImageFile.ImageFile) -> Any:
        if image.tile:  # pixels still to decode (a loaded image's load() does nothing)
            loads.append(image.format)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    decode_image(data, digest)
    assert _analysis.analyse(data, digest) == expected
    assert loads == ["PNG"]
