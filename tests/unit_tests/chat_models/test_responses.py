"""``_responses``: completion bodies and stream chunks to LangChain results, without a model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk

from langchain_afarensis_vision.chat_models._responses import (
    parse_chunk,
    parse_completion,
    usage_metadata,
)
from tests._mock_api import chunk, completion, text_stream
from tests._schema import assert_valid

METADATA = {
    "model_name": "gpt-4-vision-preview",
    "finish_reason": "stop",
    "system_fingerprint": "fp_test",
    "id": "chatcmpl-123",
    "model_provider": "afarensis",
}


def only_message(body: dict[str, Any]) -> AIMessage:
    """The message of a completion with one choice."""
    result = parse_completion(body)
    assert len(result.generations) == 1
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    return message


def chunk_message(body: dict[str, Any]) -> AIMessageChunk:
    parsed = parse_chunk(body)
    assert parsed is not None
    assert isinstance(parsed.message, AIMessageChunk)
    return parsed.message


def merged(events: list[dict[str, Any]]) -> AIMessageChunk:
    """The stream's chunks added up, as LangChain does."""
    chunks = [c for c in map(parse_chunk, events) if c is not None]
    total: ChatGenerationChunk = chunks[0]
    for c in chunks[1:]:
        total += c
    assert isinstance(total.message, AIMessageChunk)
    return total.message


def call(arguments: str, *, name: str = "get_weather", call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param({}, None, id="empty"),
        pytest.param(
            {"prompt_tokens": 800, "completion_tokens": 3, "total_tokens": 803},
            {"input_tokens": 800, "output_tokens": 3, "total_tokens": 803},
            id="plain",
        ),
        pytest.param(
            {"prompt_tokens": 10, "completion_tokens": 5},
            {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
            id="total-missing-is-the-sum",
        ),
        pytest.param(
            {"prompt_tokens": 7, "total_tokens": 7},
            {"input_tokens": 7, "output_tokens": 0, "total_tokens": 7},
            id="completion-missing-is-0",
        ),
        pytest.param(
            {
                "prompt_tokens": 100,
                "completion_tokens": 2,
                "total_tokens": 102,
                "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
            },
            {
                "input_tokens": 100,
                "output_tokens": 2,
                "total_tokens": 102,
                "input_token_details": {"cache_read": 64},
            },
            id="cached",
        ),
        pytest.param(
            {
                "prompt_tokens": 100,
                "completion_tokens": 2,
                "total_tokens": 102,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
            {
                "input_tokens": 100,
                "output_tokens": 2,
                "total_tokens": 102,
                "input_token_details": {"cache_read": 0},
            },
            id="cached-0",
        ),
        pytest.param(
            {
                "prompt_tokens": 800,
                "completion_tokens": 3,
                "total_tokens": 803,
                "prompt_tokens_details": {"text_tokens": 35, "image_tokens": 765},
            },
            {
                "input_tokens": 800,
                "output_tokens": 3,
                "total_tokens": 803,
                "input_token_details": {"image": 765},
            },
            id="image-tokens-as-the-local-server-reports-them",
        ),
        pytest.param(
            {
                "prompt_tokens": 100,
                "completion_tokens": 2,
                "total_tokens": 102,
                "prompt_tokens_details": {"text_tokens": 100},
            },
            {"input_tokens": 100, "output_tokens": 2, "total_tokens": 102},
            id="no-empty-details",
        ),
    ],
)
def test_usage_metadata(usage: dict[str, Any] | None, expected: UsageMetadata | None) -> None:
    assert usage_metadata(usage) == expected


# -- parse_completion ---------------------------------------------------------------------------


def test_parse_completion_text_usage_and_metadata() -> None:
    body = completion("A cat.", usage=(800, 3))
    result = parse_completion(body)
    message = only_message(body)
    assert message.content == "A cat."
    assert message.tool_calls == []
    assert message.invalid_tool_calls == []
    assert message.additional_kwargs == {}
    assert message.usage_metadata == {"input_tokens": 800, "output_tokens": 3, "total_tokens": 803}
    assert message.response_metadata == METADATA
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 800, "completion_tokens": 3, "total_tokens": 803},
        "model_name": "gpt-4-vision-preview",
    }


def test_parse_completion_one_generation_per_choice() -> None:
    body = completion("first")
    second = {
        "index": 1,
        "message": {"role": "assistant", "content": "second", "refusal": None},
        "finish_reason": "length",
        "logprobs": None,
    }
    body["choices"].append(second)
    assert_valid("CreateChatCompletionResponse", body)
    messages = [g.message for g in parse_completion(body).generations]
    assert [m.content for m in messages] == ["first", "second"]
    assert [m.response_metadata["finish_reason"] for m in messages] == ["stop", "length"]


def test_parse_completion_without_choices() -> None:
    result = parse_completion({"id": "x", "model": "m", "choices": []})
    assert result.generations == []
    assert result.llm_output == {"token_usage": None, "model_name": "m"}


def test_null_content_is_empty_text() -> None:
    message = only_message(completion(None, tool_calls=[call("{}")], finish_reason="tool_calls"))
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("arguments", "args"),
    [
        pytest.param('{"city": "Paris"}', {"city": "Paris"}, id="object"),
        pytest.param("{}", {}, id="empty-object"),
        pytest.param("", {}, id="empty-string"),
        pytest.param('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}, id="nested"),
    ],
)
def test_valid_tool_calls(arguments: str, args: dict[str, Any]) -> None:
    body = completion(None, tool_calls=[call(arguments)], finish_reason="tool_calls")
    message = only_message(body)
    assert message.tool_calls == [
        {"name": "get_weather", "args": args, "id": "call_1", "type": "tool_call"}
    ]
    assert message.invalid_tool_calls == []


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        pytest.param(
            "{oops",
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            id="not-json",
        ),
        pytest.param(
            '{"city": "Pa',
            "Unterminated string starting at: line 1 column 10 (char 9)",
            id="truncated",
        ),
        pytest.param("[1, 2]", "tool-call arguments must be a JSON object", id="array"),
        pytest.param('"Paris"', "tool-call arguments must be a JSON object", id="string"),
        pytest.param("null", "tool-call arguments must be a JSON object", id="null"),
    ],
)
def test_invalid_tool_calls_keep_the_raw_arguments(arguments: str, error: str) -> None:
    body = completion(None, tool_calls=[call(arguments)], finish_reason="tool_calls")
    message = only_message(body)
    assert message.tool_calls == []
    assert message.invalid_tool_calls == [
        {
            "name": "get_weather",
            "args": arguments,
            "id": "call_1",
            "error": error,
            "type": "invalid_tool_call",
        }
    ]


def test_valid_and_invalid_tool_calls_in_one_message_keep_their_order() -> None:
    calls = [call('{"n": 1}', call_id="a"), call("{", call_id="b"), call('{"n": 3}', call_id="c")]
    message = only_message(completion(None, tool_calls=calls, finish_reason="tool_calls"))
    assert [c["id"] for c in message.tool_calls] == ["a", "c"]
    assert [c["args"] for c in message.tool_calls] == [{"n": 1}, {"n": 3}]
    assert [c["id"] for c in message.invalid_tool_calls] == ["b"]


def test_refusal_goes_to_additional_kwargs() -> None:
    body = completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    assert_valid("CreateChatCompletionResponse", body)
    message = only_message(body)
    assert message.content == ""
    assert message.additional_kwargs == {"refusal": "I can't help with that."}


# -- parse_chunk --------------------------------------------------------------------------------


def test_content_chunk_carries_only_the_provider() -> None:
    message = chunk_message(chunk({"content": "Hel"}))
    assert message.content == "Hel"
    assert message.response_metadata == {"model_provider": "afarensis"}
    assert message.usage_metadata is None
    assert message.tool_call_chunks == []


def test_finish_chunk_carries_the_metadata() -> None:
    message = chunk_message(chunk({}, finish_reason="length"))
    assert message.content == ""
    assert message.response_metadata == {**METADATA, "finish_reason": "length"}
    assert message.usage_metadata is None


def test_usage_chunk_with_no_choices() -> None:
    body = chunk(usage=(90, 4))
    assert body["choices"] == []
    message = chunk_message(body)
    assert message.content == ""
    assert message.usage_metadata == {"input_tokens": 90, "output_tokens": 4, "total_tokens": 94}
    assert message.response_metadata == {"token_usage": body["usage"]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": "x", "choices": []}, id="no-choices-no-usage"),
        pytest.param({"id": "x", "choices": [], "usage": None}, id="usage-null"),
        pytest.param({"id": "x"}, id="nothing"),
    ],
)
def test_chunk_carrying_nothing_is_none(body: dict[str, Any]) -> None:
    assert parse_chunk(body) is None


def test_stream_metadata_and_usage_come_once() -> None:
    events = text_stream("A ", "red ", "square.", usage=(90, 4))
    messages = [chunk_message(e) for e in events]
    assert [m.content for m in messages] == ["", "A ", "red ", "square.", "", ""]
    assert [bool(m.usage_metadata) for m in messages] == [False] * 5 + [True]
    assert ["model_name" in m.response_metadata for m in messages] == [False] * 4 + [True, False]
    full = merged(events)
    assert full.content == "A red square."
    assert full.usage_metadata == {"input_tokens": 90, "output_tokens": 4, "total_tokens": 94}
    assert full.response_metadata == {**METADATA, "token_usage": events[-1]["usage"]}


def test_tool_call_deltas() -> None:
    head = {"index": 0, "id": "call_9", "type": "function"}
    events = [
        chunk({"role": "assistant", "tool_calls": [{**head, "function": {"name": "f"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, finish_reason="tool_calls"),
    ]
    assert chunk_message(events[0]).tool_call_chunks == [
        {"name": "f", "args": None, "id": "call_9", "index": 0, "type": "tool_call_chunk"}
    ]
    assert chunk_message(events[1]).tool_call_chunks == [
        {"name": None, "args": '{"city": ', "id": None, "index": 0, "type": "tool_call_chunk"}
    ]
    full = merged(events)
    assert full.tool_calls == [
        {"name": "f", "args": {"city": "Oslo"}, "id": "call_9", "type": "tool_call"}
    ]
    assert full.response_metadata["finish_reason"] == "tool_calls"


def test_streamed_refusal_goes_to_additional_kwargs() -> None:
    events = [
        chunk({"role": "assistant", "content": None, "refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk({}, finish_reason="stop"),
    ]
    assert chunk_message(events[0]).additional_kwargs == {"refusal": "I can't "}
    assert chunk_message(events[2]).additional_kwargs == {}
    full = merged(events)
    assert full.content == ""
    assert full.additional_kwargs == {"refusal": "I can't help with that."}
