"""Tools and structured output on the Chat Completions wire format.

``tools_kwargs`` turns LangChain tools into the ``tools``/``tool_choice`` request fields;
``structured_runnable`` builds ``with_structured_output`` for the three methods (forced tool call,
``json_schema`` response format, ``json_object`` response format).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

if TYPE_CHECKING:
    from langchain_afarensis_vision.chat_models import ChatAfarensis

Method = Literal["function_calling", "json_mode", "json_schema"]
ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


def tool_choice_field(
    choice: str | bool | dict[str, Any], names: list[str]
) -> str | dict[str, Any]:
    """The wire ``tool_choice`` for LangChain's spellings of it."""
    if isinstance(choice, dict):
        return choice
    if choice is True or choice in {"any", "required"}:
        return "required"
    if choice in {"auto", "none"}:
        return str(choice)
    if isinstance(choice, str) and choice in names:
        return {"type": "function", "function": {"name": choice}}
    msg = f"tool_choice {choice!r} is not 'auto', 'none', 'any', 'required' or one of {names}"
    raise ValueError(msg)


def tools_kwargs(
    tools: Sequence[ToolLike],
    tool_choice: str | bool | dict[str, Any] | None,
    strict: bool | None,
    parallel_tool_calls: bool | None,
) -> dict[str, Any]:
    """Request fields for binding ``tools``."""
    wire = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
    fields: dict[str, Any] = {"tools": wire}
    if tool_choice is not None and tool_choice is not False:
        names = [tool["function"]["name"] for tool in wire]
        fields["tool_choice"] = tool_choice_field(tool_choice, names)
    if parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = parallel_tool_calls
    return fields


def _response_format(schema: dict[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    json_schema = convert_to_json_schema(schema)
    spec: dict[str, Any] = {
        "name": json_schema.get("title", "output"),
        "schema": json_schema,
    }
    if json_schema.get("description"):
        spec["description"] = json_schema["description"]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def structured_runnable(
    model: ChatAfarensis,
    schema: dict[str, Any] | type,
    method: Method,
    strict: bool | None,
    include_raw: bool,
) -> Runnable[Any, Any]:
    """The runnable behind ``ChatAfarensis.with_structured_output``."""
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable[Any, Any]
    if method == "function_calling":
        llm = model.bind_tools(
            [schema], tool_choice="any", strict=strict, ls_structured_output_format=trace
        )
        if is_pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
        else:
            name = convert_to_openai_tool(schema)["function"]["name"]
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method in {"json_schema", "json_mode"}:
        response_format = (
            _response_format(schema, strict) if method == "json_schema" else {"type": "json_object"}
        )
        llm = model.bind(response_format=response_format, ls_structured_output_format=trace)
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    else:
        msg = f"method must be function_calling, json_schema or json_mode; got {method!r}"
        raise ValueError(msg)
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")
