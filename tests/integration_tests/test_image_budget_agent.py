"""The image budget in ``create_agent``, over real HTTP: what the local server received.

The agent takes a 1920 x 1080 screenshot at every step (``tests/_agent_loop.py``); its model is
scripted but sends every call to :class:`LocalAfarensisServer` with ``ChatAfarensis``. An ASGI
middleware records each request body the server received.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ContextEditingMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_afarensis_vision import ImageBudgetEdit
from langchain_afarensis_vision.server import LocalAfarensisServer
from tests._agent_loop import (
    ScriptedOverHttp,
    body_images,
    plan,
    run_agent,
    screenshot_block,
    take_screenshot,
)

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

SCREENSHOT_TOKENS = 1105  # 1920 x 1080 at auto detail: seen as 1365 x 768, 6 tiles


class BodyRecorder:
    """ASGI middleware that keeps the body of every chat-completion request received."""

    def __init__(self, app: ASGIApp, bodies: list[bytes]) -> None:
        self.app = app
        self.bodies = bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(b"".join(chunks))
            return message

        await self.app(scope, recording, send)


Served = tuple[LocalAfarensisServer, list[bytes]]


@pytest.fixture
def server() -> Iterator[Served]:
    local = LocalAfarensisServer(ocr=False)
    bodies: list[bytes] = []
    local.app.add_middleware(BodyRecorder, bodies=bodies)
    with local:
        yield local, bodies


def model(server: LocalAfarensisServer, turns: int, **clients: Any) -> ScriptedOverHttp:
    return ScriptedOverHttp(
        base_url=server.base_url,
        api_key=server.api_key,
        max_retries=0,
        max_tokens=50,
        script=plan(turns),
        **clients,
    )


def image_size(image_url: dict[str, Any]) -> tuple[int, int]:
    data = base64.b64decode(image_url["url"].partition(",")[2])
    with Image.open(io.BytesIO(data)) as opened:
        return opened.size


def tool_texts(body: bytes) -> list[str]:
    return [m["content"] for m in json.loads(body)["messages"] if m["role"] == "tool"]


def check_state_untouched(messages: list[BaseMessage], turns: int) -> None:
    """The agent's stored messages still hold every screenshot as the tool returned it."""
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.content for m in results] == [screenshot_block(s) for s in range(1, turns + 1)]
    assert isinstance(messages[0], HumanMessage)
    assert isinstance(messages[-1], AIMessage)


def test_create_agent_sends_images_within_the_budget(server: Served) -> None:
    local, bodies = server
    edit = ImageBudgetEdit(max_image_tokens=1_500, keep_detail=1)
    with httpx2.Client() as client:
        agent_model = model(local, 6, http_client=client)
        messages = run_agent(agent_model, [ContextEditingMiddleware(edits=[edit])])
    check_state_untouched(messages, 6)
    assert len(bodies) == 7  # a call per step, and the final answer
    # What each call received, oldest image first: the newest at its detail (1105 tokens), then
    # low (85 each) while the 1,500 tokens last (4 of them), the oldest as a line of text.
    expected = [[], ["auto"], ["low", "auto"], ["low"] * 2 + ["auto"], ["low"] * 3 + ["auto"]]
    expected += [["low"] * 4 + ["auto"]] * 2
    assert [[i["detail"] for i in body_images(b)] for b in bodies] == expected
    last = body_images(bodies[-1])
    assert [image_size(i) for i in last] == [(512, 288)] * 4 + [(1365, 768)]
    texts = tool_texts(bodies[-1])
    assert texts[0] == (
        "Screenshot of step 1, saved as shot_01.png\n[An image was here (inline image, "
        "1920x1080); left out to keep the context small.]"
    )
    assert all(t.startswith("Screenshot of step") for t in texts)
    wire = json.loads(bodies[-1])["messages"]
    calls = [c["id"] for m in wire if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert calls == [m["tool_call_id"] for m in wire if m["role"] == "tool"]
    # The server's own count: at most 1,500 image tokens a call, against 6 x 1105 without.
    final = messages[-1]
    assert isinstance(final, AIMessage)
    final_usage = final.usage_metadata
    assert final_usage is not None
    without_images = final_usage["input_tokens"] - (SCREENSHOT_TOKENS + 4 * 85)
    assert 0 < without_images < 1_000


async def test_create_agent_async_with_a_zero_budget(server: Served) -> None:
    local, bodies = server
    edit = ImageBudgetEdit(max_image_tokens=0)
    async with httpx2.AsyncClient() as client:
        agent_model = model(local, 3, http_async_client=client)
        agent = create_agent(
            agent_model,
            tools=[take_screenshot],
            middleware=[ContextEditingMiddleware(edits=[edit])],
        )
        result = await agent.ainvoke({"messages": [HumanMessage("Look around.")]})
    check_state_untouched(list(result["messages"]), 3)
    assert len(bodies) == 4
    assert all(body_images(b) == [] for b in bodies)
    assert [t.count("[An image was here") for t in tool_texts(bodies[-1])] == [1, 1, 1]


def test_without_the_middleware_every_screenshot_is_sent_every_time(server: Served) -> None:
    local, bodies = server
    with httpx2.Client() as client:
        messages = run_agent(model(local, 3, http_client=client))
    check_state_untouched(messages, 3)
    assert [[i["detail"] for i in body_images(b)] for b in bodies] == [
        [],
        ["auto"],
        ["auto"] * 2,
        ["auto"] * 3,
    ]
