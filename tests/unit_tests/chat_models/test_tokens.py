"""``_tokens``: offline prompt-token counts, by the API's image formula and cl100k_base text.

Expected image costs are worked out here by hand from the spec's formula: fit in 2048 x 2048,
bring the shorter side down to 768 when both exceed it, then 85 + 170 per 512-px tile; ``low`` is
85 whatever the size.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any

import httpx2
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_afarensis_vision._api.contract import Detail, text_tokens, tools_tokens
from langchain_afarensis_vision._sources.urls import UrlPolicy
from langchain_afarensis_vision.chat_models._messages import (
    BinaryImage,
    ImagePart,
    ImageUrl,
    SealedImage,
)
from langchain_afarensis_vision.chat_models._tokens import count_messages, image_tokens
from tests._tiktoken_offline import offline_tiktoken
from tests.hostile_images import noise, tall_png

PRIMER = 3  # the reply
MESSAGE = 3  # each message's framing
NAME = 1  # a message's name
URL = "https://example.com/photo.png"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def base64_block(data: bytes, detail: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "image", "base64": b64(data), "mime_type": "image/png"}
    if detail:
        block["extras"] = {"detail": detail}
    return block


def data_url_block(data: bytes, detail: str | None) -> dict[str, Any]:
    image_url = {"url": f"data:image/png;base64,{b64(data)}"}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def url_block(detail: str | None) -> dict[str, Any]:
    image_url = {"url": URL}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def count_blocks(
    *blocks: dict[str, Any], default: Detail = "auto", fetch: Fetcher | None = None
) -> int:
    """Tokens for one user message holding ``blocks``, less the primer and its framing."""
    urls = None if fetch is None else fetch.policy
    total = count_messages([HumanMessage(content=list(blocks))], None, default, urls)
    return total - PRIMER - MESSAGE - ref("user")


# -- text ---------------------------------------------------------------------------------------


def ref(text: str) -> int:
    """Tokens in ``text`` by tiktoken, OpenAI's implementation (its vocabulary supplied offline)."""
    return len(offline_tiktoken().encode_ordinary(text))


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param("a", 1, id="one-char"),
        pytest.param("x" * 40, 5, id="forty-x"),
        pytest.param("日本語です", 5, id="japanese"),
        pytest.param("<|endoftext|>", 7, id="special-token-is-ordinary-text"),
        pytest.param("   \n\n\t", 2, id="whitespace-run"),
    ],
)
def test_text_tokens(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens == ref(text)


# -- messages, names, tool calls, tools ---------------------------------------------------------


CALL = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
CALL_TOKENS = ref("call_1") + ref("get_weather") + ref(json.dumps(CALL["args"]))
"""A tool call costs its id, its function name and its arguments as sent."""
USER, ASSISTANT, SYSTEM, TOOL = ref("user"), ref("assistant"), ref("system"), ref("tool")


@pytest.mark.parametrize(
    ("messages", "tokens"),
    [
        pytest.param([], PRIMER, id="nothing"),
        pytest.param([HumanMessage("")], PRIMER + MESSAGE + USER, id="empty-message"),
        pytest.param(
            [HumanMessage("abcde fgh")], PRIMER + MESSAGE + USER + ref("abcde fgh"), id="one"
        ),
        pytest.param(
            [SystemMessage("be brief"), HumanMessage("abcde"), AIMessage("ok")],
            PRIMER
            + (MESSAGE + SYSTEM + ref("be brief"))
            + (MESSAGE + USER + ref("abcde"))
            + (MESSAGE + ASSISTANT + ref("ok")),
            id="three-messages",
        ),
        pytest.param(
            [
                HumanMessage(
                    content=[{"type": "text", "text": "abcd"}, {"type": "text", "text": "e"}]
                )
            ],
            PRIMER + MESSAGE + USER + ref("abcd") + ref("e"),
            id="text-blocks-each-counted",
        ),
        pytest.param(
            [HumanMessage("abcd", name="ada")],
            PRIMER + MESSAGE + USER + ref("abcd") + ref("ada") + NAME,
            id="human-name",
        ),
        pytest.param(
            [AIMessage("abcd", name="a-very-long-assistant-name")],
            PRIMER + MESSAGE + ASSISTANT + ref("abcd") + ref("a-very-long-assistant-name") + NAME,
            id="name-text-counted",
        ),
        pytest.param(
            [AIMessage("", tool_calls=[CALL])],
            PRIMER + MESSAGE + ASSISTANT + CALL_TOKENS,
            id="tool-call",
        ),
        pytest.param(
            [AIMessage("abcd", tool_calls=[CALL, {**CALL, "id": "call_2"}])],
            PRIMER + MESSAGE + ASSISTANT + ref("abcd") + 2 * CALL_TOKENS,
            id="text-and-two-tool-calls",
        ),
        pytest.param(
            [
                AIMessage(
                    "",
                    invalid_tool_calls=[
                        {"name": "f", "args": "{oops", "id": "call_9", "error": None}
                    ],
                )
            ],
            PRIMER + MESSAGE + ASSISTANT + ref("call_9") + ref("f") + ref("{oops"),
            id="invalid-tool-call-as-sent",
        ),
        pytest.param(
            [ToolMessage("sunny", tool_call_id="call_1")],
            PRIMER + MESSAGE + TOOL + ref("sunny") + ref("call_1"),
            id="tool-result-and-its-id",
        ),
    ],
)
def test_messages(messages: list[BaseMessage], tokens: int) -> None:
    assert count_messages(messages, None, "auto") == tokens


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


ENUM_TOOL = {
    "type": "function",
    "function": {
        "name": "set_unit",
        "description": "Choose the unit",
        "parameters": {
            "type": "object",
            "properties": {
                "unit": {"type": "string", "description": "The unit.", "enum": ["C", "F"]},
                "city": {"type": "string"},
            },
        },
    },
}


def test_tool_definitions_by_the_cookbook_rule() -> None:
    # OpenAI cookbook, "How to count tokens with tiktoken", num_tokens_for_tools (gpt-4):
    # 10 per function + "name:description" (final "." dropped), 3 for its properties, per
    # property 3 + "key:type:description", an enum -3 and 3 + each item; 12 after all.
    weather = 10 + ref("get_weather:Get the weather in a city") + 3 + 3 + ref("city:string:")
    assert count_messages([], [WEATHER_TOOL], "auto") == PRIMER + weather + 12
    both = count_messages([HumanMessage("abcd")], [WEATHER_TOOL, WEATHER_TOOL], "auto")
    assert both == PRIMER + MESSAGE + USER + ref("abcd") + 2 * weather + 12
    unit = 10 + ref("set_unit:Choose the unit") + 3
    unit += 3 + ref("unit:string:The unit") - 3 + (3 + ref("C")) + (3 + ref("F"))
    unit += 3 + ref("city:string:")
    assert count_messages([], [ENUM_TOOL], "auto") == PRIMER + unit + 12


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [base64_block, data_url_block], ids=["base64", "data-url"])
@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        pytest.param((1024, 1024), "high", 85 + 170 * 2 * 2, id="1024x1024-high"),
        pytest.param((1024, 1024), "auto", 85 + 170 * 2 * 2, id="1024x1024-auto"),
        pytest.param((1024, 1024), "low", 85, id="1024x1024-low"),
        pytest.param((500, 500), "high", 85 + 170, id="500x500-high-one-tile"),
        pytest.param((8, 8), "auto", 85 + 170, id="8x8-auto-one-tile"),
        pytest.param((513, 512), "high", 85 + 170 * 2, id="513x512-two-tiles"),
        # 2048 x 4096 fits as 1024 x 2048, then 768 x 1536: 2 x 3 tiles.
        pytest.param((2048, 4096), "high", 85 + 170 * 2 * 3, id="2048x4096-high"),
        # 3000 x 1000 fits as 2048 x 682, short side already under 768: 4 x 2 tiles.
        pytest.param((3000, 1000), "high", 85 + 170 * 4 * 2, id="3000x1000-high-the-most"),
        # 4000 x 600 fits as 2048 x 307: 4 x 1 tiles.
        pytest.param((4000, 600), "auto", 85 + 170 * 4 * 1, id="4000x600-auto"),
        pytest.param((4000, 600), "low", 85, id="4000x600-low"),
    ],
)
def test_inline_images_by_the_formula(
    block: Any, size: tuple[int, int], detail: str, tokens: int
) -> None:
    assert count_blocks(block(tall_png(*size, colour=2), detail)) == tokens


@pytest.mark.parametrize(
    ("default", "named", "tokens"),
    [
        pytest.param("auto", None, 765, id="default-auto"),
        pytest.param("high", None, 765, id="default-high"),
        pytest.param("low", None, 85, id="default-low"),
        pytest.param("low", "high", 765, id="named-high-over-default-low"),
        pytest.param("high", "low", 85, id="named-low-over-default-high"),
    ],
)
def test_default_detail_applies_where_none_is_named(
    default: Detail, named: str | None, tokens: int
) -> None:
    assert (
        count_blocks(base64_block(tall_png(1024, 1024, colour=2), named), default=default) == tokens
    )


def test_base64_is_never_counted_as_text() -> None:
    buffer = io.BytesIO()
    noise((256, 256)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert text_tokens(b64(data)) > 60_000  # what the base64 would cost as text
    for block in (base64_block, data_url_block):
        text = {"type": "text", "text": "abcd"}
        assert count_blocks(block(data, "high"), text) == 255 + ref("abcd")


def test_images_and_text_in_one_message_add_up() -> None:
    blocks = [
        {"type": "text", "text": "Compare these."},
        base64_block(tall_png(1024, 1024, colour=2), "high"),
        url_block("auto"),
        base64_block(tall_png(300, 200, colour=2), "low"),
    ]
    assert count_blocks(*blocks) == ref("Compare these.") + 765 + 1445 + 85


# -- URL images -----------------------------------------------------------------------------------


class Fetcher:
    """A download policy whose host resolves to a public address (no real lookup) and whose
    client answers from a script, recording the URLs asked for."""

    def __init__(self, answer: bytes | Exception) -> None:
        self.answer = answer
        self.urls: list[str] = []

        def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
            return [(2, 1, 6, "", ("93.184.216.34", port))]

        client = httpx2.Client(transport=httpx2.MockTransport(self._answer))
        self.policy = UrlPolicy(client=client, getaddrinfo=getaddrinfo)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.urls.append(f"{request.url.scheme}://{request.headers['host']}{request.url.path}")
        if isinstance(self.answer, Exception):
            raise self.answer
        return httpx2.Response(200, content=self.answer)


@pytest.mark.parametrize(
    ("detail", "tokens"),
    [
        pytest.param(None, 1445, id="auto-by-default"),
        pytest.param("auto", 1445, id="auto"),
        pytest.param("high", 1445, id="high"),
        pytest.param("low", 85, id="low"),
    ],
)
def test_url_images_count_as_the_upper_bound(detail: str | None, tokens: int) -> None:
    assert count_blocks(url_block(detail)) == tokens


@pytest.mark.parametrize(
    ("detail", "tokens"),
    [
        pytest.param("high", 85 + 170 * 2 * 2, id="high"),
        pytest.param("auto", 85 + 170 * 2 * 2, id="auto"),
    ],
)
def test_url_images_by_their_fetched_size(detail: str, tokens: int) -> None:
    fetch = Fetcher(tall_png(1024, 1024, colour=2))
    assert count_blocks(url_block(detail), fetch=fetch) == tokens
    assert fetch.urls == [URL]


def test_low_detail_url_images_are_not_fetched() -> None:
    fetch = Fetcher(tall_png(1024, 1024, colour=2))
    assert count_blocks(url_block("low"), fetch=fetch) == 85
    assert fetch.urls == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            httpx2.ConnectError("refused"),
            "the image cannot be downloaded (ConnectError)",
            id="unreachable",
        ),
        pytest.param(b"<html>not an image</html>", "", id="not-an-image"),
    ],
)
def test_url_images_that_cannot_be_read_count_as_the_upper_bound(
    answer: bytes | Exception, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "langchain_afarensis_vision")
    fetch = Fetcher(answer)
    assert count_blocks(url_block("high"), fetch=fetch) == 1445
    assert fetch.urls == [URL]
    assert f"Counting {URL} as 1445 tokens: {reason}" in caplog.text


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        pytest.param(BinaryImage(tall_png(1024, 1024, colour=2), "high"), 765, id="data-high"),
        pytest.param(BinaryImage(tall_png(1024, 1024, colour=2), "low"), 85, id="data-low"),
        pytest.param(ImageUrl(URL, "high"), 1445, id="url-high"),
        pytest.param(ImageUrl(URL, "low"), 85, id="url-low"),
        pytest.param(SealedImage("", "image/png", 1024, 768, "high"), 765, id="sealed-high"),
        pytest.param(SealedImage("", "image/png", 512, 384, "low"), 85, id="sealed-low"),
    ],
)
def test_image_tokens(part: ImagePart, tokens: int) -> None:
    assert image_tokens(part, None) == tokens


def test_a_tools_images_cost_the_user_message_that_carries_them() -> None:
    # Sent as: the tool message (a placeholder text) + a user message holding a label and the
    # image (_messages.to_wire_messages); both are billed, framing and label included.
    image = base64_block(tall_png(1024, 1024, colour=2), "low")
    tool = ToolMessage(content=[image], tool_call_id="call_7", name="snap")
    placeholder = "[1 image(s) returned; sent in the next user message]"
    label = "Image(s) returned by tool call call_7 (snap):"
    expected = PRIMER + (MESSAGE + TOOL + ref(placeholder) + ref("call_7"))
    expected += MESSAGE + USER + ref(label) + 85
    assert count_messages([tool], None, "auto") == expected


def test_schemas_the_rule_cannot_read_cost_what_it_can() -> None:
    # The server bills any schema-valid body: odd parameters must not break the count.
    odd = {"type": "function", "function": {"name": "f", "parameters": {"properties": "nope"}}}
    assert tools_tokens([odd]) == 12 + 10 + ref("f:")
    props = {"a": 5, "b": {"type": ["string", "null"], "enum": "xy"}}
    odd = {"type": "function", "function": {"name": "g", "parameters": {"properties": props}}}
    assert tools_tokens([odd]) == 12 + 10 + ref("g:") + 3 + (3 + ref("a::")) + (
        3 + ref("b:string|null:")
    )
