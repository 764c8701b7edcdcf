"""The token-aware limiter against the local server's real limits, over HTTP.

The server counts tokens (prompt + ``max_tokens``) over a sliding minute and answers 429 past
its limit. Twenty requests at once, worth about twice the minute's tokens: without a limiter
half of them are refused; with one limiter shared by two models, learning the limit from the
answers' headers, none is, and the others wait their turn (the test stops them after the
first minute's worth, rather than wait a minute).
"""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from PIL import Image

from langchain_afarensis_vision import AfarensisRateLimiter, ChatAfarensis, RateLimitError
from langchain_afarensis_vision.server import LocalAfarensisServer

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

TOKENS_PER_MINUTE = 2000
MAX_TOKENS = 100


def _question(n: int) -> list[HumanMessage]:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (n, 100, 200)).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    image = {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    return [HumanMessage(content=[{"type": "text", "text": f"Image {n}?"}, image])]


def _model(server: LocalAfarensisServer, **kwargs: object) -> ChatAfarensis:
    return ChatAfarensis(
        base_url=server.base_url,
        api_key=server.api_key,
        max_tokens=MAX_TOKENS,
        max_retries=0,
        **kwargs,
    )


async def test_without_a_limiter_the_token_limit_turns_into_429s() -> None:
    with LocalAfarensisServer(tokens_per_minute=TOKENS_PER_MINUTE) as server:
        model = _model(server)
        results = await asyncio.gather(
            *(model.ainvoke(_question(n)) for n in range(20)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, RateLimitError)]
    print(f"\n{len(refused)} of 20 refused with 429 without a limiter")
    assert len(refused) >= 8


async def test_one_shared_limiter_keeps_two_models_under_the_limit() -> None:
    limiter = AfarensisRateLimiter(check_every=0.05)
    with LocalAfarensisServer(tokens_per_minute=TOKENS_PER_MINUTE) as server:
        models = [_model(server, rate_limiter=limiter) for _ in range(2)]
        tasks = [asyncio.create_task(models[n % 2].ainvoke(_question(n))) for n in range(20)]
        done, pending = await asyncio.wait(tasks, timeout=3)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    answers = [task.result() for task in done]
    print(f"\n{len(answers)} answered in the first minute, {limiter.rate_limited} 429s")
    billed = 0
    for answer in answers:
        assert answer.usage_metadata is not None
        billed += answer.usage_metadata["input_tokens"] + MAX_TOKENS
    assert limiter.learned
    assert limiter.limit_tokens == TOKENS_PER_MINUTE
    assert limiter.rate_limited == 0
    assert 5 <= len(answers) < 20  # a minute's worth went; the rest wait for the window
    assert billed <= TOKENS_PER_MINUTE
    assert TOKENS_PER_MINUTE - billed < billed / len(answers) + MAX_TOKENS  # and it was used


def _png(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _image(size: tuple[int, int], detail: str) -> dict[str, object]:
    url = "data:image/png;base64," + _png(size)
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


CONVERSATIONS: dict[str, list[BaseMessage]] = {
    "text": [HumanMessage("Hello there, how are you today?")],
    "system+user": [SystemMessage("You are terse."), HumanMessage("Describe a cat.")],
    "image-low": [
        HumanMessage(content=[{"type": "text", "text": "What?"}, _image((64, 64), "low")])
    ],
    "image-high": [
        HumanMessage(content=[{"type": "text", "text": "What?"}, _image((3000, 1000), "high")])
    ],
    "multi-turn": [
        HumanMessage("Hi"),
        AIMessage("Hello! How can I help?"),
        HumanMessage("A joke?"),
    ],
    "named": [HumanMessage("Hi", name="alice")],
    "tool-call": [
        HumanMessage("Weather?"),
        AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call_1"}]),
        ToolMessage("Sunny, 20C", tool_call_id="call_1"),
    ],
}


def test_what_the_limiter_charges_is_what_the_server_bills() -> None:
    """The limiter charges the client's count + max_tokens; the server bills (and limits) the
    same prompt tokens, so a run that keeps to the limiter keeps to the server."""
    with LocalAfarensisServer() as server:
        model = _model(server)
        for name, messages in CONVERSATIONS.items():
            counted = model.get_num_tokens_from_messages(messages)
            answer = model.invoke(messages)
            assert answer.usage_metadata is not None
            assert answer.usage_metadata["input_tokens"] == counted, name
