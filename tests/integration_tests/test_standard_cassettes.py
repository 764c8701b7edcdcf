"""langchain-tests' ``ChatModelIntegrationTests``, replayed from cassettes (``enable_vcr_tests``).

Every HTTP exchange replays ``cassettes/test_standard_cassettes/``; sockets stay disabled, so
nothing can reach a network. ``make cassettes`` re-records them (see ``tests/_cassettes.py``).
The standard image tests' one download is served from a local file (``tests/_standard_images.py``).
The tests that need a model to choose are xfailed for the reason given in
``test_standard_live.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_afarensis_vision import ChatAfarensis
from tests import _cassettes, _standard_images
from tests.integration_tests.test_standard_live import ENGINE_CANNOT_CHOOSE

pytestmark = [pytest.mark.vcr]
if _cassettes.RECORDING:
    pytestmark.append(pytest.mark.enable_socket)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[_cassettes.Endpoint]:
    with _cassettes.endpoint() as where:
        yield where


@pytest.fixture(autouse=True)
def _offline_image(monkeypatch: pytest.MonkeyPatch, endpoint: _cassettes.Endpoint) -> None:
    _standard_images.patch_download(monkeypatch)
    TestChatAfarensisCassettes.endpoint = endpoint


class TestChatAfarensisCassettes(ChatModelIntegrationTests):
    endpoint: _cassettes.Endpoint

    @property
    def chat_model_class(self) -> type[ChatAfarensis]:
        return ChatAfarensis

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "base_url": self.endpoint.base_url,
            "api_key": self.endpoint.api_key,
            "max_retries": 0,
        }

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "gpt-4-1106-vision-preview"

    @pytest.mark.xfail(reason=ENGINE_CANNOT_CHOOSE)
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(reason=ENGINE_CANNOT_CHOOSE)
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(reason=ENGINE_CANNOT_CHOOSE)
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @pytest.mark.xfail(reason=ENGINE_CANNOT_CHOOSE)
    def test_unicode_tool_call_integration(
        self,
        model: BaseChatModel,
        *,
        tool_choice: str | None = None,  # noqa: PT028
        force_tool_call: bool = True,  # noqa: PT028
    ) -> None:
        super().test_unicode_tool_call_integration(
            model, tool_choice=tool_choice, force_tool_call=force_tool_call
        )

    @pytest.mark.xfail(reason=ENGINE_CANNOT_CHOOSE)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(reason="the offline engine answers JSON mode with image facts, not a joke")
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)
