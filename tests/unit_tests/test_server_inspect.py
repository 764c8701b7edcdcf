"""The local server's image rules: ``inspect_image`` checks by the API's own rules."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.server import _analysis, _ocr
from langchain_afarensis_vision.server._images import inspect_image
from tests._support import SHARED_IMAGES


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
def test_inspect_image_shared(name: str, expected: tuple[str, int, int] | str) -> None:
    data = (SHARED_IMAGES / name).read_bytes()
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
    jpeg = (SHARED_IMAGES / "flower.jpg").read_bytes()
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
