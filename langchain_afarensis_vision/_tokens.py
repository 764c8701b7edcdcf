"""Prompt-token counting, offline unless URL images are to be measured.

Images are counted exactly, by the API's formula on their pixel size and detail; their base64 is
never counted as text. A URL image counts as the upper bound unless a :class:`~._safety.UrlPolicy`
is given: its first bytes are then downloaded under that policy to learn its size. Text is
approximated at four characters a token (no tokenizer download), plus the Chat Completions
framing of 3 tokens per message, 1 per name and 3 for the reply.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_afarensis_vision import images
from langchain_afarensis_vision._contract import (
    BASE_IMAGE_TOKENS,
    MAX_IMAGE_TOKENS,
    Detail,
    estimate_image_tokens,
)
from langchain_afarensis_vision._messages import ImagePart, TextPart, message_parts
from langchain_afarensis_vision._safety import ImageRefused, UrlPolicy, download

logger = logging.getLogger("langchain_afarensis_vision")

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER_TOKENS = 3

HEADER_BYTES = 1024 * 1024
"""How much of an image URL is read to learn the image's size (its header)."""


def text_tokens(text: str) -> int:
    """Approximate tokens in ``text``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def image_tokens(part: ImagePart, urls: UrlPolicy | None) -> int:
    """Tokens one image costs; a URL image is the upper bound unless ``urls`` lets it be read."""
    if part.data is not None:
        return estimate_image_tokens(*images.read_image_size(part.data), part.detail)
    if part.detail == "low":
        return BASE_IMAGE_TOKENS
    if urls is None or part.url is None:
        return MAX_IMAGE_TOKENS
    try:
        header = download(part.url, urls, prefix=HEADER_BYTES)
        return estimate_image_tokens(*images.read_image_size(header), part.detail)
    except (ImageRefused, ValueError) as exc:  # InvalidImageError is a ValueError
        logger.warning("Counting %s as %d tokens: %s", part.url[:100], MAX_IMAGE_TOKENS, exc)
        return MAX_IMAGE_TOKENS


def _message_tokens(message: BaseMessage, default_detail: Detail, urls: UrlPolicy | None) -> int:
    total = TOKENS_PER_MESSAGE + (TOKENS_PER_NAME if message.name else 0)
    for part in message_parts(message, default_detail):
        if isinstance(part, TextPart):
            total += text_tokens(part.text)
        else:
            total += image_tokens(part, urls)
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
