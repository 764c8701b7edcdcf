"""Every way an image enters a LangChain message, in; the exact Chat Completions JSON, out."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.content import create_image_block
from PIL import Image

from langchain_afarensis_vision._api.contract import ErrorCode
from langchain_afarensis_vision.chat_models._messages import (
    ImageOptions,
    SealedImage,
    message_parts,
    question_message,
    to_wire_messages,
)
from langchain_afarensis_vision.chat_models._tokens import count_messages
from langchain_afarensis_vision.errors import AfarensisError, InvalidImageError, InvalidRequestError
from langchain_afarensis_vision.images import _preparation
from tests._schema import assert_valid


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{B64}"
URL = "https://example.com/cat.jpg"
TEXT = {"type": "text", "text": "What's in this image?"}


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "What's in this image?"}, *parts]}


def image_url(url: str, detail: str = "auto") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def wire(messages: list[BaseMessage], **options: Any) -> list[dict[str, Any]]:
    out = to_wire_messages(messages, ImageOptions(**options))
    assert_valid("CreateChatCompletionRequest", {"model": "gpt-4-vision-preview", "messages": out})
    return out


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(
            {"type": "image_url", "image_url": {"url": URL, "detail": "low"}},
            image_url(URL, "low"),
            id="openai-dict-detail",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": URL}},
            image_url(URL),
            id="openai-dict-no-detail",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": URL}, "detail": "high"},
            image_url(URL, "high"),
            id="openai-dict-top-level-detail",
        ),
        pytest.param(
            {"type": "image_url", "image_url": URL},
            image_url(URL),
            id="openai-string-url",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": URL, "detail": "low"}, "id": "img_1"},
            image_url(URL, "low"),
            id="openai-dict-with-id",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": DATA_URL}, "id": "img_1"},
            image_url(DATA_URL),
            id="openai-data-url-with-id",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "high"}},
            image_url(DATA_URL, "high"),
            id="openai-data-url",
        ),
        pytest.param({"type": "image", "url": URL}, image_url(URL), id="v1-url"),
        pytest.param(
            {"type": "image", "url": URL, "extras": {"detail": "low"}},
            image_url(URL, "low"),
            id="v1-url-extras-detail",
        ),
        pytest.param(
            create_image_block(url=URL, detail="high"),
            image_url(URL, "high"),
            id="v1-create_image_block",
        ),
        pytest.param(
            {"type": "image", "base64": B64, "mime_type": "image/png"},
            image_url(DATA_URL),
            id="v1-base64",
        ),
        pytest.param(
            {"type": "image", "base64": B64, "mime_type": "image/png", "extras": {"detail": "low"}},
            image_url(DATA_URL, "low"),
            id="v1-base64-detail",
        ),
        pytest.param(
            {"type": "image", "source_type": "url", "url": URL, "detail": "low"},
            image_url(URL, "low"),
            id="v0-url-detail",
        ),
        pytest.param(
            {"type": "image", "source_type": "base64", "data": B64, "mime_type": "image/png"},
            image_url(DATA_URL),
            id="v0-base64",
        ),
        pytest.param(
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}},
            image_url(DATA_URL),
            id="anthropic-base64",
        ),
        pytest.param(
            {"type": "image", "source": {"type": "url", "url": URL}},
            image_url(URL),
            id="anthropic-url",
        ),
    ],
)
def test_image_forms(block: dict[str, Any], expected: dict[str, Any]) -> None:
    assert wire([HumanMessage(content=[TEXT, block])]) == [user(expected)]


def test_default_detail_applies_only_where_none_is_named() -> None:
    message = HumanMessage(
        content=[TEXT, {"type": "image", "url": URL}, image_url(URL + "?2", "high")]
    )
    assert wire([message], detail="low") == [
        user(image_url(URL, "low"), image_url(URL + "?2", "high"))
    ]


def test_string_content_and_names() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("Be brief."),
        SystemMessage(content=[{"type": "text", "text": "Really."}]),
        HumanMessage("hello", name="example_user"),
        AIMessage("Hi!"),
        ChatMessage(role="user", content="again"),
    ]
    assert wire(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Really."},
        {"role": "user", "content": "hello", "name": "example_user"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "again"},
    ]


def test_tool_calls_and_tool_messages_with_images_move_to_a_user_message() -> None:
    messages: list[BaseMessage] = [
        HumanMessage("Show me two pictures"),
        AIMessage(
            "",
            tool_calls=[
                {"id": "call_1", "name": "random_image", "args": {}},
                {"id": "call_2", "name": "crop", "args": {"box": [0, 0, 2, 2]}},
            ],
        ),
        ToolMessage(
            content=[{"type": "image_url", "image_url": {"url": DATA_URL}}],
            tool_call_id="call_1",
            name="random_image",
        ),
        ToolMessage(
            content=[
                {"type": "text", "text": "cropped"},
                {"type": "image", "base64": B64, "mime_type": "image/png"},
            ],
            tool_call_id="call_2",
        ),
        HumanMessage("Thanks"),
    ]
    assert wire(messages) == [
        {"role": "user", "content": "Show me two pictures"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "random_image", "arguments": "{}"},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "crop", "arguments": '{"box": [0, 0, 2, 2]}'},
                },
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "[1 image(s) returned; sent in the next user message]",
        },
        {"role": "tool", "tool_call_id": "call_2", "content": "cropped"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Image(s) returned by tool call call_1 (random_image):"},
                image_url(DATA_URL),
                {"type": "text", "text": "Image(s) returned by tool call call_2:"},
                image_url(DATA_URL),
            ],
        },
        {"role": "user", "content": "Thanks"},
    ]


def test_tool_images_at_the_end_of_the_conversation() -> None:
    messages: list[BaseMessage] = [
        AIMessage("", tool_calls=[{"id": "1", "name": "img", "args": {}}]),
        ToolMessage(content=[{"type": "image", "url": URL}], tool_call_id="1"),
    ]
    out = wire(messages)
    assert out[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Image(s) returned by tool call 1:"},
            image_url(URL),
        ],
    }


def test_anthropic_tool_use_and_thinking_blocks_in_ai_content_are_not_resent() -> None:
    message = AIMessage(
        content=[
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        ],
        tool_calls=[{"id": "t1", "name": "f", "args": {"a": 1}}],
    )
    assert wire([message]) == [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        }
    ]


def test_invalid_tool_calls_are_sent_back_verbatim() -> None:
    message = AIMessage(
        "",
        invalid_tool_calls=[
            {"type": "invalid_tool_call", "id": "c", "name": "f", "args": "{bad", "error": None}
        ],
    )
    assert wire([message])[0]["tool_calls"] == [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}
    ]


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        pytest.param(
            [{"type": "file", "base64": "AAAA", "mime_type": "application/pdf"}],
            InvalidRequestError,
            "Unsupported content block type 'file'. Accepted:",
            id="pdf-file-block",
        ),
        pytest.param(
            [{"type": "video_url", "video_url": {"url": URL}}],
            InvalidRequestError,
            "Unsupported content block type 'video_url'",
            id="unknown-block",
        ),
        pytest.param(
            [{"type": ["image_url"], "image_url": {"url": URL}}],
            InvalidRequestError,
            r"Unsupported content block type \['image_url'\] \(not a string\)",
            id="type-a-list",
        ),
        pytest.param(
            [{"type": {"image": 1}}],
            InvalidRequestError,
            "not a string",
            id="type-a-dict",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"detail": "low"}, "id": "img_1"}],
            InvalidRequestError,
            "Unsupported content block type 'image_url'",
            id="image-url-without-url",
        ),
        pytest.param(
            [{"type": "image", "file_id": "file-abc"}],
            InvalidRequestError,
            "file id are not supported",
            id="v1-file-id",
        ),
        pytest.param(
            [{"type": "image", "source": {"type": "file", "file_id": "file-abc"}}],
            InvalidRequestError,
            "file id are not supported",
            id="anthropic-file",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": URL, "detail": "ultra"}}],
            InvalidRequestError,
            "detail must be one of low, high, auto",
            id="bad-detail",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}],
            InvalidRequestError,
            "http\\(s\\) or data: URLs",
            id="ftp-url",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
            InvalidRequestError,
            "scheme 'file'.*cannot read this machine's files.*prepare_image\\(path\\).data_url",
            id="file-url",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "holiday.jpg"}}],
            InvalidRequestError,
            "'holiday.jpg' looks like a local path.*prepare_image\\(path\\).data_url",
            id="local-path-as-url",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "C:\\photos\\holiday.jpg"}}],
            InvalidRequestError,
            "looks like a local path",
            id="windows-path-as-url",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": URL, "detail": "medium"}}],
            InvalidRequestError,
            "detail must be one of low, high, auto; got 'medium'",
            id="detail-medium",
        ),
        pytest.param(
            [{"type": "image", "base64": "not base64!!", "mime_type": "image/png"}],
            InvalidImageError,
            "not valid base64",
            id="junk-base64",
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}],
            InvalidImageError,
            "not a supported raster image",
            id="data-url-percent-encoded-junk",
        ),
        pytest.param(
            [
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(b"<svg/>").decode()
                    },
                }
            ],
            InvalidImageError,
            "SVG",
            id="svg-disguised-as-png",
        ),
    ],
)
def test_refused_content(content: list[Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        to_wire_messages([HumanMessage(content=content)], ImageOptions())


def test_images_outside_user_and_tool_messages_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not in system messages") as raised:
        to_wire_messages([SystemMessage(content=[{"type": "image", "url": URL}])], ImageOptions())
    assert raised.value.code == ErrorCode.INVALID_VALUE
    assert isinstance(raised.value, AfarensisError)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("message", "role"),
    [
        pytest.param(SystemMessage(content=[{"type": "image", "url": URL}]), "system", id="system"),
        pytest.param(AIMessage(content=[{"type": "image", "url": URL}]), "assistant", id="ai"),
        pytest.param(
            ChatMessage(role="developer", content=[{"type": "image", "url": URL}]),
            "developer",
            id="developer",
        ),
    ],
)
def test_token_counting_refuses_what_sending_refuses(message: BaseMessage, role: str) -> None:
    match = f"not in {role} messages"
    with pytest.raises(InvalidRequestError, match=match):
        to_wire_messages([message], ImageOptions())
    with pytest.raises(InvalidRequestError, match=match):
        count_messages([message], None, "auto")
    user = ChatMessage(role="user", content=[{"type": "image", "url": URL, "detail": "low"}])
    assert count_messages([user], None, "auto") == 3 + 3 + 1 + 85  # "user" is 1 token


def test_an_unsupported_message_type_is_a_refused_request() -> None:
    with pytest.raises(InvalidRequestError, match="Unsupported message type FunctionMessage"):
        to_wire_messages([FunctionMessage(content="x", name="f")], ImageOptions())


def test_inline_images_are_prepared_before_sending() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4032, 3024), (10, 120, 200)).save(buffer, "JPEG")
    big = base64.b64encode(buffer.getvalue()).decode()
    out = wire(
        [HumanMessage(content=[{"type": "image", "base64": big, "mime_type": "image/jpeg"}])]
    )
    url = out[0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as sent:
        assert sent.size == (1024, 768)
    low = wire(
        [HumanMessage(content=[{"type": "image", "base64": big, "mime_type": "image/jpeg"}])],
        detail="low",
    )
    with Image.open(
        io.BytesIO(base64.b64decode(low[0]["content"][0]["image_url"]["url"].split(",", 1)[1]))
    ) as sent:
        assert sent.size == (512, 384)


# -- a prepared image is carried as such: sent as it is, never prepared twice ----------------


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (20, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _refuse_preparing(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []

    def prepare(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    real = _preparation.prepare_image
    monkeypatch.setattr(_preparation, "prepare_image", prepare)
    return calls


def test_a_prepared_images_block_is_sent_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = _preparation.prepare_image(_photo(), "low")
    calls = _refuse_preparing(monkeypatch)
    message = question_message("Which colour?", prepared)
    out = wire([message])
    assert calls == []
    assert out[0]["content"][1] == image_url(prepared.data_url, "low")
    parts = message_parts(message, "auto")
    assert parts[1] == SealedImage(prepared.base64, "image/jpeg", 512, 384, "low")
    assert (
        count_messages([message], None, "auto")
        == count_messages(
            [
                HumanMessage(
                    content=[{"type": "text", "text": "Which colour?"}, image_url(DATA_URL)]
                )
            ],
            None,
            "auto",
        )
        - 255
        + prepared.tokens
    )  # the 4x3 PNG costs 255 at auto; the sealed one its own 85


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: b.update(base64=base64.b64encode(PNG).decode()), id="other-data"),
        pytest.param(lambda b: b["extras"].update(detail="high"), id="other-detail"),
        pytest.param(lambda b: b.update(detail="high"), id="detail-overridden"),
        pytest.param(lambda b: b["extras"]["afarensis_prepared"].__setitem__(0, 9), id="size"),
        pytest.param(lambda b: b["extras"].update(afarensis_prepared="x"), id="garbage"),
        pytest.param(lambda b: b.update(mime_type="image/png"), id="mime"),
    ],
)
def test_a_changed_or_forged_block_is_prepared_like_any_other(
    tamper: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = _preparation.prepare_image(_photo(), "low").content_block()
    tamper(block)
    assert _preparation.unseal(block) is None or "detail" in block
    calls = _refuse_preparing(monkeypatch)
    wire([HumanMessage(content=[TEXT, block])])
    assert len(calls) == 1
