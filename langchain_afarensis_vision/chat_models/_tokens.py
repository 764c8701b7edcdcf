"""Prompt-token counting, offline unless URL images are to be measured.

Images are counted exactly, by the API's formula on their pixel size and detail; their base64 is
never counted as text. A URL image counts as the upper bound unless a
:class:`~._sources.urls.UrlPolicy` is given: its first bytes are then downloaded under that policy
to learn its size. Text is counted exactly (cl100k_base, offline) and framed by
:mod:`._api.contract`'s rules, on the wire messages themselves: one implementation with the local
server's bill.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from langchain_core.messages import BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_afarensis_vision._api.contract import (
    BASE_IMAGE_TOKENS,
    MAX_IMAGE_TOKENS,
    Detail,
    estimate_image_tokens,
    prompt_text_tokens,
)
from langchain_afarensis_vision._sources.opening import read_image_size
from langchain_afarensis_vision._sources.urls import ImageRefused, UrlPolicy, download
from langchain_afarensis_vision.chat_models._messages import (
    BinaryImage,
    ImageOptions,
    ImagePart,
    ImageUrl,
    SealedImage,
    to_wire_messages,
)
from langchain_afarensis_vision.errors import check_text

logger = logging.getLogger("langchain_afarensis_vision")

HEADER_BYTES = 1024 * 1024
"""How much of an image URL is read to learn the image's size (its header)."""


def image_tokens(part: ImagePart, urls: UrlPolicy | None) -> int:
    """Tokens one image costs; a URL image is the upper bound unless ``urls`` lets it be read."""
    match part:
        case SealedImage(width=width, height=height, detail=detail):
            return estimate_image_tokens(width, height, detail)
        case BinaryImage(data, detail):
            return estimate_image_tokens(*read_image_size(data), detail)
        case ImageUrl(url, detail):
            return _url_tokens(url, detail, urls)
        case _:
            assert_never(part)


def _url_tokens(url: str, detail: Detail, urls: UrlPolicy | None) -> int:
    if detail == "low":
        return BASE_IMAGE_TOKENS
    if urls is None:
        return MAX_IMAGE_TOKENS
    try:
        header = download(url, urls, prefix=HEADER_BYTES)
        return estimate_image_tokens(*read_image_size(header), detail)
    except (ImageRefused, ValueError) as exc:  # InvalidImageError is a ValueError
        logger.warning("Counting %s as %d tokens: %s", url[:100], MAX_IMAGE_TOKENS, exc)
        return MAX_IMAGE_TOKENS


@dataclass(frozen=True, slots=True)
class Request:
    """A request's body and the tokens of the images its one wire mapping saw."""

    payload: dict[str, Any]
    images: list[int]

    def cost(self) -> int:
        """What the API's limiter charges: prompt tokens and ``max_tokens``.

        Text exactly, images by the formula (URL images at the upper bound).
        """
        payload = self.payload
        text = prompt_text_tokens(payload["messages"], payload.get("tools") or ())
        return text + sum(self.images) + int(payload.get("max_tokens") or 0)


def count_messages(
    messages: Sequence[BaseMessage],
    tools: Sequence[Any] | None,
    default_detail: Detail,
    urls: UrlPolicy | None = None,
) -> int:
    """Prompt tokens for ``messages`` (and ``tools``) as the API would bill them."""
    return sum(count_parts(messages, tools, default_detail, urls))


def count_parts(
    messages: Sequence[BaseMessage],
    tools: Sequence[Any] | None,
    default_detail: Detail,
    urls: UrlPolicy | None = None,
) -> tuple[int, int]:
    """Text and image prompt tokens (``prompt_tokens_details``'s two parts), in that order.

    The messages are mapped to the wire exactly as sending them would (so the extra user message
    carrying a tool's images, its label and every tool-call id are counted), each image standing
    in for its prepared part, and the text is counted by :func:`._api.contract.prompt_text_tokens`,
    the local server's bill.
    """
    images: list[int] = []

    def stand_in(part: ImagePart) -> dict[str, Any]:
        images.append(image_tokens(part, urls))
        return {"type": "image_url", "image_url": {"url": "", "detail": part.detail}}

    wire = to_wire_messages(messages, ImageOptions(detail=default_detail, stand_in=stand_in))
    specs = [convert_to_openai_tool(tool) for tool in tools or ()]
    check_text({"messages": wire, "tools": specs})
    return prompt_text_tokens(wire, specs), sum(images)
