"""``_structured``: tool fields, ``response_format`` and ``with_structured_output`` end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.chat_models._structured import (
    Method,
    output_parser,
    structured_kwargs,
    tool_choice_field,
    tools_kwargs,
)
from tests._mock_api import MockAPI, completion

Make = Callable[..., ChatAfarensis]


class Person(BaseModel):
    """A person."""

    name: str = Field(description="Their name")
    age: int


class Pet(TypedDict):
    """A pet."""

    name: Annotated[str, ..., "Its name"]
    legs: int


BOOK: dict[str, Any] = {
    "title": "Book",
    "description": "A book.",
    "type": "object",
    "properties": {"title": {"type": "string"}, "pages": {"type": "integer"}},
    "required": ["title", "pages"],
}

PERSON_SCHEMA = {
    "title": "Person",
    "description": "A person.",
    "properties": {
        "name": {"description": "Their name", "type": "string"},
        "age": {"type": "integer"},
    },
    "required": ["name", "age"],
    "type": "object",
}


STRICT_PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "Person",
        "schema": PERSON_SCHEMA,
        "description": "A person.",
        "strict": True,
    },
}


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Get the time in a city."""
    return f"noon in {city}"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class Options(BaseCallbackHandler):
    """Records the ``options`` LangChain reports at each chat model start."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[dict[str, Any] | None] = []

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.options.append(options)


# -- tool_choice_field and tools_kwargs --------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        pytest.param("auto", "auto", id="auto"),
        pytest.param("none", "none", id="none"),
        pytest.param("any", "required", id="any"),
        pytest.param("required", "required", id="required"),
        pytest.param(True, "required", id="true"),
        pytest.param(
            "get_time", {"type": "function", "function": {"name": "get_time"}}, id="by-name"
        ),
        pytest.param(
            {"type": "function", "function": {"name": "anything"}},
            {"type": "function", "function": {"name": "anything"}},
            id="dict-as-is",
        ),
    ],
)
def test_tool_choice_spellings(choice: str | bool | dict[str, Any], wire: Any) -> None:
    assert tool_choice_field(choice, ["get_weather", "get_time"]) == wire


@pytest.mark.parametrize(
    "choice",
    [
        pytest.param("nope", id="unknown-name"),
        pytest.param("Get_Weather", id="names-are-case-sensitive"),
        pytest.param(False, id="false"),
    ],
)
def test_tool_choice_refused(choice: str | bool) -> None:
    expected = (
        f"tool_choice {choice!r} is not 'auto', 'none', 'any', 'required' or one of ['get_weather']"
    )
    with pytest.raises(ValueError) as raised:
        tool_choice_field(choice, ["get_weather"])
    assert str(raised.value) == expected


def test_unknown_tool_choice_is_refused_when_binding() -> None:
    with pytest.raises(ValueError, match="tool_choice 'nope'"):
        ChatAfarensis().bind_tools([get_weather], tool_choice="nope")


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "extra"),
    [
        pytest.param(None, None, {}, id="nothing-else"),
        pytest.param(False, None, {}, id="false-choice-is-no-choice"),
        pytest.param("auto", None, {"tool_choice": "auto"}, id="choice"),
        pytest.param(None, False, {"parallel_tool_calls": False}, id="parallel-off"),
        pytest.param(
            "get_weather",
            True,
            {
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": True,
            },
            id="both",
        ),
    ],
)
def test_tools_kwargs(
    tool_choice: str | bool | None, parallel: bool | None, extra: dict[str, Any]
) -> None:
    fields = tools_kwargs([get_weather], tool_choice, strict=None, parallel_tool_calls=parallel)
    assert fields == {"tools": [WEATHER_TOOL], **extra}


def test_tools_kwargs_strict_and_every_tool_form() -> None:
    def lookup(word: str) -> str:
        """Look a word up."""
        return word

    fields = tools_kwargs([get_weather, Person, lookup, BOOK], None, True, None)
    names = [t["function"]["name"] for t in fields["tools"]]
    assert names == ["get_weather", "Person", "lookup", "Book"]
    assert all(t["function"]["strict"] is True for t in fields["tools"])
    assert fields["tools"][0]["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }


# -- structured_kwargs and output_parser ----------------------------------------------------------


def test_json_schema_response_format_from_pydantic() -> None:
    fields = structured_kwargs(Person, "json_schema", strict=True)
    assert fields["response_format"] == STRICT_PERSON_FORMAT
    assert fields["ls_structured_output_format"] == {
        "kwargs": {"method": "json_schema", "strict": True},
        "schema": Person,
    }


def test_json_schema_response_format_without_description_or_strict() -> None:
    schema = {"title": "Point", "type": "object", "properties": {"x": {"type": "integer"}}}
    fields = structured_kwargs(schema, "json_schema", strict=None)
    assert fields["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Point", "schema": schema},
    }


def test_json_schema_without_a_title_is_refused() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    with pytest.raises(ValueError, match="must have a top-level 'title' key"):
        structured_kwargs(schema, "json_schema", strict=None)


def test_structured_kwargs_per_method() -> None:
    trace = {"kwargs": {"method": "function_calling", "strict": None}, "schema": BOOK}
    book_tool = {
        "type": "function",
        "function": {
            "name": "Book",
            "description": "A book.",
            "parameters": {
                "type": "object",
                "properties": BOOK["properties"],
                "required": ["title", "pages"],
            },
        },
    }
    assert structured_kwargs(BOOK, "function_calling", strict=None) == {
        "ls_structured_output_format": trace,
        "tools": [book_tool],
        "tool_choice": "required",
    }
    assert structured_kwargs(BOOK, "json_mode", strict=None) == {
        "response_format": {"type": "json_object"},
        "ls_structured_output_format": {**trace, "kwargs": {"method": "json_mode", "strict": None}},
    }


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError) as raised:
        ChatAfarensis().with_structured_output(Person, method="xml")  # type: ignore[arg-type]
    expected = "method must be function_calling, json_schema or json_mode; got 'xml'"
    assert str(raised.value) == expected


def test_unsupported_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="Received unsupported arguments"):
        ChatAfarensis().with_structured_output(Person, tools=[])


@pytest.mark.parametrize(
    ("schema", "method", "parser"),
    [
        pytest.param(Person, "function_calling", PydanticToolsParser, id="tool-pydantic"),
        pytest.param(Pet, "function_calling", JsonOutputKeyToolsParser, id="tool-typeddict"),
        pytest.param(BOOK, "function_calling", JsonOutputKeyToolsParser, id="tool-dict"),
        pytest.param(Person, "json_schema", PydanticOutputParser, id="schema-pydantic"),
        pytest.param(BOOK, "json_schema", JsonOutputParser, id="schema-dict"),
        pytest.param(Person, "json_mode", PydanticOutputParser, id="mode-pydantic"),
        pytest.param(Pet, "json_mode", JsonOutputParser, id="mode-typeddict"),
    ],
)
def test_output_parser(schema: Any, method: Method, parser: type) -> None:
    assert type(output_parser(schema, method)) is parser


# -- with_structured_output end to end ----------------------------------------------------------


def tool_call_answer(name: str, arguments: str) -> dict[str, Any]:
    call = {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}
    return completion(None, tool_calls=[call], finish_reason="tool_calls")


def answer(method: Method, name: str, arguments: str) -> dict[str, Any]:
    """What the API sends back for ``method`` with ``arguments`` (JSON text) as the output."""
    if method == "function_calling":
        return tool_call_answer(name, arguments)
    return completion(arguments)


ADA = '{"name": "Ada", "age": 36}'
REX = '{"name": "Rex", "legs": 4}'
DUNE = '{"title": "Dune", "pages": 412}'


@pytest.mark.parametrize(
    ("schema", "name", "arguments", "expected"),
    [
        pytest.param(Person, "Person", ADA, Person(name="Ada", age=36), id="pydantic"),
        pytest.param(Pet, "Pet", REX, {"name": "Rex", "legs": 4}, id="typeddict"),
        pytest.param(BOOK, "Book", DUNE, {"title": "Dune", "pages": 412}, id="json-schema"),
    ],
)
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_with_structured_output(
    api: MockAPI,
    make_model: Make,
    method: Method,
    schema: Any,
    name: str,
    arguments: str,
    expected: Any,
) -> None:
    api.queue(answer(method, name, arguments))
    options = Options()
    structured = make_model().with_structured_output(schema, method=method)
    assert structured.invoke("Who?", config={"callbacks": [options]}) == expected
    body = api.bodies[0]
    if method == "function_calling":
        assert [t["function"]["name"] for t in body["tools"]] == [name]
        assert body["tool_choice"] == "required"
        assert "response_format" not in body
    else:
        assert "tools" not in body
        assert body["response_format"]["type"] == (
            "json_schema" if method == "json_schema" else "json_object"
        )
    assert options.options[0] is not None
    traced = options.options[0]["ls_structured_output_format"]
    assert traced["kwargs"] == {"method": method, "strict": None}
    assert traced["schema"]["title"] == name


def test_json_schema_request_with_strict(api: MockAPI, make_model: Make) -> None:
    api.queue(completion(ADA))
    structured = make_model().with_structured_output(Person, method="json_schema", strict=True)
    assert structured.invoke("Who?") == Person(name="Ada", age=36)
    assert api.bodies[0]["response_format"] == STRICT_PERSON_FORMAT


def test_function_calling_with_strict(api: MockAPI, make_model: Make) -> None:
    api.queue(tool_call_answer("Person", ADA))
    structured = make_model().with_structured_output(Person, strict=True)
    assert structured.invoke("Who?") == Person(name="Ada", age=36)
    function = api.bodies[0]["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("method", "schema", "bad", "error"),
    [
        pytest.param(
            "function_calling",
            Person,
            tool_call_answer("Person", '{"name": "Ada"}'),
            ValidationError,
            id="tool-args-miss-a-field",
        ),
        pytest.param(
            "json_schema", Person, completion("not json"), OutputParserException, id="schema"
        ),
        pytest.param("json_mode", BOOK, completion("not json"), OutputParserException, id="mode"),
    ],
)
async def test_include_raw_keeps_the_parsing_error(
    api: MockAPI,
    make_model: Make,
    method: Method,
    schema: Any,
    bad: dict[str, Any],
    error: type[Exception],
) -> None:
    name = "Book" if schema is BOOK else "Person"
    good_arguments = DUNE if schema is BOOK else ADA
    api.queue(answer(method, name, good_arguments), bad)
    structured = make_model().with_structured_output(schema, method=method, include_raw=True)
    good = await structured.ainvoke("Who?")
    assert set(good) == {"raw", "parsed", "parsing_error"}
    assert isinstance(good["raw"], AIMessage)
    assert good["parsed"] == (
        {"title": "Dune", "pages": 412} if schema is BOOK else Person(name="Ada", age=36)
    )
    assert good["parsing_error"] is None
    failed = await structured.ainvoke("Who?")
    assert isinstance(failed["raw"], AIMessage)
    assert failed["parsed"] is None
    assert type(failed["parsing_error"]) is error


def test_without_include_raw_a_parsing_error_is_raised(api: MockAPI, make_model: Make) -> None:
    api.queue(completion("not json"))
    structured = make_model().with_structured_output(Person, method="json_mode")
    with pytest.raises(OutputParserException):
        structured.invoke("Who?")
