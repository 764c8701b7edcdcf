"""The Afarensis Vision API's rules, as data and pure functions: the one place they are written.

Everything here restates the API contract (``tests/data/spec/afarensis-vision-api.md`` in the
repository): accepted formats and MIME types, the 20 MB limit, URL schemes, detail levels, the
image-token formula, the chat framing of prompt tokens, and the error codes and types. The client
(``images``, ``chat_models``, ``_sources``) and the local server read these definitions and
restate none of them (``tests/unit_tests/_api/test_contract.py`` greps the package for literal
error codes), so the two sides cannot drift apart. Text tokens are cl100k_base counts from
:mod:`.tokenizer`, the only module of the package this one imports.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, Literal, get_args

from langchain_afarensis_vision._api import tokenizer as _tokenizer

Detail = Literal["low", "high", "auto"]
"""An ``image_url.detail`` level. ``auto`` is billed and processed as ``high``."""

DETAILS: Final[tuple[str, ...]] = get_args(Detail)

DEFAULT_MODEL: Final = "gpt-4-vision-preview"
DEFAULT_BASE_URL: Final = "https://api.afarensis.com/v1"
API_KEY_ENV: Final = "AFARENSIS_API_KEY"
BASE_URL_ENV: Final = "AFARENSIS_BASE_URL"
REQUEST_ID_HEADER: Final = "x-request-id"
"""The response header naming the request (the openai SDK reads it into ``_request_id``)."""

API_FORMATS: Final[dict[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a multi-picture JPEG (camera phones): its first picture is a JPEG
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
"""The formats the API accepts (GIF only when not animated), by Pillow's format name."""
ACCEPTED_MIME_TYPES: Final[frozenset[str]] = frozenset(API_FORMATS.values())
FORMAT_NAMES: Final[dict[str, str]] = {m: f for f, m in API_FORMATS.items() if f != "MPO"}
"""An accepted MIME type's format name (``image/png`` -> ``PNG``)."""
ACCEPTED_FORMATS_TEXT: Final = "PNG, JPEG, WEBP or non-animated GIF"
"""The accepted formats in words, for error messages."""
ANIMATABLE_FORMATS: Final[frozenset[str]] = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
"""Formats whose animated files the API refuses (``animated_gif_not_supported``)."""

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
"""At most 20 MB per image (decoded bytes, not base64 characters)."""

FETCHED_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})
"""Image URLs the API downloads itself."""
DATA_URL_SCHEME: Final = "data"
"""Inline images: ``data:image/<format>;base64,<data>``."""
URL_SCHEMES: Final[frozenset[str]] = FETCHED_URL_SCHEMES | {DATA_URL_SCHEME}
"""Every scheme an ``image_url.url`` may have."""


def url_scheme(url: str) -> str:
    """The lower-cased scheme of ``url`` (the text before its first ``:``; all of it if none).

    Only the scheme is copied: a 26 MB data URL is not (``partition`` would copy all of it while
    holding the interpreter's lock, stalling a server's other requests).
    """
    colon = url.find(":")
    return (url if colon < 0 else url[:colon]).lower()


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: C:\x is a path


def has_scheme(text: str) -> bool:
    """Whether ``text`` starts with a URL scheme and ``:`` (a drive letter ``C:`` is no scheme)."""
    return _SCHEME.match(text) is not None


def is_data_url(url: str) -> bool:
    """Whether ``url`` is an inline ``data:`` URL."""
    return url[: len(DATA_URL_SCHEME) + 1].lower() == DATA_URL_SCHEME + ":"


def is_fetched_url(url: str) -> bool:
    """Whether ``url`` is an ``http(s)`` link the API downloads."""
    scheme, colon, _ = url.partition(":")
    return bool(colon) and scheme.lower() in FETCHED_URL_SCHEMES


# Token formula constants.
LOW_DETAIL_SIDE: Final = 512
HIGH_DETAIL_MAX_SIDE: Final = 2048
HIGH_DETAIL_SHORT_SIDE: Final = 768
TILE_SIDE: Final = 512
TOKENS_PER_TILE: Final = 170
BASE_IMAGE_TOKENS: Final = 85
MAX_IMAGE_TOKENS: Final = BASE_IMAGE_TOKENS + TOKENS_PER_TILE * 8
"""The most any single image can cost (e.g. 2048 x 768 at high detail): 1445 tokens."""

# Model limits (the model profile): GPT-4V preview has a 128k context and 4k output tokens.
CONTEXT_WINDOW: Final = 128_000
MAX_OUTPUT_TOKENS: Final = 4_096

# Chat framing: what a request costs beyond its content. GPT-4 family rules published in OpenAI's
# cookbook, "How to count tokens with tiktoken" (num_tokens_from_messages: 3 per message, the
# role and every string field encoded, 1 more for a name, 3 to prime the reply; checked there
# against the API: 129 prompt tokens for its example on gpt-4-0613, as our test reproduces).
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
REPLY_PRIMER_TOKENS: Final = 3
# Tool definitions, the same cookbook's num_tokens_for_tools for gpt-4 / gpt-4-turbo /
# gpt-4-1106-preview (GPT-4 with Vision's generation): per function 10 + "name:description"
# (a final "." dropped); with properties 3, then per property 3 + "key:type:description", an
# enum -3 and per item 3 + the item; 12 once after all functions.
TOOL_FUNCTION_TOKENS: Final = 10
TOOL_PROPERTIES_TOKENS: Final = 3
TOOL_PROPERTY_TOKENS: Final = 3
TOOL_ENUM_TOKENS: Final = -3
TOOL_ENUM_ITEM_TOKENS: Final = 3
TOOLS_END_TOKENS: Final = 12


def text_tokens(text: str) -> int:
    """Tokens in ``text``: cl100k_base exactly, offline (the estimate only without quicktok)."""
    return _tokenizer.count(text)


def message_text_tokens(message: Mapping[str, Any]) -> int:
    """Prompt tokens of one wire message, without its images (see :func:`prompt_text_tokens`)."""
    total = TOKENS_PER_MESSAGE + text_tokens(str(message.get("role") or ""))
    content = message.get("content")
    if isinstance(content, str):
        total += text_tokens(content)
    for part in content if isinstance(content, list) else ():
        total += text_tokens(str(part.get("text") or part.get("refusal") or ""))
    if message.get("name"):
        total += text_tokens(str(message["name"])) + TOKENS_PER_NAME
    total += text_tokens(str(message.get("tool_call_id") or ""))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        fields = (call.get("id"), function.get("name"), function.get("arguments"))
        total += sum(text_tokens(str(field or "")) for field in fields)
    return total


def tools_tokens(tools: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens of the ``tools`` definitions (the cookbook's rule; 0 without tools)."""
    if not tools:
        return 0
    total = TOOLS_END_TOKENS
    for tool in tools:
        function = tool.get("function") or {}
        description = str(function.get("description") or "").removesuffix(".")
        total += TOOL_FUNCTION_TOKENS + text_tokens(f"{function.get('name', '')}:{description}")
        properties = _mapping(_mapping(function.get("parameters")).get("properties"))
        if properties:
            total += TOOL_PROPERTIES_TOKENS
        for key, schema in properties.items():
            total += TOOL_PROPERTY_TOKENS + _property_tokens(str(key), _mapping(schema))
    return total


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a schema the API would not read)."""
    return value if isinstance(value, Mapping) else {}


def _property_tokens(key: str, schema: Mapping[str, Any]) -> int:
    kind = schema.get("type", "")
    kind = "|".join(map(str, kind)) if isinstance(kind, list) else str(kind)
    description = str(schema.get("description") or "").removesuffix(".")
    total = text_tokens(f"{key}:{kind}:{description}")
    if isinstance(schema.get("enum"), list):
        total += TOOL_ENUM_TOKENS
        total += sum(TOOL_ENUM_ITEM_TOKENS + text_tokens(str(item)) for item in schema["enum"])
    return total


def prompt_text_tokens(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()
) -> int:
    """``usage.prompt_tokens`` less the images, for a request's wire ``messages`` and ``tools``.

    One implementation for the client's count and the local server's bill: 3 for the reply,
    per message 3 + its role + its text parts + its ``name`` (+1) + its ``tool_call_id``, per
    tool call its id, function name and arguments (as sent), and the tools by
    :func:`tools_tokens`. Image parts add nothing here: each costs its formula's tokens.
    """
    return REPLY_PRIMER_TOKENS + sum(map(message_text_tokens, messages)) + tools_tokens(tools)


class ErrorCode(StrEnum):
    """The codes the API returns in ``error.code`` (and :class:`~.errors.InvalidImageError`)."""

    INVALID_IMAGE_FORMAT = "invalid_image_format"
    IMAGE_TOO_LARGE = "image_too_large"
    ANIMATED_GIF_NOT_SUPPORTED = "animated_gif_not_supported"
    INVALID_IMAGE = "invalid_image"
    IMAGE_URL_UNREACHABLE = "image_url_unreachable"
    INVALID_VALUE = "invalid_value"
    INVALID_API_KEY = "invalid_api_key"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"


class ErrorType(StrEnum):
    """The API's ``error.type`` values."""

    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    SERVER = "server_error"


RETRYABLE_STATUSES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})


def check_detail(detail: str) -> Detail:
    """Return ``detail`` as a :data:`Detail`, or raise ``ValueError`` naming the accepted ones."""
    if detail not in DETAILS:
        msg = f"detail must be one of {', '.join(DETAILS)}; got {detail!r}"
        raise ValueError(msg)
    return detail  # type: ignore[return-value]


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where a string in the JSON-like ``value`` holds a lone surrogate, or None.

    A lone surrogate (U+D800 to U+DFFF alone: half of a UTF-16 pair, from bad decoding) is no
    Unicode text: a request body, UTF-8, cannot carry it. The answer names the string
    (``messages[0].content[1].text``) and the character's position in it.
    """
    if isinstance(value, str):
        try:
            value.isascii() or value.encode()  # isascii at once: no pass over long base64
        except UnicodeEncodeError as exc:
            return f"{path or 'the text'} (character {exc.start})"
        return None
    if isinstance(value, Mapping):
        keys = ((f"a key of {path or 'the body'}", key) for key in value)
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
        children: Iterator[tuple[str, Any]] = itertools.chain(keys, items)
    elif isinstance(value, list | tuple):
        children = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for at, item in children if (found := lone_surrogate(item, at))), None)


def _scale(width: int, height: int, num: int, den: int) -> tuple[int, int]:
    """Scale both sides by ``num / den`` in exact integer arithmetic, rounding down, never to 0."""
    return max(1, width * num // den), max(1, height * num // den)


def _shrink(width: int, height: int, most: int, side: Callable[[int, int], int]) -> tuple[int, int]:
    """Scale down (never up) so that the ``side`` (``max`` or ``min``) is at most ``most``."""
    if side(width, height) > most:
        return _scale(width, height, most, side(width, height))
    return width, height


def effective_size(width: int, height: int, detail: Detail = "auto") -> tuple[int, int]:
    """The size the model actually sees for an image of ``width`` x ``height``.

    ``low`` fits the image in 512 x 512; ``high`` and ``auto`` fit it in 2048 x 2048 and then
    bring the shorter side down to 768 when both sides exceed 768. Nothing is scaled up.

    Raises:
        ValueError: if a side is not a positive integer or ``detail`` is unknown.
    """
    check_detail(detail)
    if width < 1 or height < 1:
        msg = f"image sides must be positive; got {width} x {height}"
        raise ValueError(msg)
    if detail == "low":
        return _shrink(width, height, LOW_DETAIL_SIDE, max)
    return _shrink(*_shrink(width, height, HIGH_DETAIL_MAX_SIDE, max), HIGH_DETAIL_SHORT_SIDE, min)


def image_tiles(width: int, height: int, detail: Detail = "auto") -> tuple[int, int]:
    """``(columns, rows)`` of the 512-px tiles billed for an image; ``(0, 0)`` at ``low``.

    The tiles cover the effective size from its top-left corner; the last column and row may
    be partly outside it, and cost a whole tile each.
    """
    w, h = effective_size(width, height, detail)
    if detail == "low":
        return 0, 0
    return math.ceil(w / TILE_SIDE), math.ceil(h / TILE_SIDE)


def estimate_image_tokens(width: int, height: int, detail: Detail = "auto") -> int:
    """Image tokens for an image of ``width`` x ``height`` pixels, by the API's formula.

    ``low`` costs 85 whatever the size; ``high`` and ``auto`` cost 170 per 512-px tile of the
    effective size, plus 85.

    Example:
        >>> estimate_image_tokens(1024, 1024, "high")
        765
    """
    columns, rows = image_tiles(width, height, detail)
    return TOKENS_PER_TILE * columns * rows + BASE_IMAGE_TOKENS


def explain_image_tokens(width: int, height: int, detail: Detail = "auto") -> str:
    """:func:`estimate_image_tokens` in words: each step of the formula, for a terminal.

    ``explain_image_tokens(4032, 3024)`` is ``4032x3024 at detail auto (as high) -> fits 2048:
    2048x1536 -> shortest side 768: 1024x768 -> 2x2 tiles of 512 -> 4 x 170 + 85 = 765 tokens``
    (one line); at ``low``, ``... -> fits 512: 512x384 -> 85 tokens flat``.
    """
    seen = effective_size(width, height, detail)  # checks the arguments
    start = f"{width}x{height} at detail {detail}"
    if detail == "low":
        fit = _size(seen, (width, height))
        return f"{start} -> fits {LOW_DETAIL_SIDE}: {fit} -> {BASE_IMAGE_TOKENS} tokens flat"
    fitted = _shrink(width, height, HIGH_DETAIL_MAX_SIDE, max)
    steps = [
        f"{start}{' (as high)' if detail == 'auto' else ''}",
        f"fits {HIGH_DETAIL_MAX_SIDE}: {_size(fitted, (width, height))}",
        f"shortest side {HIGH_DETAIL_SHORT_SIDE}: {_size(seen, fitted)}",
    ]
    columns, rows = image_tiles(width, height, detail)
    tiles = columns * rows
    tokens = TOKENS_PER_TILE * tiles + BASE_IMAGE_TOKENS
    steps.append(f"{columns}x{rows} tiles of {TILE_SIDE}")
    steps.append(f"{tiles} x {TOKENS_PER_TILE} + {BASE_IMAGE_TOKENS} = {tokens} tokens")
    return " -> ".join(steps)


def _size(size: tuple[int, int], before: tuple[int, int] | None = None) -> str:
    return "as is" if size == before else f"{size[0]}x{size[1]}"


# The local server's stand-in engine says what it is, and which values it did not measure, in the
# response's ``metadata`` (a map of strings in ``CreateChatCompletionResponse``; on a stream, on
# the chunk that carries ``finish_reason``): ``{"stand_in": "local-afarensis", "placeholders":
# "title,has_person", "measured": "width,height"}``, names joined by commas, a list longer than a
# metadata value's 512 characters continued under ``placeholders_2``... The client reads it into
# ``response_metadata["stand_in"]``. A real API's answer never carries it.
STAND_IN_KEY: Final = "stand_in"
STAND_IN_ENGINE: Final = "local-afarensis"
STAND_IN_LISTS: Final = ("measured", "placeholders")
METADATA_VALUE_CHARS: Final = 512


def stand_in_metadata(**lists: Sequence[str]) -> dict[str, str]:
    """The ``metadata`` of a stand-in answer; ``lists`` by name (one of :data:`STAND_IN_LISTS`)."""
    metadata = {STAND_IN_KEY: STAND_IN_ENGINE}
    for name, items in lists.items():
        for i, value in enumerate(_comma_chunks(items)):
            metadata[name if i == 0 else f"{name}_{i + 1}"] = value
    return metadata


def _comma_chunks(items: Sequence[str]) -> list[str]:
    chunks = [""]
    for item in items:
        joined = f"{chunks[-1]},{item}" if chunks[-1] else item
        if len(joined) > METADATA_VALUE_CHARS and chunks[-1]:
            chunks.append(item[:METADATA_VALUE_CHARS])
        else:
            chunks[-1] = joined[:METADATA_VALUE_CHARS]
    return chunks


def read_stand_in(metadata: Any) -> dict[str, Any] | None:
    """``response_metadata["stand_in"]`` from a response's ``metadata`` (None if not a stand-in).

    ``{"engine": "local-afarensis", "placeholders": [...]}``, and ``measured`` when the answer
    says what it measured.
    """
    if not isinstance(metadata, Mapping) or STAND_IN_KEY not in metadata:
        return None
    found: dict[str, Any] = {"engine": metadata[STAND_IN_KEY], "placeholders": []}
    for name in STAND_IN_LISTS:
        parts = [metadata.get(name, "")]
        parts += [metadata[f"{name}_{i}"] for i in range(2, 17) if f"{name}_{i}" in metadata]
        if name in metadata:
            found[name] = [item for part in parts for item in str(part).split(",") if item]
    return found
