"""langchain-tests' standard unit suite for ChatAfarensis."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from tests._standard_suite import VisionModel


class TestChatAfarensisStandard(VisionModel, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-4-vision-preview"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"AFARENSIS_API_KEY": "api_key", "AFARENSIS_BASE_URL": "https://example.com/v1"},
            {},
            {"api_key": "api_key", "base_url": "https://example.com/v1"},
        )
