"""The image-token formula against the spec's table, and its edge cases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

import langchain_afarensis_vision
from langchain_afarensis_vision import estimate_image_tokens
from langchain_afarensis_vision._api.contract import (
    ACCEPTED_MIME_TYPES,
    Detail,
    ErrorCode,
    ErrorType,
    effective_size,
    lone_surrogate,
)
from langchain_afarensis_vision.errors import InvalidImageError
from tests._support import TEST_DATA


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


# -- the contract is written once ------------------------------------------------------------

PACKAGE = Path(langchain_afarensis_vision.__file__).parent


def _quoted(values: Iterable[str]) -> re.Pattern[str]:
    """Any of ``values`` between quotes, as a literal in code."""
    return re.compile("[\"'](?:" + "|".join(map(re.escape, values)) + ")[\"']")


RESTATED = {
    "an error code": _quoted(ErrorCode),
    "an error type": _quoted(ErrorType),
    "an accepted MIME type": _quoted(ACCEPTED_MIME_TYPES),
    "a URL scheme check": re.compile(r"""\{["']https?["'], ["']https?["']|["']https?://["']"""),
}


def _package_lines() -> list[tuple[str, int, str]]:
    return [
        (str(path.relative_to(PACKAGE)), number, line)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "_api" / "contract.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
    ]


@pytest.mark.parametrize("what", RESTATED)
def test_no_rule_is_restated_outside_the_contract(what: str) -> None:
    pattern = RESTATED[what]
    found = [
        f"{name}:{n}: {line.strip()}" for name, n, line in _package_lines() if pattern.search(line)
    ]
    assert found == [], f"{what} written outside _api/contract.py"


def test_the_grep_would_catch_a_restated_code() -> None:
    assert RESTATED["an error code"].search('raise Error("x", code="image_too_large")')
    assert RESTATED["a URL scheme check"].search('if scheme not in {"http", "https"}:')
    assert not RESTATED["an error code"].search("code=ErrorCode.IMAGE_TOO_LARGE")


def test_error_codes_and_types_are_the_specs() -> None:
    spec = (TEST_DATA / "spec" / "afarensis-vision-api.md").read_text()
    for value in [*ErrorCode, *ErrorType]:
        assert f"`{value}`" in spec, value
    assert InvalidImageError("x").code is ErrorCode.INVALID_IMAGE
    assert str(ErrorCode.IMAGE_TOO_LARGE) == "image_too_large"  # a StrEnum: it is its text


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"messages": [{"content": "fine ✓ 𝄞"}]}, None, id="pairs-are-fine"),
        pytest.param({"a": "x" * 10**6}, None, id="long-ascii"),
        pytest.param("ab\ud800", "the text (character 2)", id="string"),
        pytest.param({"stop": ["ok", "\udc80"]}, "stop[1] (character 0)", id="list"),
        pytest.param(
            {"messages": [{"content": [{"text": "é\ud83d"}]}]},
            "messages[0].content[0].text (character 1)",
            id="nested",
        ),
        pytest.param({"meta": {"k\ud800": 1}}, "a key of meta (character 1)", id="key"),
        pytest.param({"n": 1, "t": (None, True)}, None, id="no-strings"),
    ],
)
def test_lone_surrogate_names_the_string(body: object, where: str | None) -> None:
    assert lone_surrogate(body) == where
