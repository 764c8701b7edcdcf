"""Properties, checked on generated inputs (hypothesis): message mapping, token formula, images.

* **Message mapping**: random mixes of text and image blocks in every dialect LangChain users
  write (OpenAI ``image_url`` dict and string, v1 url/base64, v0, Anthropic), with random
  details, go through ``ChatAfarensis.invoke`` on the scripted API. The request validates
  against ``CreateChatCompletionRequest``, keeps the order of the parts, keeps each image's
  detail (or the model's default), never drops an image, and sends each inline image exactly
  as ``prepare_image`` makes it.
* **Tokens**: ``estimate_image_tokens`` equals an independent implementation of the spec's
  formula in exact fractions, stays within [85, 1445], is 85 at ``low``, is the price of the
  effective size, and is monotone in each side wherever the spec scales nothing. It is *not*
  monotone in each side in general, and cannot be: the spec's own table prices 3000 x 1000
  above 2048 x 4096 (see :func:`test_tokens_are_not_monotone_in_general`).
* **prepare_image** on random valid images (sides 1..3000, modes, PNG/JPEG/WEBP/GIF/BMP/TIFF,
  EXIF orientations): an accepted format, exactly the effective size, never upscaled,
  decodable at the reported size, upright, and tokens consistent.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import httpx2
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from PIL import ExifTags, Image, ImageDraw

from langchain_afarensis_vision import ChatAfarensis, estimate_image_tokens, prepare_image
from langchain_afarensis_vision._api.contract import ACCEPTED_MIME_TYPES, Detail, effective_size
from tests._mock_api import MockAPI, completion
from tests._schema import assert_valid
from tests.hostile_images import noise

DETAILS: tuple[Detail, ...] = ("low", "high", "auto")
PROFILE = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- message mapping ---------------------------------------------------------------------------


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# Inline images: small ones sent as they are, and ones that are converted or resized.
POOL: tuple[bytes, ...] = (
    _encoded(noise((8, 6)), "PNG"),
    _encoded(noise((40, 30)), "JPEG"),
    _encoded(noise((20, 20)).convert("P"), "GIF"),
    _encoded(noise((16, 16), "RGBA"), "WEBP"),
    _encoded(noise((30, 20)), "BMP"),
    _encoded(noise((900, 700)), "JPEG"),
    _encoded(noise((600, 300), "RGBA"), "PNG"),
)
URLS = st.builds(
    "https://example.com/images/{}.jpg?v={}".format, st.integers(0, 99), st.text("ab", max_size=3)
)
DETAIL_OR_NONE = st.none() | st.sampled_from(DETAILS)
TEXT = st.text(min_size=1, max_size=40)


@dataclass(frozen=True)
class Expected:
    """What one content item must become on the wire."""

    text: str | None = None
    url: str | None = None  # a remote URL, sent as is
    data: bytes | None = None  # inline bytes, sent as prepare_image makes them
    detail: Detail | None = None  # None: the model's default


def _data_url(data: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(data).decode()}"


def _openai_dict(url: str | None, data: bytes | None, detail: Detail | None) -> dict[str, Any]:
    image_url: dict[str, Any] = {"url": url or _data_url(data or b"")}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def _openai_str(url: str | None, data: bytes | None, detail: Detail | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "image_url", "image_url": url or _data_url(data or b"")}
    if detail:
        block["detail"] = detail
    return block


def _v1(url: str | None, data: bytes | None, detail: Detail | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "image", "url": url}
    if url is None:  # the declared type is not trusted: the bytes decide
        block = {"type": "image", "base64": base64.b64encode(data or b"").decode()}
        block["mime_type"] = "image/png"
    if detail:
        block["extras"] = {"detail": detail}  # as create_image_block(detail=...) puts it
    return block


def _v1_top_level_detail(
    url: str | None, data: bytes | None, detail: Detail | None
) -> dict[str, Any]:
    block = _v1(url, data, None)
    if detail:
        block["detail"] = detail
    return block


def _v0(url: str | None, data: bytes | None, detail: Detail | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "image", "source_type": "url", "url": url}
    if url is None:
        block = {"type": "image", "source_type": "base64", "mime_type": "image/jpeg"}
        block["data"] = base64.b64encode(data or b"").decode()
    if detail:
        block["detail"] = detail
    return block


def _anthropic(url: str | None, data: bytes | None, detail: Detail | None) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "url", "url": url}
    if url is None:
        source = {"type": "base64", "media_type": "image/webp"}
        source["data"] = base64.b64encode(data or b"").decode()
    return {"type": "image", "source": source}  # Anthropic blocks name no detail


FORMS: dict[str, Callable[[str | None, bytes | None, Detail | None], dict[str, Any]]] = {
    "openai_dict": _openai_dict,
    "openai_str": _openai_str,
    "v1": _v1,
    "v1_top_level_detail": _v1_top_level_detail,
    "v0": _v0,
    "anthropic": _anthropic,
}


@st.composite
def image_blocks(draw: st.DrawFn) -> tuple[dict[str, Any], Expected]:
    """An image in one of the dialects, remote or inline, with or without a detail."""
    inline = draw(st.booleans())
    data = draw(st.sampled_from(POOL)) if inline else None
    url = None if inline else draw(URLS)
    detail = draw(DETAIL_OR_NONE)
    form = draw(st.sampled_from(sorted(FORMS)))
    block = FORMS[form](url, data, detail)
    named = None if form == "anthropic" else detail
    return block, Expected(url=url, data=data, detail=named)


@st.composite
def content_items(draw: st.DrawFn) -> tuple[Any, Expected]:
    kind = draw(st.sampled_from(["text_block", "string", "image", "image"]))
    if kind == "image":
        return draw(image_blocks())
    text = draw(TEXT)
    if kind == "string":
        return text, Expected(text=text)
    return {"type": "text", "text": text}, Expected(text=text)


def _scripted(default_detail: Detail) -> tuple[ChatAfarensis, MockAPI, httpx2.Client]:
    api = MockAPI().queue(completion("ok"))
    client = httpx2.Client(transport=httpx2.MockTransport(api.handler))
    model = ChatAfarensis(
        api_key="sk-test-properties-0123456789",
        max_retries=0,
        image_detail=default_detail,
        http_client=client,
    )
    return model, api, client


def _check_part(part: dict[str, Any], expected: Expected, default: Detail) -> None:
    if expected.text is not None:
        assert part == {"type": "text", "text": expected.text}
        return
    assert part["type"] == "image_url"
    detail = expected.detail or default
    assert part["image_url"]["detail"] == detail
    if expected.url is not None:
        assert part["image_url"]["url"] == expected.url
    else:
        assert expected.data is not None
        prepared = prepare_image(expected.data, detail)
        assert part["image_url"]["url"] == prepared.data_url


@PROFILE
@given(
    messages=st.lists(st.lists(content_items(), min_size=1, max_size=6), min_size=1, max_size=3),
    system=st.none() | TEXT,
    default=st.sampled_from(DETAILS),
)
def test_message_mapping_keeps_every_part_in_order(
    messages: list[list[tuple[Any, Expected]]], system: str | None, default: Detail
) -> None:
    conversation: list[BaseMessage] = [SystemMessage(system)] if system else []
    for n, items in enumerate(messages):
        if n:
            conversation.append(AIMessage(f"answer {n}"))
        conversation.append(HumanMessage(content=[content for content, _ in items]))
    model, api, client = _scripted(default)
    with client:
        model.invoke(conversation)
    (body,) = api.bodies
    assert_valid("CreateChatCompletionRequest", body)
    wire = body["messages"]
    if system:
        assert wire.pop(0) == {"role": "system", "content": system}
    users = [m for m in wire if m["role"] == "user"]
    assert [m["role"] for m in wire] == ["user", "assistant"] * (len(messages) - 1) + ["user"]
    for message, items in zip(users, messages, strict=True):
        assert len(message["content"]) == len(items), "a part was dropped or added"
        for part, (_, expected) in zip(message["content"], items, strict=True):
            _check_part(part, expected, default)
    sent_images = sum(p["type"] == "image_url" for m in users for p in m["content"])
    assert sent_images == sum(e.text is None for items in messages for _, e in items)


@PROFILE
@given(
    results=st.lists(
        st.lists(image_blocks() | content_items(), min_size=0, max_size=4), min_size=1, max_size=3
    ),
    default=st.sampled_from(DETAILS),
)
def test_tool_message_images_follow_in_one_user_message(
    results: list[list[tuple[Any, Expected]]], default: Detail
) -> None:
    calls = [{"id": f"call_{n}", "name": "look", "args": {}} for n in range(len(results))]
    conversation: list[BaseMessage] = [HumanMessage("Look."), AIMessage("", tool_calls=calls)]
    for n, items in enumerate(results):
        content: Any = [c for c, _ in items] or "nothing"
        conversation.append(ToolMessage(content=content, tool_call_id=f"call_{n}"))
    model, api, client = _scripted(default)
    with client:
        model.invoke(conversation)
    (body,) = api.bodies
    assert_valid("CreateChatCompletionRequest", body)
    wire = body["messages"][2:]
    tools, rest = wire[: len(results)], wire[len(results) :]
    assert [t["tool_call_id"] for t in tools] == [f"call_{n}" for n in range(len(results))]
    images = [(n, e) for n, items in enumerate(results) for _, e in items if e.text is None]
    if not images:
        assert rest == []
        return
    (user,) = rest
    assert user["role"] == "user"
    sent = [p for p in user["content"] if p["type"] == "image_url"]
    assert len(sent) == len(images), "a tool's image was dropped"
    for part, (_, expected) in zip(sent, images, strict=True):
        _check_part(part, expected, default)
    labels = [p["text"] for p in user["content"] if p["type"] == "text"]
    assert labels == [
        f"Image(s) returned by tool call call_{n}:" for n in sorted({n for n, _ in images})
    ]


# -- the token formula -------------------------------------------------------------------------


def spec_tokens(width: int, height: int, detail: Detail) -> int:
    """The spec's formula, step by step, in exact fractions (tests/data/spec, "Detail and image
    tokens")."""
    if detail == "low":
        return 85
    w, h = width, height
    if max(w, h) > 2048:  # (1) fit in 2048 x 2048, keeping the aspect ratio
        ratio = Fraction(2048, max(w, h))
        w, h = max(1, math.floor(w * ratio)), max(1, math.floor(h * ratio))
    if w > 768 and h > 768:  # (2) then the shorter side to 768
        ratio = Fraction(768, min(w, h))
        w, h = max(1, math.floor(w * ratio)), max(1, math.floor(h * ratio))
    tiles = math.ceil(Fraction(w, 512)) * math.ceil(Fraction(h, 512))
    return 170 * tiles + 85


SIDES = st.integers(1, 20_000) | st.integers(1, 3_000) | st.integers(1, 10**6)


@settings(max_examples=2000, deadline=None, database=None)
@given(width=SIDES, height=SIDES, detail=st.sampled_from(DETAILS))
def test_tokens_match_the_spec_formula(width: int, height: int, detail: Detail) -> None:
    tokens = estimate_image_tokens(width, height, detail)
    assert tokens == spec_tokens(width, height, detail)
    assert 85 <= tokens <= 1445
    if detail == "low":
        assert tokens == 85
    seen = effective_size(width, height, detail)
    assert seen[0] <= width
    assert seen[1] <= height


def test_tokens_match_the_spec_table() -> None:
    table: list[tuple[tuple[int, int, Detail], int]] = [
        ((1024, 1024, "high"), 765),
        ((2048, 4096, "high"), 1105),
        ((4096, 8192, "low"), 85),
        ((500, 500, "high"), 255),
        ((3000, 1000, "high"), 1445),
        ((4032, 3024, "auto"), 765),
    ]
    for (w, h, detail), tokens in table:
        assert estimate_image_tokens(w, h, detail) == spec_tokens(w, h, detail) == tokens


UNSCALED = st.integers(1, 2048)


@settings(max_examples=1000, deadline=None, database=None)
@given(a=UNSCALED, b=UNSCALED, other=st.integers(1, 768), detail=st.sampled_from(DETAILS))
def test_tokens_are_monotone_where_nothing_is_scaled(
    a: int, b: int, other: int, detail: Detail
) -> None:
    """With one side at most 768 and both at most 2048 the image is priced as it is: a longer
    side never costs less (in either position)."""
    small, large = sorted((a, b))
    assert estimate_image_tokens(small, other, detail) <= estimate_image_tokens(
        large, other, detail
    )
    assert estimate_image_tokens(other, small, detail) <= estimate_image_tokens(
        other, large, detail
    )


@settings(max_examples=1000, deadline=None, database=None)
@given(w=SIDES, h=SIDES, detail=st.sampled_from(DETAILS))
def test_tokens_are_the_price_of_what_the_model_sees(w: int, h: int, detail: Detail) -> None:
    """An image costs what its effective size costs, and resizing to the effective size changes
    neither what is seen nor the bill (what prepare_image relies on)."""
    seen = effective_size(w, h, detail)
    assert effective_size(*seen, detail) == seen
    assert estimate_image_tokens(*seen, detail) == estimate_image_tokens(w, h, detail)


def test_tokens_are_not_monotone_in_general() -> None:
    """The spec's formula (and so the package) is not monotone in each side of the source:
    growing a side can shrink the effective size, and the bill. The spec's own table shows it."""
    assert estimate_image_tokens(3000, 1000, "high") == 1445  # spec table
    assert estimate_image_tokens(2048, 4096, "high") == 1105  # spec table: larger, cheaper
    assert estimate_image_tokens(2048, 770, "high") == 1445  # seen as 2042 x 768
    assert estimate_image_tokens(2048, 1024, "high") == 1105  # seen as 1536 x 768
    assert estimate_image_tokens(2048, 600, "high") == 1445  # seen as is
    assert estimate_image_tokens(4000, 600, "high") == 765  # seen as 2048 x 307


# -- prepare_image on random valid images -----------------------------------------------------

MODES: dict[str, tuple[str, ...]] = {
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"),
    "JPEG": ("RGB", "L", "CMYK"),
    "WEBP": ("RGB", "RGBA"),
    "GIF": ("P", "L"),
    "BMP": ("RGB", "L", "P", "1"),
    "TIFF": ("RGB", "RGBA", "L", "CMYK", "I;16", "1"),
}
EXIF_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF"})
# The transpose that stores an upright image so that EXIF orientation n turns it back.
STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright(size: tuple[int, int], mode: str) -> Image.Image:
    """Black with a white top-left quadrant: its orientation can be read in any mode."""
    image = Image.new("L", size, 0)
    if min(size) >= 2:
        ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] // 2 - 1), fill=255)
    if mode == "I;16":
        return image.convert("I").point(lambda v: v * 257).convert("I;16")
    return image.convert(mode)


# Sides 1..3000, with the formula's boundaries and large images drawn as often as small ones.
SIDE = (
    st.integers(1, 64)
    | st.integers(65, 3000)
    | st.sampled_from([511, 512, 513, 767, 768, 769, 1023, 1024, 2047, 2048, 2049, 3000])
)


Encoded = tuple[bytes, tuple[int, int], int, str]
"""Encoded bytes, the upright size, the EXIF orientation, and the format."""


def encoded(fmt: str, mode: str, size: tuple[int, int], orientation: int) -> Encoded:
    stored = upright(size, mode)
    if orientation in STORE:
        stored = stored.transpose(STORE[orientation])
    options: dict[str, Any] = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = orientation
        options["exif"] = exif.tobytes()
    if fmt == "JPEG":
        options["quality"] = 85
    buffer = io.BytesIO()
    stored.save(buffer, fmt, **options)
    return buffer.getvalue(), size, orientation, fmt


@st.composite
def images(draw: st.DrawFn) -> Encoded:
    fmt = draw(st.sampled_from(sorted(MODES)))
    mode = draw(st.sampled_from(MODES[fmt]))
    size = (draw(SIDE), draw(SIDE))
    orientation = draw(st.integers(1, 8)) if fmt in EXIF_FORMATS else 1
    return encoded(fmt, mode, size, orientation)


def _luma(image: Image.Image, xy: tuple[int, int]) -> float:
    value = image.convert("L").getpixel(xy)
    assert isinstance(value, int | float)
    return float(value)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(image=images(), detail=st.sampled_from(DETAILS))
# Always tried: what these properties found (both fixed). 16-bit images were refused as
# "corrupt" when shrunk 2x or more (Pillow has no reduce() for I;16); and TIFFs were turned
# twice (recent Pillow, 13 here, applies a TIFF's orientation itself as it loads it).
@example(image=encoded("PNG", "I;16", (1600, 1200), 1), detail="low")
@example(image=encoded("TIFF", "I;16", (3000, 40), 1), detail="auto")
@example(image=encoded("TIFF", "RGB", (96, 64), 6), detail="auto")
@example(image=encoded("TIFF", "L", (64, 48), 2), detail="high")
def test_prepare_image_sends_the_effective_size_upright(image: Encoded, detail: Detail) -> None:
    data, size, orientation, fmt = image
    longest = max(size)
    event(f"{fmt}: {'over 2048' if longest > 2048 else 'over 768' if longest > 768 else 'small'}")
    prepared = prepare_image(data, detail)
    assert prepared.mime_type in ACCEPTED_MIME_TYPES
    assert prepared.source_size == size
    assert prepared.size == effective_size(*size, detail)
    assert prepared.width <= size[0]
    assert prepared.height <= size[1]
    assert prepared.tokens == estimate_image_tokens(*size, detail)
    assert prepared.tokens == estimate_image_tokens(*prepared.size, detail)
    if not prepared.changed:
        assert prepared.data == data
        assert orientation == 1
    with Image.open(io.BytesIO(prepared.data)) as out:
        assert f"image/{(out.format or '').lower()}" == prepared.mime_type
        assert out.size == prepared.size
        assert not getattr(out, "is_animated", False)
        out.load()
        w, h = out.size
        if w >= 16 and h >= 16:  # upright: the white quadrant is at the top left
            assert _luma(out, (w // 4, h // 4)) > 160, (fmt, orientation)
            assert _luma(out, (3 * w // 4, 3 * h // 4)) < 96, (fmt, orientation)
    json.dumps(repr(prepared))  # and its repr stays printable
