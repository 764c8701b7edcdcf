"""LangChain's standard integration suite, live over HTTP against the local server.

The server is started on 127.0.0.1 by the fixture below. The image tests run offline: the one
image they download is served from a local file (see ``tests/_standard_images.py``). What is
xfailed, and why: ``tests/_standard_suite.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_afarensis_vision.server import LocalAfarensisServer
from tests import _standard_images
from tests._standard_suite import AfarensisIntegrationSuite

pytestmark = pytest.mark.enable_socket


@pytest.fixture(scope="module")
def standard_server() -> Iterator[LocalAfarensisServer]:
    with LocalAfarensisServer(
        ocr=False, image_transport=_standard_images.image_transport()
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def _offline_image(monkeypatch: pytest.MonkeyPatch, standard_server: LocalAfarensisServer) -> None:
    _standard_images.patch_download(monkeypatch)
    TestChatAfarensisLive.endpoint = standard_server


class TestChatAfarensisLive(AfarensisIntegrationSuite):
    pass
