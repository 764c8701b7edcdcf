"""A scripted Afarensis API on ``httpx2.MockTransport``, for narrow transport-level unit tests.

Every request it receives is checked against ``CreateChatCompletionRequest`` and every body it
answers with against the response schemas, so tests that use it also prove the wire contract.
Tests that need a real server use the local server instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from tests._schema import assert_valid

Answer = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


def completion(
    content: str | None = "Hello!",
    *,
    model: str = "gpt-4-vision-preview",
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (12, 3),
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_test",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }
    assert_valid("CreateChatCompletionResponse", body)
    return body


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
    model: str = "gpt-4-vision-preview",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_test",
        "choices": []
        if usage
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    assert_valid("CreateChatCompletionStreamResponse", body)
    return body


def text_stream(*pieces: str, usage: tuple[int, int] | None = (12, 3)) -> list[dict[str, Any]]:
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, finish_reason="stop"))
    if usage:
        events.append(chunk(usage=usage))
    return events


def sse(events: list[dict[str, Any]], *, done: bool = True, status: int = 200) -> httpx2.Response:
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    if done:
        text += "data: [DONE]\n\n"
    return httpx2.Response(status, text=text, headers={"content-type": "text/event-stream"})


def error(
    status: int, code: str, message: str = "boom", headers: dict[str, str] | None = None
) -> httpx2.Response:
    kind = {
        401: "authentication_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    assert_valid("ErrorResponse", body)
    return httpx2.Response(status, json=body, headers=headers)


@dataclass
class MockAPI:
    """Answers requests from a queue (the last answer repeats) and records what was sent."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[httpx2.Request] = field(default_factory=list)

    def queue(self, *answers: Answer | dict[str, Any]) -> MockAPI:
        for answer in answers:
            self.answers.append(
                httpx2.Response(200, json=answer) if isinstance(answer, dict) else answer
            )
        return self

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path.endswith("/chat/completions"):
            assert_valid("CreateChatCompletionRequest", json.loads(request.content))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        # A fresh copy each time: the last answer may be repeated, and a response is read once.
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request)

    async def ahandler(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request)

    def clients(self) -> dict[str, Any]:
        """Keyword arguments that point a ChatAfarensis at this mock."""
        return {
            "http_client": httpx2.Client(transport=httpx2.MockTransport(self.handler)),
            "http_async_client": httpx2.AsyncClient(transport=httpx2.MockTransport(self.ahandler)),
        }
