"""Check, on every request a test or notebook makes, that the client's count is the server's bill.

:func:`install` wraps :class:`ChatAfarensis`'s four entry points: each request's messages and
tools are counted by ``_tokens.count_parts`` (what ``get_num_tokens_from_messages`` returns) and
compared with the ``usage`` the local server answered: the text tokens always, the total too
unless a URL image is in the request (the client counts those at the upper bound unless asked to
download them; the server downloads them). Streams are compared when they carry usage.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.chat_models import _tokens as _tokens
from langchain_afarensis_vision.chat_models._messages import ImageUrl, message_parts


@dataclass
class UsageCheck:
    """Requests compared, and the ones where the client and the server disagreed."""

    compared: int = 0
    totals_compared: int = 0
    disagreements: list[str] = field(default_factory=list)

    def compare(
        self, model: ChatAfarensis, messages: list[BaseMessage], kwargs: Any, usage: Any
    ) -> None:
        if not usage:
            return
        text, images = _tokens.count_parts(messages, kwargs.get("tools"), model.image_detail)
        details = usage.get("prompt_tokens_details") or {}
        self.compared += 1
        problems = []
        if details.get("text_tokens") != text:
            problems.append(f"text: client {text}, server {details.get('text_tokens')}")
        if not any(_has_url(m, model) for m in messages):
            self.totals_compared += 1
            if usage["prompt_tokens"] != text + images:
                problems.append(f"total: client {text + images}, server {usage['prompt_tokens']}")
        if problems:
            self.disagreements.append(f"{'; '.join(problems)} for {messages!r:.300}")


def _has_url(message: BaseMessage, model: ChatAfarensis) -> bool:
    return any(isinstance(p, ImageUrl) for p in message_parts(message, model.image_detail))


def _stream_usage(chunks: list[ChatGenerationChunk]) -> Any:
    return next(
        (
            c.message.response_metadata.get("token_usage")
            for c in chunks[::-1]
            if c.message.response_metadata.get("token_usage")
        ),
        None,
    )


ORIGINALS: dict[str, Callable[..., Any]] = {}


def install() -> UsageCheck:
    """Wrap ChatAfarensis's entry points (until :func:`uninstall`); returns the running check."""
    check = UsageCheck()
    names = ("_generate", "_agenerate", "_stream", "_astream")
    ORIGINALS.update(
        {name: getattr(ChatAfarensis, name) for name in names if name not in ORIGINALS}
    )
    generate, agenerate = ORIGINALS["_generate"], ORIGINALS["_agenerate"]
    stream, astream = ORIGINALS["_stream"], ORIGINALS["_astream"]

    @functools.wraps(generate)
    def _generate(
        self: ChatAfarensis, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        result: ChatResult = generate(self, messages, *args, **kwargs)
        check.compare(self, messages, kwargs, (result.llm_output or {}).get("token_usage"))
        return result

    @functools.wraps(agenerate)
    async def _agenerate(
        self: ChatAfarensis, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        result: ChatResult = await agenerate(self, messages, *args, **kwargs)
        check.compare(self, messages, kwargs, (result.llm_output or {}).get("token_usage"))
        return result

    @functools.wraps(stream)
    def _stream(
        self: ChatAfarensis, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        chunks = []
        for chunk in stream(self, messages, *args, **kwargs):
            chunks.append(chunk)
            yield chunk
        check.compare(self, messages, kwargs, _stream_usage(chunks))

    @functools.wraps(astream)
    async def _astream(
        self: ChatAfarensis, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunks = []
        async for chunk in astream(self, messages, *args, **kwargs):
            chunks.append(chunk)
            yield chunk
        check.compare(self, messages, kwargs, _stream_usage(chunks))

    for name, wrapper in zip(names, (_generate, _agenerate, _stream, _astream), strict=True):
        setattr(ChatAfarensis, name, wrapper)
    return check


def uninstall() -> None:
    """Put ChatAfarensis's own entry points back."""
    for name, original in ORIGINALS.items():
        setattr(ChatAfarensis, name, original)
