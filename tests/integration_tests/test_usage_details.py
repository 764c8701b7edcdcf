"""Where the image tokens the API reports end up: ``usage_metadata`` and ``response_metadata``."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from langchain_afarensis_vision import ChatAfarensis, prepare_image
from tests._support import TEST_IMAGES

pytestmark = pytest.mark.enable_socket

Make = Callable[..., ChatAfarensis]
PHOTO = TEST_IMAGES / "flower.jpg"  # 480 x 360: one tile at high detail, 255 tokens


def _photo() -> HumanMessage:
    block = prepare_image(PHOTO).content_block()
    return HumanMessage(content=[{"type": "text", "text": "Describe this photo."}, block])


def test_invoke_reports_image_tokens(make_chat: Make) -> None:
    answer = make_chat().invoke([_photo()])
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_token_details"] == {"image": 255}
    usage = answer.response_metadata["token_usage"]
    assert usage["prompt_tokens_details"]["image_tokens"] == 255
    assert usage["prompt_tokens"] == answer.usage_metadata["input_tokens"]


def test_stream_reports_image_tokens_the_same_way(make_chat: Make) -> None:
    chunks = list(make_chat(stream_usage=True).stream([_photo()]))
    full = reduce(add, chunks)
    assert isinstance(full, AIMessageChunk)
    assert full.usage_metadata is not None
    assert full.usage_metadata["input_token_details"] == {"image": 255}
    assert full.response_metadata["token_usage"]["prompt_tokens_details"]["image_tokens"] == 255


def test_text_only_reports_zero_image_tokens(make_chat: Make) -> None:
    answer = make_chat().invoke("Hello")
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.get("input_token_details") == {"image": 0}  # as reported
