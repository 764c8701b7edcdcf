"""langchain-core's own cost: a ``BaseChatModel`` around one bare httpx2 POST of a prebuilt body.

Anything a chat model adds on top of this floor is its own overhead; the floor minus a bare
POST is langchain-core's.
"""

from __future__ import annotations

from typing import Any

import httpx2
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict


def _result(answer: Any) -> ChatResult:
    text = answer["choices"][0]["message"]["content"]
    return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class CoreFloor(BaseChatModel):
    """Sends ``body`` to ``url`` with whichever client it was given (sync or async)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: httpx2.Client | None = None
    async_client: httpx2.AsyncClient | None = None
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def _llm_type(self) -> str:
        return "core-floor"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        assert self.client is not None
        return _result(self.client.post(self.url, content=self.body, headers=self.headers).json())

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        assert self.async_client is not None
        response = await self.async_client.post(self.url, content=self.body, headers=self.headers)
        return _result(response.json())
