"""Answer bodies: a ``CreateChatCompletionResponse``, or the events of a streamed answer.

A streamed answer is one ``data: <CreateChatCompletionStreamResponse>`` event per chunk: for
each choice a first chunk with the role, the content in pieces of a few words (or the tool
call, its arguments in pieces), and a last chunk with ``finish_reason``; then, when
``stream_options.include_usage`` is set, a chunk with ``choices: []`` and the usage (every
earlier chunk then carries ``"usage": null``, as the API does); then ``data: [DONE]``.

An answer's ``metadata`` says it is the stand-in's and which values are placeholders
(``_api.contract.stand_in_metadata``): on the body, and on each stream chunk with a
``finish_reason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from langchain_afarensis_vision.server._request import ChatRequest, PromptTokens
from langchain_afarensis_vision.server.engine import Answer

SYSTEM_FINGERPRINT: Final = "fp_local_afarensis"
PIECE_CHARS: Final = 24
"""Streamed content comes in pieces of whole words, about this many characters each."""
DONE: Final = b"data: [DONE]\n\n"
_WORDS = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Meta:
    """The fields every body of one answer shares."""

    id: str
    created: int
    model: str

    @classmethod
    def of(cls, request: ChatRequest, created: int) -> Meta:
        """The shared fields for ``request``; the id is derived from the exact body."""
        return cls(f"chatcmpl-local-{request.digest}", created, request.model)


def usage(prompt: PromptTokens, answer: Answer, n: int) -> dict[str, Any]:
    """The ``usage`` object (``n`` identical choices each count their completion tokens)."""
    completion = answer.completion_tokens * n
    return {
        "prompt_tokens": prompt.total,
        "completion_tokens": completion,
        "total_tokens": prompt.total + completion,
        "prompt_tokens_details": {"text_tokens": prompt.text, "image_tokens": prompt.images},
    }


def completion(meta: Meta, answer: Answer, n: int, usage: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateChatCompletionResponse`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = list(answer.tool_calls)
    choice = {"message": message, "finish_reason": answer.finish_reason, "logprobs": None}
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "metadata": answer.metadata,
        "choices": [{"index": i, **choice} for i in range(n)],
        "usage": usage,
    }


def pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of whole words of about :data:`PIECE_CHARS` characters."""
    piece = ""
    for word in _WORDS.findall(text):
        piece += word
        if len(piece) >= PIECE_CHARS:
            yield piece
            piece = ""
    if piece:
        yield piece


def chunks(
    meta: Meta, answer: Answer, n: int, usage: dict[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """The stream's chunks; ``usage`` given means ``include_usage`` was asked for."""
    base: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if usage is not None:
        base["usage"] = None
    for index in range(n):
        for delta, finish in _deltas(answer):
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            said = {"metadata": answer.metadata} if finish is not None else {}
            yield {**base, **said, "choices": [choice]}
    if usage is not None:
        yield {**base, "choices": [], "usage": usage}


def _deltas(answer: Answer) -> Iterator[tuple[dict[str, Any], str | None]]:
    if answer.tool_calls:
        yield {"role": "assistant", "content": None}, None
        for i, call in enumerate(answer.tool_calls):
            function = call["function"]
            head = {"name": function["name"], "arguments": ""}
            yield (
                {
                    "tool_calls": [
                        {"index": i, "id": call["id"], "type": "function", "function": head}
                    ]
                },
                None,
            )
            for piece in pieces(function["arguments"]):
                yield {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, None
    else:
        yield {"role": "assistant", "content": ""}, None
        for piece in pieces(answer.content or ""):
            yield {"content": piece}, None
    yield {}, answer.finish_reason


def sse(chunk: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return (
        b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )
