"""Shared fixtures: a clean environment and a scripted API for unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from langchain_afarensis_vision import ChatAfarensis
from tests import _cassettes
from tests._mock_api import MockAPI


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real key or base URL."""
    monkeypatch.delenv("AFARENSIS_API_KEY", raising=False)
    monkeypatch.delenv("AFARENSIS_BASE_URL", raising=False)


@pytest.fixture
def api() -> MockAPI:
    return MockAPI()


@pytest.fixture
def make_model(api: MockAPI) -> Callable[..., ChatAfarensis]:
    """Build ChatAfarensis instances wired to the scripted API, with no retry delays."""

    def make(**kwargs: Any) -> ChatAfarensis:
        params: dict[str, Any] = {"api_key": "sk-test-secret-key-0123456789", "max_retries": 0}
        params.update(api.clients())
        params.update(kwargs)
        return ChatAfarensis(**params)

    return make


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    """Cassette settings: replay by default, secrets and image payloads scrubbed."""
    return _cassettes.vcr_config()


@pytest.fixture
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``cassettes/<test module>/`` at the top of the repository."""
    return _cassettes.cassette_dir(request.node.path)
