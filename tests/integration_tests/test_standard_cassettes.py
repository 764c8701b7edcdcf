"""LangChain's standard integration suite, replayed from cassettes (``enable_vcr_tests``).

Every HTTP exchange replays ``cassettes/test_standard_cassettes/``; sockets stay disabled, so
nothing can reach a network. ``make cassettes`` re-records them (see ``tests/_cassettes.py``).
The image tests' one download is served from a local file (``tests/_standard_images.py``).
What is xfailed, and why: ``tests/_standard_suite.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import _cassettes, _standard_images
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


class TestChatAfarensisCassettes(AfarensisIntegrationSuite):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "max_retries": 0}

    @property
    def enable_vcr_tests(self) -> bool:
        return True
