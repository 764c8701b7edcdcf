"""End to end: a LangChain agent calls describe_image, which asks the local server over HTTP.

In most tests the agent's own model is scripted (it asks for the tool, then answers); the tool's
model is a real ``ChatAfarensis`` talking to :class:`LocalAfarensisServer` on loopback. In the
last ones the agent's model is a ``ChatAfarensis`` too: the stand-in engine calls the tool
because the user names an image, then answers from its result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from PIL import Image, ImageDraw
from pydantic import Field
from starlette.types import ASGIApp, Receive, Scope, Send

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.server import LocalAfarensisServer
from langchain_afarensis_vision.server.engine import INTRO, TEXT_ONLY_ANSWER
from langchain_afarensis_vision.tools import AfarensisDescribeImageTool

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

FINAL = "The chart shows three blue bars on a white background."


class ScriptedAgentModel(GenericFakeChatModel):
    """Answers with the scripted messages in turn, recording what it was shown."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def script(image: str, final: str) -> ScriptedAgentModel:
    call = {"name": "describe_image", "args": {"image": image, "question": "What is in it?"}}
    first = AIMessage(content="", tool_calls=[{**call, "id": "call_1", "type": "tool_call"}])
    return ScriptedAgentModel(messages=iter([first, AIMessage(content=final)]))


class Recorder:
    """ASGI middleware that notes the path of every HTTP request the server receives."""

    def __init__(self, app: ASGIApp, paths: list[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


Served = tuple[LocalAfarensisServer, list[str]]
"""The running server, and the paths of the requests it received."""


@pytest.fixture
def server() -> Iterator[Served]:
    local = LocalAfarensisServer()
    paths: list[str] = []
    local.app.add_middleware(Recorder, paths=paths)
    with local:
        yield local, paths


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """An allowed directory holding chart.png: three blue bars on white."""
    allowed = tmp_path / "workspace" / "images"
    allowed.mkdir(parents=True)
    chart = Image.new("RGB", (200, 120), "white")
    draw = ImageDraw.Draw(chart)
    for left, top in ((20, 60), (80, 30), (140, 10)):
        draw.rectangle((left, top, left + 30, 110), fill="blue")
    chart.save(allowed / "chart.png")
    return allowed


def describe_tool(
    server: LocalAfarensisServer, images: Path, **clients: Any
) -> AfarensisDescribeImageTool:
    llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_retries=0, **clients)
    return AfarensisDescribeImageTool(
        llm=llm, allowed_dirs=[images], response_format="content_and_artifact"
    )


@pytest.fixture
def tool(images: Path, server: Served) -> Iterator[AfarensisDescribeImageTool]:
    with httpx2.Client() as client:  # closed here: no unclosed-socket warnings
        yield describe_tool(server[0], images, http_client=client)


def run(agent_model: ScriptedAgentModel, tool: AfarensisDescribeImageTool) -> list[BaseMessage]:
    agent = create_agent(agent_model, tools=[tool], system_prompt="Use describe_image for images.")
    result = agent.invoke({"messages": [HumanMessage("What does chart.png show?")]})
    return list(result["messages"])


async def arun(
    agent_model: ScriptedAgentModel, tool: AfarensisDescribeImageTool
) -> list[BaseMessage]:
    agent = create_agent(agent_model, tools=[tool], system_prompt="Use describe_image for images.")
    result = await agent.ainvoke({"messages": [HumanMessage("What does chart.png show?")]})
    return list(result["messages"])


def check_described(
    messages: list[BaseMessage], agent_model: ScriptedAgentModel, paths: list[str]
) -> None:
    human, call, answer, final = messages
    assert isinstance(human, HumanMessage)
    assert isinstance(call, AIMessage)
    assert call.tool_calls[0]["name"] == "describe_image"
    assert isinstance(answer, ToolMessage)
    assert answer.status == "success"
    assert answer.tool_call_id == "call_1"
    text = str(answer.content)
    assert text.startswith("I am the local Afarensis engine")
    assert "a PNG of 200 x 120 pixels" in text
    assert "blue" in text
    assert answer.artifact["width"] == 200
    assert answer.artifact["source"].endswith("chart.png")
    assert isinstance(final, AIMessage)
    assert final.content == FINAL
    assert agent_model.seen[-1][-1] == answer  # the agent read the tool's answer
    assert paths == ["/v1/chat/completions"]


def test_agent_describes_a_local_image(tool: AfarensisDescribeImageTool, server: Served) -> None:
    agent_model = script("chart.png", FINAL)
    check_described(run(agent_model, tool), agent_model, server[1])


async def test_agent_describes_a_local_image_async(images: Path, server: Served) -> None:
    agent_model = script("chart.png", FINAL)
    async with httpx2.AsyncClient() as client:
        tool = describe_tool(server[0], images, http_async_client=client)
        check_described(await arun(agent_model, tool), agent_model, server[1])


def test_agent_asking_for_etc_passwd_is_refused(
    tool: AfarensisDescribeImageTool, server: Served
) -> None:
    first = script("chart.png", FINAL)
    check_described(run(first, tool), first, server[1])
    agent_model = script("../../etc/passwd", "I may not read that file.")
    human, call, refusal, final = run(agent_model, tool)
    assert isinstance(human, HumanMessage)
    assert isinstance(call, AIMessage)
    assert call.tool_calls[0]["args"]["image"] == "../../etc/passwd"
    assert isinstance(refusal, ToolMessage)
    assert refusal.status == "error"
    assert str(refusal.content) == (
        "describe_image refused the image: "
        "'../../etc/passwd' leads outside the allowed directories ('..'). "
        f"Give a file name relative to an allowed directory: '{tool.allowed_dirs[0]}' "
        "(holds 'chart.png')."
    )
    assert final.content == "I may not read that file."
    assert server[1] == ["/v1/chat/completions"]  # only the first run's: none for this one


# -- the stand-in engine as the agent's model ----------------------------------------------------


def engine_agent_run(
    server: LocalAfarensisServer, tool: AfarensisDescribeImageTool, question: str
) -> list[BaseMessage]:
    """One agent run whose model is the stand-in engine itself (no script)."""
    with httpx2.Client() as client:
        model = ChatAfarensis(
            base_url=server.base_url, api_key=server.api_key, max_retries=0, http_client=client
        )
        agent = create_agent(model, tools=[tool])
        result = agent.invoke({"messages": [HumanMessage(question)]}, {"recursion_limit": 10})
    return list(result["messages"])


def test_engine_agent_calls_describe_image_and_answers_from_it(
    tool: AfarensisDescribeImageTool, server: Served
) -> None:
    _, call, result, final = engine_agent_run(server[0], tool, "What does chart.png show?")
    assert isinstance(call, AIMessage)
    assert call.response_metadata["finish_reason"] == "tool_calls"
    assert call.response_metadata["stand_in"]["placeholders"] == []
    (tool_call,) = call.tool_calls
    assert tool_call["name"] == "describe_image"
    assert tool_call["args"] == {"image": "chart.png", "question": "What does chart.png show?"}
    assert tool_call["id"]
    assert tool_call["id"].startswith("call_local_")
    assert isinstance(result, ToolMessage)
    assert result.status == "success"
    assert result.tool_call_id == tool_call["id"]
    assert "a PNG of 200 x 120 pixels" in str(result.content)
    assert isinstance(final, AIMessage)
    assert not final.tool_calls  # answered from the result: no second call
    assert final.response_metadata["finish_reason"] == "stop"
    text = str(final.content)
    assert text.startswith(INTRO)
    # The tool's answer is quoted without its own introduction: the stand-in says it once.
    measured = str(result.content).partition("\n")[2]
    assert f"The tool `describe_image` returned: {measured}" in text
    assert text.count(INTRO) == 1
    assert server[1] == ["/v1/chat/completions"] * 3  # agent, tool, agent


def test_engine_agent_without_a_named_image_answers_in_text(
    tool: AfarensisDescribeImageTool, server: Served
) -> None:
    _, final = engine_agent_run(server[0], tool, "Hello, what can you do?")
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    assert final.content == TEXT_ONLY_ANSWER
