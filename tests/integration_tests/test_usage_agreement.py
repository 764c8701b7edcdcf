"""The local server bills what ``get_num_tokens_from_messages`` counted, on the hard cases.

Names, tool calls (valid and invalid), tool results and the user message that carries a tool's
images, tool definitions with enums, many scripts: each request's ``usage.prompt_tokens`` must be
the client's count, to the token (one implementation: ``_api.contract.prompt_text_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)

from langchain_afarensis_vision import ChatAfarensis, prepare_image
from tests._support import TEST_IMAGES

pytestmark = pytest.mark.enable_socket

Make = Callable[..., ChatAfarensis]
PHOTO = TEST_IMAGES / "flower.jpg"
CALL = {"name": "get_weather", "args": {"city": "Zürich"}, "id": "call_abc123", "type": "tool_call"}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def _photo() -> dict[str, Any]:
    return prepare_image(PHOTO, "low").content_block()


CONVERSATIONS: dict[str, list[BaseMessage]] = {
    "scripts": [
        SystemMessage("Réponds brièvement. 簡潔に答えてください。"),
        HumanMessage("مرحبا! Привет! 안녕하세요 🧑🏽‍🚀🇨🇭  \n\n\t code: `x = 1`", name="ada"),
    ],
    "tool-call-and-result": [
        HumanMessage("Weather in Zürich?"),
        AIMessage("", tool_calls=[CALL]),
        ToolMessage('{"temp": 21}', tool_call_id="call_abc123"),
        HumanMessage("And tomorrow?"),
    ],
    "invalid-tool-call": [
        HumanMessage("Weather?"),
        AIMessage(
            "Let me check.",
            invalid_tool_calls=[
                {"name": "get_weather", "args": '{"city": ', "id": "call_x", "error": "bad"}
            ],
        ),
        ToolMessage("error: bad arguments", tool_call_id="call_x"),
        HumanMessage("Try again."),
    ],
    "tool-returns-an-image": [
        HumanMessage("Take a picture."),
        AIMessage("", tool_calls=[{**CALL, "name": "snap", "args": {}, "id": "call_snap"}]),
        ToolMessage(content=[_photo()], tool_call_id="call_snap", name="snap"),
        HumanMessage("What is in it?"),
    ],
    "image-and-text": [HumanMessage(content=[{"type": "text", "text": "Describe."}, _photo()])],
}


@pytest.mark.parametrize("name", CONVERSATIONS)
@pytest.mark.parametrize("tools", [None, [TOOL]], ids=["no-tools", "tools"])
def test_the_server_bills_the_clients_count(
    make_chat: Make, name: str, tools: list[dict[str, Any]] | None
) -> None:
    model = make_chat(max_tokens=20)
    messages = CONVERSATIONS[name]
    counted = model.get_num_tokens_from_messages(messages, tools=tools)
    bound = model.bind_tools(tools, tool_choice="none") if tools else model
    answer = bound.invoke(messages)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == counted


def test_trim_messages_counts_exactly(make_chat: Make) -> None:
    model = make_chat(max_tokens=20)
    history: list[BaseMessage] = [SystemMessage("Be brief.")]
    for n in range(20):
        history += [HumanMessage(f"Question {n}: 東京の天気は?"), AIMessage(f"Answer {n}: 晴れ")]
    history.append(HumanMessage("Last question?"))
    budget = 120
    trimmed = trim_messages(
        history, max_tokens=budget, token_counter=model, strategy="last", include_system=True
    )
    assert len(trimmed) < len(history)
    answer = model.invoke(trimmed)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] <= budget
    kept = len(trimmed) - 1  # the system message, then the last `kept` messages
    assert trimmed[1:] == history[-kept:]
    # The next older message would not have fitted: the count is the server's own bill.
    assert (
        model.get_num_tokens_from_messages([trimmed[0], history[-kept - 1], *trimmed[1:]]) > budget
    )
