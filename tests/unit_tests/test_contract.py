"""The image-token formula against the spec's table, and its edge cases."""

from __future__ import annotations

import pytest

from langchain_afarensis_vision import estimate_image_tokens
from langchain_afarensis_vision._contract import Detail, effective_size


@pytest.mark.parametrize(
    ("width", "height", "detail", "size", "tokens"),
    [
        pytest.param(1024, 1024, "high", (768, 768), 765, id="1024x1024-high"),
        pytest.param(2048, 4096, "high", (768, 1536), 1105, id="2048x4096-high"),
        pytest.param(4096, 8192, "low", (256, 512), 85, id="4096x8192-low"),
        pytest.param(500, 500, "high", (500, 500), 255, id="500x500-high"),
        pytest.param(3000, 1000, "high", (2048, 682), 1445, id="3000x1000-high"),
        pytest.param(4032, 3024, "auto", (1024, 768), 765, id="4032x3024-auto"),
    ],
)
def test_spec_table(
    width: int, height: int, detail: Detail, size: tuple[int, int], tokens: int
) -> None:
    assert effective_size(width, height, detail) == size
    assert estimate_image_tokens(width, height, detail) == tokens


@pytest.mark.parametrize(
    ("width", "height", "detail", "size", "tokens"),
    [
        pytest.param(1, 5000, "high", (1, 2048), 765, id="1x5000-no-side-rounds-to-0"),
        pytest.param(5000, 1, "high", (2048, 1), 765, id="5000x1"),
        pytest.param(1, 100000, "low", (1, 512), 85, id="1x100000-low"),
        pytest.param(20000, 400, "high", (2048, 40), 765, id="panorama"),
        pytest.param(1, 1, "high", (1, 1), 255, id="1x1"),
        pytest.param(512, 512, "auto", (512, 512), 255, id="512-never-upscaled"),
        pytest.param(100, 100, "low", (100, 100), 85, id="small-low"),
        pytest.param(2048, 768, "high", (2048, 768), 1445, id="max-cost"),
        pytest.param(769, 769, "high", (768, 768), 765, id="just-over-768"),
        pytest.param(768, 5000, "high", (314, 2048), 765, id="tall"),
        pytest.param(1920, 1080, "auto", (1365, 768), 1105, id="full-hd"),
        pytest.param(4000, 3000, "high", (1024, 768), 765, id="12mp-4-3"),
    ],
)
def test_edge_cases(
    width: int, height: int, detail: Detail, size: tuple[int, int], tokens: int
) -> None:
    assert effective_size(width, height, detail) == size
    assert estimate_image_tokens(width, height, detail) == tokens


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-1, 5)])
def test_sides_must_be_positive(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        estimate_image_tokens(width, height)


def test_unknown_detail() -> None:
    with pytest.raises(ValueError, match="detail must be one of"):
        estimate_image_tokens(10, 10, "original")  # type: ignore[arg-type]
