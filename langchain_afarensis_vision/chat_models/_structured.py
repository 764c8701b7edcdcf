"""Tools and structured output on the Chat Completions wire format.

``tools_kwargs`` turns LangChain tools into the ``tools``/``tool_choice`` request fields. For
``with_structured_output`` and its three methods (forced tool call, ``json_schema`` response
format, ``json_object`` response format), ``structured_kwargs`` gives what to bind to the model,
``output_parser`` how to read its answer, and ``parse_output`` joins the two. The model does the
binding itself: nothing here knows the model class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

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


def structured_kwargs(
    schema: dict[str, Any] | type, method: Method, strict: bool | None
) -> dict[str, Any]:
    """Request fields to bind for ``method``, with the ``ls_structured_output_format`` trace."""
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    if method == "function_calling":
        tools = tools_kwargs([schema], tool_choice="any", strict=strict, parallel_tool_calls=None)
        return {"ls_structured_output_format": trace, **tools}
    if method == "json_schema":
        response_format = _response_format(schema, strict)
    elif method == "json_mode":
        response_format = {"type": "json_object"}
    else:
        msg = f"method must be function_calling, json_schema or json_mode; got {method!r}"
        raise ValueError(msg)
    return {"response_format": response_format, "ls_structured_output_format": trace}


def output_parser(schema: dict[str, Any] | type, method: Method) -> Runnable[Any, Any]:
    """The parser that reads ``schema`` out of an answer to ``structured_kwargs``' request."""
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    if method == "function_calling":
        if is_pydantic:
            return PydanticToolsParser(tools=[schema], first_tool_only=True)
        name = convert_to_openai_tool(schema)["function"]["name"]
        return JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    if is_pydantic:
        return PydanticOutputParser(pydantic_object=schema)
    return JsonOutputParser()


def parse_output(
    llm: Runnable[Any, Any], parser: Runnable[Any, Any], include_raw: bool
) -> Runnable[Any, Any]:
    """``llm`` then ``parser``; with ``include_raw``, ``{"raw", "parsed", "parsing_error"}``.

    With ``include_raw`` a parsing error is returned in ``parsing_error`` (``parsed`` None).
    """
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")
