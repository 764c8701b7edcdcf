"""Chat Completions responses and stream chunks to LangChain results.

Pure functions: a parsed JSON body in, a ``ChatResult`` or ``ChatGenerationChunk`` out. Metadata
that LangChain merges by string concatenation (``model_name``, ``finish_reason``,
``system_fingerprint``) is put on exactly one stream chunk: the one that carries
``finish_reason``. Usage is put on exactly one chunk too: the last, ``choices: []`` one that
``stream_options.include_usage`` asks for. A refusal goes to ``additional_kwargs["refusal"]``,
whole or in streamed pieces (which LangChain concatenates). The local server's stand-in engine
marks its answers in the response's ``metadata``; that is read into
``response_metadata["stand_in"]`` (``{"engine", "placeholders", "measured"?}``).
"""

from __future__ import annotations

import json
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages.ai import InputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_afarensis_vision._api.contract import read_stand_in

PROVIDER = "afarensis"


def usage_metadata(usage: dict[str, Any] | None) -> UsageMetadata | None:
    """The API's ``usage`` object as LangChain ``UsageMetadata``.

    ``input_token_details`` holds what ``prompt_tokens_details`` reports: ``cache_read``
    (``cached_tokens``) and ``image`` (``image_tokens``, a provider-specific key, which
    langchain-core allows beside its own), and is left out when there is neither. The whole
    ``usage`` object is kept as ``response_metadata["token_usage"]``.
    """
    if not usage:
        return None
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(usage.get("total_tokens") or input_tokens + output_tokens),
    )
    prompt_details = usage.get("prompt_tokens_details") or {}
    details: dict[str, int] = {
        ours: int(prompt_details[theirs])
        for theirs, ours in _INPUT_DETAILS.items()
        if isinstance(prompt_details.get(theirs), int)
    }
    if details:
        result["input_token_details"] = cast(InputTokenDetails, details)
    return result


_INPUT_DETAILS = {"cached_tokens": "cache_read", "image_tokens": "image"}
"""``prompt_tokens_details`` fields, by their ``input_token_details`` key."""


def _tool_calls(raw_calls: list[dict[str, Any]]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        function = raw.get("function") or {}
        name, arguments, call_id = function.get("name"), function.get("arguments"), raw.get("id")
        try:
            args = json.loads(arguments) if arguments else {}
            if not isinstance(args, dict):
                raise TypeError("tool-call arguments must be a JSON object")
            calls.append(tool_call(name=name or "", args=args, id=call_id))
        except (TypeError, ValueError) as exc:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=str(exc)))
    return calls, invalid


def _metadata(body: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    metadata = {
        "model_name": body.get("model"),
        "finish_reason": finish_reason,
        "system_fingerprint": body.get("system_fingerprint"),
        "id": body.get("id"),
        "model_provider": PROVIDER,
    }
    stand_in = read_stand_in(body.get("metadata"))
    if stand_in is not None:
        metadata["stand_in"] = stand_in
    return metadata


def parse_completion(body: dict[str, Any]) -> ChatResult:
    """A ``CreateChatCompletionResponse`` body as a ``ChatResult`` (one generation per choice)."""
    usage = usage_metadata(body.get("usage"))
    generations = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        calls, invalid = _tool_calls(message.get("tool_calls") or [])
        ai = AIMessage(
            content=message.get("content") or "",
            tool_calls=calls,
            invalid_tool_calls=invalid,
            usage_metadata=usage,
            response_metadata=_metadata(body, choice.get("finish_reason")),
        )
        if message.get("refusal"):
            ai.additional_kwargs["refusal"] = message["refusal"]
        generations.append(ChatGeneration(message=ai))
    llm_output = {"token_usage": body.get("usage"), "model_name": body.get("model")}
    return ChatResult(generations=generations, llm_output=llm_output)


def _tool_call_chunks(raw_calls: list[dict[str, Any]]) -> list[ToolCallChunk]:
    return [
        tool_call_chunk(
            name=(raw.get("function") or {}).get("name"),
            args=(raw.get("function") or {}).get("arguments"),
            id=raw.get("id"),
            index=raw.get("index"),
        )
        for raw in raw_calls
    ]


def parse_chunk(body: dict[str, Any]) -> ChatGenerationChunk | None:
    """One ``CreateChatCompletionStreamResponse`` event as a chunk (None if it carries nothing)."""
    usage = usage_metadata(body.get("usage"))
    choices = body.get("choices") or []
    if not choices:
        if usage is None:
            return None
        kept = {"token_usage": body.get("usage")}  # as invoke's response_metadata has it
        chunk = AIMessageChunk(content="", usage_metadata=usage, response_metadata=kept)
        return ChatGenerationChunk(message=chunk)
    choice = choices[0]
    delta = choice.get("delta") or {}
    finish_reason = choice.get("finish_reason")
    metadata: dict[str, Any] = {"model_provider": PROVIDER}
    if finish_reason is not None:
        metadata = _metadata(body, finish_reason)
    message = AIMessageChunk(
        content=delta.get("content") or "",
        tool_call_chunks=_tool_call_chunks(delta.get("tool_calls") or []),
        usage_metadata=usage,
        response_metadata=metadata,
    )
    if delta.get("refusal"):
        message.additional_kwargs["refusal"] = delta["refusal"]
    return ChatGenerationChunk(message=message)
