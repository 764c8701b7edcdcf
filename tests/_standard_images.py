"""The one image LangChain's standard tests download, served offline from a local file.

``ChatModelIntegrationTests`` fetches a PNG from raw.githubusercontent.com (with ``httpx.get``)
for ``test_image_inputs``, ``test_image_tool_message`` and ``test_anthropic_inputs``, and, with
``supports_image_urls``, sends that URL for the API to fetch. No machine here reaches the
internet, so both fetches are answered with the bytes of a real PNG from ``tests/data/images``:
the test's own download (a patched ``httpx.get`` for that one URL, every other call goes
through) and the server's download (an ``httpx2.MockTransport`` given to the local server as
its ``image_transport``). Everything else about those tests runs unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest

from tests._support import TEST_IMAGES

STANDARD_IMAGE_URL = (
    "https://raw.githubusercontent.com/langchain-ai/docs/"
    "4d11d08b6b0e210bd456943f7a22febbd168b543/src/images/agentic-rag-output.png"
)
LOCAL_COPY = TEST_IMAGES / "hopper.png"


def _png() -> bytes:
    return LOCAL_COPY.read_bytes()


def image_transport() -> httpx2.MockTransport:
    """Serves the standard image's URL (only) to the local server; anything else is a 404."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        if str(request.url) == STANDARD_IMAGE_URL:
            return httpx2.Response(200, content=_png(), headers={"content-type": "image/png"})
        return httpx2.Response(404)

    return httpx2.MockTransport(answer)


def patch_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer the standard tests' ``httpx.get`` of the image from the local copy."""
    real_get = httpx.get

    def get(url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        if str(url) == STANDARD_IMAGE_URL:
            request = httpx.Request("GET", STANDARD_IMAGE_URL)
            return httpx.Response(200, content=_png(), request=request)
        return real_get(url, *args, **kwargs)

    monkeypatch.setattr(httpx, "get", get)
