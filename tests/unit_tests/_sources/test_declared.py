"""A header declaring more pixels than its data can hold is refused before any decode."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from langchain_afarensis_vision._sources.declared import check_enough_data
from langchain_afarensis_vision.errors import InvalidImageError
from tests import hostile_images as hostile


def _zeros_png(side: int, depth: int = 8, colour: int = 2) -> bytes:
    """A ``side`` x ``side`` PNG of zeros, as tight as zlib makes it (near deflate's best)."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + side * depth * _channels(colour) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, depth, colour, 0, 0, 0)
    chunks = hostile.png_chunk(b"IHDR", header) + hostile.png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + hostile.png_chunk(b"IEND", b"")


def _channels(colour: int) -> int:
    return {0: 1, 2: 3, 6: 4}[colour]


@pytest.mark.parametrize(
    "name",
    ["png_bomb_ihdr", "png_just_over_pixel_budget", "gif_bomb_frame_extent", "jpeg_bomb_sof"],
)
def test_a_header_its_data_cannot_hold_is_truncated(name: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        check_enough_data(hostile.case(name).data())
    assert caught.value.code == "invalid_image"
    assert "truncated" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        _zeros_png(4000),  # RGB zeros: zlib reaches about 1,030 bytes out for one in
        _zeros_png(4000, depth=1, colour=0),
        hostile.case("gif_bomb_logical_screen").data(),  # a huge screen, a 32 x 32 frame
        hostile.small_png(),
        hostile.small_gif(),
        hostile.photo_jpeg(),
        hostile.tiny_huge_webp(),  # no bound for WEBP
        b"",
        b"\x89PNG",
    ],
    ids=[
        "png-zeros-rgb",
        "png-zeros-1bit",
        "gif-screen",
        "png",
        "gif",
        "jpeg",
        "webp",
        "empty",
        "stub",
    ],
)
def test_valid_data_passes(data: bytes) -> None:
    check_enough_data(data)


def test_a_tightly_compressed_valid_png_decodes_and_passes() -> None:
    data = _zeros_png(2000)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    assert len(data) * 1000 < 2000 * 2000 * 3  # near the bound
    check_enough_data(data)
