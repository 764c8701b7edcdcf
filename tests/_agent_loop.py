"""A screenshot agent loop over real HTTP: shared by the image-budget test and its benchmark.

No model that chooses tools runs offline (the local server answers in text), so the agent's
model is scripted, as in ``notebooks/03_agent_describe_image.ipynb``, with one difference: every
call it gets is really sent to the server by ``ChatAfarensis`` (the request body, its images
prepared, the server's token count), and the server's answer is then replaced by the next
scripted message, which keeps the server's usage. The tool takes a 1920 x 1080 "screenshot"
(a PNG drawn with Pillow, different at every step) and returns it in its tool message.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from PIL import Image, ImageDraw
from pydantic import Field, PrivateAttr

from langchain_afarensis_vision import ChatAfarensis

SCREEN = (1920, 1080)
TASK = "Book a table for two at the first Italian place on the map."
FINAL = "Done: the table is booked."


def screenshot(step: int, size: tuple[int, int] = SCREEN) -> bytes:
    """A PNG that looks like a desktop app: a title bar, a sidebar, panels, lines of 'text'."""
    width, height = size
    image = Image.new("RGB", size, (245, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 48), fill=(40, 44, 52))
    draw.text((16, 16), f"Booking app - step {step}", fill="white")
    draw.rectangle((0, 48, 280, height), fill=(230, 232, 236))
    for row in range(12):
        draw.text((20, 70 + row * 40), f"Menu item {row + 1}", fill=(60, 60, 60))
    for panel in range(6):
        left = 320 + (panel % 3) * 520
        top = 90 + (panel // 3) * 460
        shade = (step * 37 + panel * 53) % 200
        draw.rectangle((left, top, left + 480, top + 420), fill="white", outline=(200, 200, 200))
        draw.rectangle((left + 20, top + 20, left + 460, top + 200), fill=(shade, 120, 255 - shade))
        for line in range(8):
            text = f"Result {panel + 1}.{line + 1} at step {step}: table for two, 19:{line}0"
            draw.text((left + 20, top + 220 + line * 22), text, fill=(30, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def screenshot_block(step: int) -> list[str | dict[str, Any]]:
    """What take_screenshot returns: a line of text naming the file, and the image."""
    data = base64.b64encode(screenshot(step)).decode("ascii")
    return [
        {"type": "text", "text": f"Screenshot of step {step}, saved as shot_{step:02d}.png"},
        {"type": "image", "base64": data, "mime_type": "image/png"},
    ]


@tool("take_screenshot")
def take_screenshot(step: int) -> list[str | dict[str, Any]]:
    """Take a screenshot of the screen after the given step."""
    return screenshot_block(step)


def plan(turns: int) -> list[AIMessage]:
    """The scripted agent: a screenshot at each of ``turns`` steps, then the final answer."""
    calls = [
        AIMessage(
            content=f"Step {step}: clicking on, then looking at the screen.",
            tool_calls=[{"name": "take_screenshot", "args": {"step": step}, "id": f"call_{step}"}],
        )
        for step in range(1, turns + 1)
    ]
    return [*calls, AIMessage(content=FINAL)]


class ScriptedOverHttp(ChatAfarensis):
    """Sends every call to the server for real; answers with the next scripted message."""

    script: list[AIMessage] = Field(default_factory=list)
    _turn: int = PrivateAttr(default=0)

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # the script says which tool to call; the server is sent no tool list

    def _scripted(self, result: ChatResult) -> ChatResult:
        usage = result.generations[0].message
        assert isinstance(usage, AIMessage)
        answer = self.script[self._turn].model_copy(
            update={"usage_metadata": usage.usage_metadata, "id": usage.id}
        )
        self._turn += 1
        return ChatResult(generations=[ChatGeneration(message=answer)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._scripted(super()._generate(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._scripted(await super()._agenerate(messages, stop, run_manager, **kwargs))


def run_agent(
    model: ScriptedOverHttp, middleware: Sequence[AgentMiddleware[Any, Any, Any]] = ()
) -> list[BaseMessage]:
    """One run of the screenshot agent; its final state's messages."""
    agent = create_agent(
        model,
        tools=[take_screenshot],
        system_prompt="You operate a computer. Take a screenshot after every step.",
        middleware=middleware,
    )
    result = agent.invoke({"messages": [HumanMessage(TASK)]}, {"recursion_limit": 200})
    return list(result["messages"])


def body_images(body: bytes) -> list[dict[str, Any]]:
    """The ``image_url`` objects of a chat-completion request body, in order."""
    messages = json.loads(body)["messages"]
    return [
        part["image_url"]
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]
