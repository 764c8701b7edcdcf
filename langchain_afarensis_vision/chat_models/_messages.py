"""LangChain messages to Chat Completions messages, one straight way.

Every dialect LangChain users write images in (OpenAI ``image_url`` dicts, v1 ``image`` blocks,
v0 ``source_type`` blocks, Anthropic ``source`` blocks) is first normalised by langchain-core's
own translators (``BaseMessage.content_blocks``) into v1 standard blocks. Those are then read into
canonical parts by a closed dispatch that fails loudly on anything else: :class:`TextPart`, and
one type per kind of image: :class:`ImageUrl` (an http(s) link the API fetches: sent untouched),
:class:`BinaryImage` (inline bytes: prepared by :func:`~.images.prepare_image` on the way out)
and :class:`SealedImage` (a :class:`~.images.PreparedImage` this process made, placed in the
message with :meth:`~.images.PreparedImage.content_block`: sent as it is, never prepared twice).
The wire mapping (here) and offline token counting (``_tokens``) both start from these parts.

The URL scheme rules are :mod:`._api.contract`'s. The Chat Completions wire format accepts text
only in ``tool`` messages, so images a tool returns are moved into a ``user`` message placed
right after the run of tool messages they belong to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_afarensis_vision._api.contract import Detail, is_data_url, is_fetched_url
from langchain_afarensis_vision._sources.read import decode_base64, decode_data_url, not_a_url
from langchain_afarensis_vision.errors import InvalidRequestError, checked_detail
from langchain_afarensis_vision.images import _preparation

DEFAULT_QUESTION = (
    "Describe this image. Say what it shows (subjects, setting, any visible text), its main "
    "colours and anything distinctive, in a few plain, factual sentences."
)
"""What the tool, the loader and the CLI ask about an image when no question is given."""

ACCEPTED_BLOCKS = (
    "a string, {'type': 'text'}, {'type': 'image_url', 'image_url': {'url', 'detail'} or url}, "
    "v1 {'type': 'image', 'url' | 'base64', 'mime_type', 'extras': {'detail'}}, "
    "v0 {'type': 'image', 'source_type': 'url' | 'base64'}, "
    "or Anthropic {'type': 'image', 'source': {'type': 'base64' | 'url'}}"
)


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text in a message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImageUrl:
    """An http(s) image link, fetched by the API itself."""

    url: str
    detail: Detail


@dataclass(frozen=True, slots=True, repr=False)
class BinaryImage:
    """Inline image bytes, in any format: prepared on the way out."""

    data: bytes
    detail: Detail

    def __repr__(self) -> str:
        return f"BinaryImage({len(self.data):,} bytes, detail={self.detail!r})"


@dataclass(frozen=True, slots=True, repr=False)
class SealedImage:
    """An image this process already prepared (its base64 and size): sent as it is."""

    base64: str
    mime_type: str
    width: int
    height: int
    detail: Detail

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}"
        return f"SealedImage({self.mime_type} {size}, detail={self.detail!r})"


ImagePart = ImageUrl | BinaryImage | SealedImage
Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """How inline images are prepared: the default detail, and the animated-image policy.

    ``stand_in``, if given, replaces each image's wire part (token counting: the framing is
    counted on the very messages that would be sent, without preparing any image); ``seen``,
    if given, is told of each image as it is mapped (the request's cost rides along).
    """

    detail: Detail = "auto"
    first_frame: bool = False
    stand_in: Callable[[ImagePart], dict[str, Any]] | None = None
    seen: Callable[[ImagePart], object] | None = None


# --------------------------------------------------------------------------------------------
# Reading parts out of a message
# --------------------------------------------------------------------------------------------


def message_parts(message: BaseMessage, default_detail: Detail) -> list[Part]:
    """The canonical parts of ``message``'s content, in order."""
    if isinstance(message.content, str):
        return [TextPart(message.content)] if message.content else []
    for block in message.content:  # langchain-core's mapping would fail on it with a TypeError
        if isinstance(block, dict) and not isinstance(block.get("type", ""), str):
            msg = f"Unsupported content block type {block['type']!r} (not a string). "
            raise InvalidRequestError(f"{msg}Accepted: {ACCEPTED_BLOCKS}.")
    if isinstance(message, AIMessage):
        # Tool calls travel in `tool_calls`, whatever dialect the content also lists them in;
        # reasoning is not sent back.
        blocks: Sequence[Any] = [b for b in message.content_blocks if _kind(b) not in _AI_SKIPPED]
    else:
        blocks = message.content_blocks
    return [_block_part(cast(dict[str, Any], block), default_detail) for block in blocks]


_AI_SKIPPED = frozenset(
    {"tool_call", "tool_call_chunk", "tool_use", "server_tool_call", "reasoning", "thinking"}
)


def _kind(block: Any) -> Any:
    """A block's type, looking inside ``non_standard`` wrappers."""
    if block.get("type") == "non_standard" and isinstance(block.get("value"), dict):
        return block["value"].get("type")
    return block.get("type")


def _block_part(block: dict[str, Any], default_detail: Detail) -> Part:
    kind = block.get("type")
    if kind == "text":
        return TextPart(str(block.get("text", "")))
    if kind == "image":
        return _image_block_part(block, default_detail)
    if kind == "non_standard" and isinstance(block.get("value"), dict):
        value = block["value"]
        image = value.get("image_url")
        if value.get("type") == "image_url" and isinstance(image, str):
            # The legacy string form {"type": "image_url", "image_url": "<url>"}.
            return _url_part(image, value.get("detail") or default_detail)
        if value.get("type") == "image_url" and isinstance(image, dict) and "url" in image:
            # A block langchain-core leaves as it is because of a key it does not map (an "id").
            return _url_part(str(image["url"]), image.get("detail") or default_detail)
        kind = value.get("type", kind)
    msg = f"Unsupported content block type {kind!r}. Accepted: {ACCEPTED_BLOCKS}."
    raise InvalidRequestError(msg)


def _image_block_part(block: dict[str, Any], default_detail: Detail) -> Part:
    extras = block.get("extras") or {}
    detail = block.get("detail") or extras.get("detail") or default_detail
    if block.get("url"):
        return _url_part(str(block["url"]), detail)
    if isinstance(block.get("base64"), str):  # empty data too: prepare_image refuses it
        size = _preparation.unseal(block) if detail == extras.get("detail") else None
        if size is not None:
            width, height = size
            return SealedImage(block["base64"], block["mime_type"], width, height, detail)
        return BinaryImage(decode_base64(block["base64"]), checked_detail(detail))
    if block.get("file_id") or block.get("id"):
        # An Anthropic {"source": {"type": "file"}} block arrives with the file id in "id".
        msg = (
            "Images given by file id are not supported by the Chat Completions API: "
            "pass the image as a URL, base64 data or a local file via prepare_image()."
        )
        raise InvalidRequestError(msg)
    msg = f"Image block has no 'url' or 'base64' field. Accepted: {ACCEPTED_BLOCKS}."
    raise InvalidRequestError(msg)


def _url_part(url: str, detail: str) -> ImageUrl | BinaryImage:
    checked = checked_detail(detail)
    if is_data_url(url):
        return BinaryImage(decode_data_url(url), checked)
    if not is_fetched_url(url):
        raise not_a_url(url)
    return ImageUrl(url, checked)


# --------------------------------------------------------------------------------------------
# Parts to wire
# --------------------------------------------------------------------------------------------


def _wire_part(part: Part, options: ImageOptions) -> dict[str, Any]:
    if options.seen is not None and not isinstance(part, TextPart):
        options.seen(part)
    if options.stand_in is not None and not isinstance(part, TextPart):
        return options.stand_in(part)
    match part:
        case TextPart(text):
            return {"type": "text", "text": text}
        case ImageUrl(url, detail):
            pass
        case SealedImage(b64, mime_type, _, _, detail):
            url = f"data:{mime_type};base64,{b64}"
        case BinaryImage(data, detail):
            url = _preparation.prepare_image(data, detail, first_frame=options.first_frame).data_url
        case _:
            assert_never(part)
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def _text_only(parts: list[Part], role: str) -> str:
    if any(not isinstance(p, TextPart) for p in parts):
        msg = (
            f"Images are accepted in user and tool messages only, not in {role} messages: "
            "move the image into a HumanMessage."
        )
        raise InvalidRequestError(msg)
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def _user_message(message: BaseMessage, options: ImageOptions) -> dict[str, Any]:
    content = message.content
    if not isinstance(content, str):
        content = [_wire_part(p, options) for p in message_parts(message, options.detail)]
    wire: dict[str, Any] = {"role": "user", "content": content}
    if message.name:
        wire["name"] = message.name
    return wire


def _assistant_message(message: AIMessage, options: ImageOptions) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant"}
    text = _text_only(message_parts(message, options.detail), "assistant")
    valid = [(c["id"], c["name"], json.dumps(c["args"])) for c in message.tool_calls]
    invalid = [(c["id"], c["name"], c["args"]) for c in message.invalid_tool_calls]
    calls = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        for call_id, name, arguments in valid + invalid
    ]
    wire["content"] = text if text or not calls else None
    if calls:
        wire["tool_calls"] = calls
    if message.name:
        wire["name"] = message.name
    return wire


def _tool_messages(
    message: ToolMessage, options: ImageOptions
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool message, and the image parts it carried (to be sent in a user message)."""
    parts = message_parts(message, options.detail)
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    image_parts = [_wire_part(p, options) for p in parts if not isinstance(p, TextPart)]
    if image_parts and not text:
        text = f"[{len(image_parts)} image(s) returned; sent in the next user message]"
    wire = {"role": "tool", "tool_call_id": message.tool_call_id, "content": text}
    if not image_parts:
        return wire, []
    label = f"Image(s) returned by tool call {message.tool_call_id}"
    label += f" ({message.name}):" if message.name else ":"
    return wire, [{"type": "text", "text": label}, *image_parts]


_ROLE_BY_CHAT_ROLE = {"user": "user", "human": "user", "system": "system", "developer": "developer"}


def _simple_message(message: BaseMessage, options: ImageOptions) -> dict[str, Any]:
    if isinstance(message, HumanMessage):
        return _user_message(message, options)
    if isinstance(message, AIMessage):
        return _assistant_message(message, options)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": _text_only(message_parts(message, "auto"), "system")}
    if isinstance(message, ChatMessage):
        role = _ROLE_BY_CHAT_ROLE.get(message.role)
        if role == "user":
            return _user_message(message, options)
        if role is not None:
            return {"role": role, "content": _text_only(message_parts(message, "auto"), role)}
        if message.role in {"assistant", "ai"}:
            return _assistant_message(AIMessage(content=message.content), options)
    msg = f"Unsupported message type {type(message).__name__}; use Human, AI, System or Tool."
    raise InvalidRequestError(msg)


def to_wire_messages(
    messages: Sequence[BaseMessage], options: ImageOptions
) -> list[dict[str, Any]]:
    """Map LangChain messages to Chat Completions ``messages``."""
    wire: list[dict[str, Any]] = []
    pending_images: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            tool_wire, image_parts = _tool_messages(message, options)
            wire.append(tool_wire)
            pending_images.extend(image_parts)
            continue
        if pending_images:
            wire.append({"role": "user", "content": pending_images})
            pending_images = []
        wire.append(_simple_message(message, options))
    if pending_images:
        wire.append({"role": "user", "content": pending_images})
    return wire


def question_message(question: str, image: _preparation.PreparedImage | ImageUrl) -> HumanMessage:
    """A question about one image: a prepared image (sent as it is) or a link the API fetches."""
    if isinstance(image, ImageUrl):
        block = {"type": "image_url", "image_url": {"url": image.url, "detail": image.detail}}
    else:
        block = image.content_block()
    return HumanMessage(content=[{"type": "text", "text": question}, block])
