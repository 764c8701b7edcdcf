"""Prompt-token counting, offline unless URL images are to be measured.

Images are counted exactly, by the API's formula on their pixel size and detail; their base64 is
never counted as text. A URL image counts as the upper bound unless a :class:`~._safety.UrlPolicy`
is given: its first bytes are then downloaded under that policy to learn its size. Text is
estimated and framed by :mod:`._contract`'s rules (four characters a token, no tokenizer
download; 3 tokens per message, 1 per name, 3 for the reply).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, assert_never

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_afarensis_vision._contract import (
    BASE_IMAGE_TOKENS,
    MAX_IMAGE_TOKENS,
    REPLY_PRIMER_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    Detail,
    estimate_image_tokens,
    text_tokens,
)
from langchain_afarensis_vision._messages import (
    BinaryImage,
    ImagePart,
    ImageUrl,
    SealedImage,
    TextPart,
    checked_parts,
)
from langchain_afarensis_vision._safety import ImageRefused, UrlPolicy, download
from langchain_afarensis_vision._sources import read_image_size

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


def _message_tokens(message: BaseMessage, default_detail: Detail, urls: UrlPolicy | None) -> int:
    total = TOKENS_PER_MESSAGE + (TOKENS_PER_NAME if message.name else 0)
    for part in checked_parts(message, default_detail):  # as sending it would refuse it
        total += text_tokens(part.text) if isinstance(part, TextPart) else image_tokens(part, urls)
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            total += text_tokens(call["name"] + json.dumps(call["args"]))
    return total


def count_messages(
    messages: Sequence[BaseMessage],
    tools: Sequence[Any] | None,
    default_detail: Detail,
    urls: UrlPolicy | None = None,
) -> int:
    """Prompt tokens for ``messages`` (and ``tools``) as the API would bill them."""
    total = REPLY_PRIMER_TOKENS
    total += sum(_message_tokens(m, default_detail, urls) for m in messages)
    for tool in tools or ():
        total += text_tokens(json.dumps(convert_to_openai_tool(tool)))
    return total
