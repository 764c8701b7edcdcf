"""The client's everyday paths, replayed from cassettes (``cassettes/test_cassettes_client/``).

Recorded from the local server by ``make cassettes`` (or from a real endpoint when
``AFARENSIS_API_KEY`` and ``AFARENSIS_BASE_URL`` are set); replayed offline with sockets
disabled. A camera-sized photo goes through ``prepare_image`` and only its digest is stored.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from PIL import Image

from langchain_afarensis_vision import (
    AfarensisDescribeImageTool,
    AfarensisImageLoader,
    AuthenticationError,
    BadRequestError,
    ChatAfarensis,
    NotFoundError,
)
from tests import _cassettes
from tests._support import TEST_IMAGES

pytestmark = [pytest.mark.vcr]
if _cassettes.RECORDING:
    pytestmark.append(pytest.mark.enable_socket)

QUESTION = {"type": "text", "text": "What's in this image?"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[_cassettes.Endpoint]:
    with _cassettes.endpoint() as where:
        yield where


@pytest.fixture
def model(endpoint: _cassettes.Endpoint) -> Iterator[ChatAfarensis]:
    with ChatAfarensis(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0) as chat:
        yield chat


def camera_photo() -> bytes:
    """A deterministic 12 MP JPEG built from a sample photo."""
    with Image.open(TEST_IMAGES / "flower.jpg") as photo:
        big = photo.convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_camera_photo_is_sent_at_its_effective_size(model: ChatAfarensis) -> None:
    photo = base64.b64encode(camera_photo()).decode()
    answer = model.invoke(
        [HumanMessage([QUESTION, {"type": "image", "base64": photo, "mime_type": "image/jpeg"}])]
    )
    assert "1024 x 768" in answer.text
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] > 765


def test_several_images_with_their_own_details(model: ChatAfarensis) -> None:
    parts: list[str | dict[str, Any]] = [
        QUESTION,
        {"type": "image", "url": _data_url("hopper.png"), "extras": {"detail": "low"}},
        {"type": "image_url", "image_url": {"url": _data_url("flower.jpg"), "detail": "high"}},
    ]
    answer = model.invoke([HumanMessage(parts)])
    assert "Image 2" in answer.text
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] >= 85 + 255


def test_stream_with_an_image(model: ChatAfarensis) -> None:
    message = HumanMessage([QUESTION, {"type": "image_url", "image_url": _data_url("hopper.gif")}])
    chunks = list(model.stream([message]))
    assert len(chunks) > 2
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert "GIF" in "".join(c.text for c in chunks)


def test_wrong_key_is_an_authentication_error(endpoint: _cassettes.Endpoint) -> None:
    model = ChatAfarensis(base_url=endpoint.base_url, api_key="sk-wrong-key-for-this-test")
    with pytest.raises(AuthenticationError) as raised:
        model.invoke("hi")
    assert raised.value.response is not None
    assert raised.value.response.status == 401
    assert raised.value.code == "invalid_api_key"


def test_unknown_model_is_not_found(model: ChatAfarensis) -> None:
    with pytest.raises(NotFoundError) as raised:
        model.invoke("hi", model="gpt-5-vision-imaginary")
    assert raised.value.code == "model_not_found"


def test_unreachable_image_url_is_a_bad_request(model: ChatAfarensis) -> None:
    url = "https://images.invalid/missing.png"
    with pytest.raises(BadRequestError) as raised:
        model.invoke([HumanMessage([QUESTION, {"type": "image", "url": url}])])
    assert raised.value.code == "image_url_unreachable"


def test_describe_image_tool(model: ChatAfarensis) -> None:
    tool = AfarensisDescribeImageTool(
        llm=model, allowed_dirs=[TEST_IMAGES], response_format="content_and_artifact"
    )
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "call_1",
            "name": "describe_image",
            "args": {"image": "flower2.jpg"},
        }
    )
    assert "300 x 225" in message.content
    assert message.artifact["image_tokens"] == 255


def test_image_loader(model: ChatAfarensis, tmp_path: Path) -> None:
    for name in ("hopper.webp", "pil_sample_cmyk.jpg"):
        (tmp_path / name).write_bytes((TEST_IMAGES / name).read_bytes())
    documents = AfarensisImageLoader(tmp_path, llm=model).load()
    assert [Path(d.metadata["source"]).name for d in documents] == [
        "hopper.webp",
        "pil_sample_cmyk.jpg",
    ]
    assert all("local Afarensis engine" in d.page_content for d in documents)


def _data_url(name: str) -> str:
    mime = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}[name.rsplit(".", 1)[1]]
    data = base64.b64encode((TEST_IMAGES / name).read_bytes()).decode()
    return f"data:{mime};base64,{data}"
