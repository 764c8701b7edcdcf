"""A schema-valid request body read into what the server acts on, with the API's own checks.

Checks beyond the schema, each a 400 ``invalid_value`` naming the field (or a 404 for the
model): the model must be one the server serves; ``max_tokens`` (or ``max_completion_tokens``)
must be in 1..4096; ``stream_options`` needs ``stream``; ``tool_choice`` needs ``tools`` and
must name one of them; custom tools, the deprecated ``functions``/``function_call`` and audio
output are refused; image URLs must be ``http``, ``https`` or ``data``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from langchain_afarensis_vision._api.contract import MAX_OUTPUT_TOKENS, prompt_text_tokens
from langchain_afarensis_vision.server._errors import invalid_value, model_not_found
from langchain_afarensis_vision.server._images import ImageRef, SeenImage, check_scheme
from langchain_afarensis_vision.server._json import parse_json
from langchain_afarensis_vision.server._validation import validate_request


@dataclass(frozen=True)
class ChatRequest:
    """What a chat-completion request asks for; ``digest`` identifies the exact body."""

    model: str
    messages: list[dict[str, Any]]
    images: tuple[ImageRef, ...]
    stream: bool
    include_usage: bool
    max_tokens: int
    stop: tuple[str, ...]
    n: int
    tools: tuple[dict[str, Any], ...]
    """The ``tools`` as sent (function tools only)."""
    forced_tool: dict[str, Any] | None
    callable_tools: tuple[dict[str, Any], ...]
    """The functions the model may call on its own (``tool_choice`` "auto", none, or
    ``allowed_tools`` in "auto" mode)."""
    parallel_tool_calls: bool
    response_format: dict[str, Any] | None
    digest: str
    text_tokens: int = 0
    """Prompt tokens of the text (messages, tool calls, tools), without the images."""


def read_body(raw: bytearray, models: Sequence[str], default_max_tokens: int) -> ChatRequest:
    """Parse, validate and read a request body (CPU work: the caller runs it off the loop).

    ``raw`` is emptied once parsed, so its memory goes back before the rest of the work.
    """
    digest = hashlib.blake2b(raw, digest_size=12).hexdigest()
    body = parse_json(raw)
    raw.clear()
    validate_request(body)
    return read_request(body, digest, models, default_max_tokens)


def read_request(
    body: dict[str, Any], digest: str, models: Sequence[str], default_max_tokens: int
) -> ChatRequest:
    """Read a body that passed schema validation; raise an APIError for what the API refuses."""
    if body["model"] not in models:
        raise model_not_found(body["model"])
    for name in ("functions", "function_call"):
        if body.get(name) is not None:
            msg = f"'{name}' is deprecated and not served here: use 'tools' and 'tool_choice'."
            raise invalid_value(msg, name)
    if body.get("audio") is not None or "audio" in (body.get("modalities") or ()):
        raise invalid_value("gpt-4-vision-preview cannot answer with audio.", "modalities")
    stream = bool(body.get("stream"))
    if body.get("stream_options") is not None and not stream:
        msg = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise invalid_value(msg, "stream_options")
    tools = tuple(body.get("tools") or [])
    functions = _functions(tools)
    stop = body.get("stop")
    request = ChatRequest(
        model=body["model"],
        messages=body["messages"],
        images=tuple(_image_refs(body["messages"])),
        stream=stream,
        include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        max_tokens=_max_tokens(body, default_max_tokens),
        stop=tuple(s for s in ([stop] if isinstance(stop, str) else stop or []) if s),
        n=body.get("n") or 1,
        tools=tools,
        forced_tool=_forced_tool(body.get("tool_choice"), functions),
        callable_tools=_callable_tools(body.get("tool_choice"), functions),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        response_format=body.get("response_format"),
        digest=digest,
    )
    return replace(request, text_tokens=prompt_text_tokens(request.messages, tools))


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not 1 <= value <= MAX_OUTPUT_TOKENS:
            msg = (
                f"{name} is {value}, but this model supports from 1 to {MAX_OUTPUT_TOKENS} "
                "completion tokens."
            )
            raise invalid_value(msg, name)
        return int(value)
    return default


def _image_refs(messages: list[dict[str, Any]]) -> list[ImageRef]:
    refs = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if part.get("type") == "image_url":
                param = f"messages[{i}].content[{j}].image_url"
                url, detail = part["image_url"]["url"], part["image_url"].get("detail", "auto")
                check_scheme(url, param)
                refs.append(ImageRef(url=url, detail=detail, param=param))
    return refs


def _functions(tools: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            msg = "Custom tools are not supported by gpt-4-vision-preview: use function tools."
            raise invalid_value(msg, f"tools[{i}]")
    return tuple(tool["function"] for tool in tools)


def _forced_tool(choice: Any, tools: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    """The function a ``tool_choice`` forces, if any."""
    if choice is None:
        return None
    if not tools:
        msg = "'tool_choice' is only allowed when 'tools' are specified."
        raise invalid_value(msg, "tool_choice")
    if choice in ("none", "auto"):
        return None
    if choice == "required":
        return tools[0]
    if choice.get("type") == "allowed_tools":
        allowed = choice["allowed_tools"]
        if allowed.get("mode") != "required":
            return None
        names = [t.get("function", {}).get("name") for t in allowed.get("tools", [])]
        return next((tool for tool in tools if tool["name"] in names), None) or _unknown(names)
    name = (choice.get("function") or choice.get("custom") or {}).get("name")
    return next((tool for tool in tools if tool["name"] == name), None) or _unknown([name])


def _callable_tools(choice: Any, tools: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The functions a model may choose to call: none when forced or forbidden."""
    if choice is None or choice == "auto":
        return tools
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice["allowed_tools"]
        if allowed.get("mode") == "auto":
            names = {t.get("function", {}).get("name") for t in allowed.get("tools", [])}
            return tuple(tool for tool in tools if tool["name"] in names)
    return ()


def _unknown(names: list[Any]) -> NoReturn:
    msg = f"tool_choice names {', '.join(map(str, names))}, which is not among 'tools'."
    raise invalid_value(msg, "tool_choice")


@dataclass(frozen=True)
class PromptTokens:
    """``usage.prompt_tokens`` in two parts."""

    text: int
    images: int

    @property
    def total(self) -> int:
        """Text and image tokens together."""
        return self.text + self.images


def prompt_tokens(request: ChatRequest, images: Sequence[SeenImage]) -> PromptTokens:
    """Prompt tokens as ``_tokens.count_messages`` counts them on the client side."""
    return PromptTokens(request.text_tokens, sum(image.tokens for image in images))
