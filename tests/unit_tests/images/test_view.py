"""What the model sees: the token arithmetic in words, and a PreparedImage drawn with its tiles."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from langchain_afarensis_vision import (
    estimate_image_tokens,
    explain_image_tokens,
    prepare_image,
)
from langchain_afarensis_vision._api.contract import DETAILS, Detail, image_tiles
from langchain_afarensis_vision.images import PreparedImage, _view
from langchain_afarensis_vision.images._view import GRID, caption, picture_png, tile_picture


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").resize(size).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> PreparedImage:
    return prepare_image(_jpeg((4032, 3024)))


def test_explain_spells_out_each_step() -> None:
    assert explain_image_tokens(4032, 3024) == (
        "4032x3024 at detail auto (as high) -> fits 2048: 2048x1536 -> shortest side 768: "
        "1024x768 -> 2x2 tiles of 512 -> 4 x 170 + 85 = 765 tokens"
    )
    assert explain_image_tokens(500, 500, "high") == (
        "500x500 at detail high -> fits 2048: as is -> shortest side 768: as is -> "
        "1x1 tiles of 512 -> 1 x 170 + 85 = 255 tokens"
    )
    assert explain_image_tokens(4096, 8192, "low") == (
        "4096x8192 at detail low -> fits 512: 256x512 -> 85 tokens flat"
    )
    assert explain_image_tokens(300, 200, "low").endswith("fits 512: as is -> 85 tokens flat")


@pytest.mark.parametrize("detail", DETAILS)
@pytest.mark.parametrize(
    "size", [(1, 1), (512, 512), (513, 512), (1080, 6000), (3000, 1000), (4032, 3024)]
)
def test_explain_ends_with_the_estimate(size: tuple[int, int], detail: Detail) -> None:
    text = explain_image_tokens(*size, detail)
    tokens = estimate_image_tokens(*size, detail)
    assert re.search(rf"(?<!\d){tokens} tokens( flat)?$", text), text
    columns, rows = image_tiles(*size, detail)
    assert tokens == 170 * columns * rows + 85


def test_explain_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        explain_image_tokens(0, 10)
    with pytest.raises(ValueError, match="detail"):
        explain_image_tokens(10, 10, "ultra")  # type: ignore[arg-type]


def test_html_shows_the_picture_and_its_caption(photo: PreparedImage) -> None:
    shown = photo._repr_html_()
    assert shown.startswith("<figure")
    assert shown.endswith("</figure>")
    assert '<img src="data:image/jpeg;base64,' in shown
    assert 'width="384" height="288"' in shown  # a thumbnail: the notebook stays small
    assert f"4032x3024 JPEG, {photo.source_bytes:,} bytes -&gt; 1024x768 JPEG" in shown
    assert "detail auto: 2x2 tiles of 512 px: 4 x 170 + 85 = 765 tokens" in shown
    assert len(shown) < 80_000


def test_png_is_the_picture_with_its_tile_grid(photo: PreparedImage) -> None:
    data = photo._repr_png_()
    assert data is not None
    with Image.open(io.BytesIO(data)) as png:
        assert (png.format, png.size) == ("PNG", (512, 384))
    picture = tile_picture(photo, 512)
    assert picture is not None
    assert picture.getpixel((256, 100)) == GRID  # the line between the two tile columns
    assert picture.getpixel((100, 256)) == GRID  # between the two tile rows (512 px: 256 here)
    assert picture.getpixel((128, 128)) != GRID  # inside a tile


def test_a_tall_screenshot_is_one_column_of_four_tiles() -> None:
    tall = prepare_image(Image.new("RGB", (1080, 6000), "white"))
    assert caption(tall)[1] == "detail auto: 1x4 tiles of 512 px: 4 x 170 + 85 = 765 tokens"
    picture = tile_picture(tall, 768)
    assert picture is not None
    assert picture.size == (138, 768)
    assert [picture.getpixel((60, y)) == GRID for y in (192, 384, 576)] == [True] * 3


def test_low_detail_has_no_tiles_and_unchanged_says_so() -> None:
    small = prepare_image(_jpeg((400, 300)), "low")
    assert caption(small) == [
        f"400x300 JPEG, {len(small.data):,} bytes, unchanged",
        "detail low: 85 tokens flat (no tiles)",
    ]
    picture = tile_picture(small, 768)
    assert picture is not None
    assert picture.size == (400, 300)
    assert picture.getpixel((200, 150)) != GRID  # only the frame


def test_picture_file_has_its_caption_below(photo: PreparedImage) -> None:
    data = picture_png(photo)
    assert data is not None
    with Image.open(io.BytesIO(data)) as png:
        assert png.width == 768
        assert png.height > 576


def test_an_image_too_large_to_decode_is_described_not_drawn(
    photo: PreparedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_view, "DECODE_BUDGET", 0)
    assert photo._repr_png_() is None
    assert picture_png(photo) is None
    assert "too large to draw here" in photo._repr_html_()
    assert "765 tokens" in photo._repr_html_()
