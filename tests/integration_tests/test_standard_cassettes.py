"""LangChain's standard integration suite, replayed from cassettes (``enable_vcr_tests``).

Every HTTP exchange replays ``cassettes/test_standard_cassettes/``; sockets stay disabled, so
nothing can reach a network. ``make cassettes`` re-records them (see ``tests/_cassettes.py``).
The image tests' one download is served from a local file (``tests/_standard_images.py``).
What is xfailed, and why: ``tests/_standard_suite.py``. On every request, the client's token
count must equal the usage the local server billed (``tests/_usage_agreement.py``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.utils import function_calling

from tests import _cassettes, _standard_images, _usage_agreement
from tests._standard_suite import AfarensisIntegrationSuite

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


@pytest.fixture(autouse=True)
def _numbered_tool_call_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """LangChain's few-shot helper makes random tool-call ids; the API bills ids: number them."""
    numbers = itertools.count()
    fixed = SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(numbers)))
    monkeypatch.setattr(function_calling, "uuid", fixed)


@pytest.fixture(scope="module")
def usage_check() -> Iterator[_usage_agreement.UsageCheck]:
    check = _usage_agreement.install()
    yield check
    _usage_agreement.uninstall()
    assert check.compared > 0, "no request of the standard suite was compared"


@pytest.fixture(autouse=True)
def _client_count_is_the_bill(usage_check: _usage_agreement.UsageCheck) -> Iterator[None]:
    """On every request of the suite, the client's count is the server's recorded usage."""
    before = len(usage_check.disagreements)
    yield
    assert usage_check.disagreements[before:] == []


class TestChatAfarensisCassettes(AfarensisIntegrationSuite):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "max_retries": 0}

    @property
    def enable_vcr_tests(self) -> bool:
        return True
