"""Structured output from the stand-in engine, as a user sees it through ``ChatAfarensis``.

Measured fields are filled; every other field is its default, null where the schema allows it,
or its type's zero value, and is listed in ``response_metadata["stand_in"]["placeholders"]``
(and in one line of a free-text field such as ``reasoning``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field

from langchain_afarensis_vision import ChatAfarensis
from tests.integration_tests.conftest import data_url, image_bytes

pytestmark = pytest.mark.enable_socket

Method = Literal["function_calling", "json_schema"]
METHODS: list[Method] = ["function_calling", "json_schema"]


class Caption(BaseModel):
    """A caption for an image."""

    title: str
    colours: list[str]
    has_person: bool | None = None


class Facts(BaseModel):
    """Facts about an image."""

    width: int
    height: int
    colours: list[str] = Field(description="The dominant colours")
    has_person: bool
    reasoning: str = Field(description="Why you answered so")


def ask(
    make_chat: Callable[..., ChatAfarensis], schema: type[BaseModel], method: Method, **kwargs: Any
) -> dict[str, Any]:
    """``with_structured_output(schema, include_raw=True)`` on a 320 x 200 blue PNG."""
    image = {"type": "image_url", "image_url": {"url": data_url(image_bytes((320, 200), "blue"))}}
    message = HumanMessage(content=[{"type": "text", "text": "Describe the image."}, image])
    model = make_chat(max_tokens=500, **kwargs)
    result: dict[str, Any] = model.with_structured_output(
        schema, method=method, include_raw=True
    ).invoke([message])
    assert result["parsing_error"] is None
    return result


@pytest.mark.parametrize("method", METHODS)
def test_a_bool_it_cannot_know_stays_null_and_is_a_placeholder(
    make_chat: Callable[..., ChatAfarensis], method: Method
) -> None:
    result = ask(make_chat, Caption, method)
    assert result["parsed"] == Caption(title="", colours=["blue"], has_person=None)
    raw = result["raw"]
    assert isinstance(raw, AIMessage)
    assert raw.response_metadata["stand_in"] == {
        "engine": "local-afarensis",
        "measured": ["colours"],
        "placeholders": ["title", "has_person"],
    }


@pytest.mark.parametrize("method", METHODS)
def test_measured_fields_are_filled_and_a_required_bool_is_a_placeholder(
    make_chat: Callable[..., ChatAfarensis], method: Method
) -> None:
    result = ask(make_chat, Facts, method)
    parsed = result["parsed"]
    assert (parsed.width, parsed.height, parsed.colours) == (320, 200, ["blue"])
    assert parsed.has_person is False  # required and not nullable: the zero value, listed
    stand_in = result["raw"].response_metadata["stand_in"]
    assert stand_in["measured"] == ["width", "height", "colours"]
    assert stand_in["placeholders"] == ["has_person"]
    assert parsed.reasoning == (
        "Local Afarensis stand-in, not GPT-4V: measured width, height, colours; "
        "placeholders, not measured: has_person."
    )


def test_placeholders_survive_a_stream(make_chat: Callable[..., ChatAfarensis]) -> None:
    result = ask(make_chat, Caption, "json_schema", streaming=True)
    assert result["parsed"] == Caption(title="", colours=["blue"], has_person=None)
    assert result["raw"].response_metadata["stand_in"]["placeholders"] == ["title", "has_person"]


def test_a_text_answer_says_it_is_the_stand_in(make_chat: Callable[..., ChatAfarensis]) -> None:
    answer = make_chat(max_tokens=50).invoke("Hello")
    assert answer.response_metadata["stand_in"] == {"engine": "local-afarensis", "placeholders": []}
