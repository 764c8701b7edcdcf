"""LangChain messages to Chat Completions messages, one straight way.

Every dialect LangChain users write images in (OpenAI ``image_url`` dicts, v1 ``image`` blocks,
v0 ``source_type`` blocks, Anthropic ``source`` blocks) is first normalised by langchain-core's
own translators (``BaseMessage.content_blocks``) into v1 standard blocks. Those are then read into
two canonical parts, :class:`TextPart` and :class:`ImagePart`, by a closed dispatch that fails
loudly on anything else. The wire mapping (here) and offline token counting (``_tokens``) both
start from these parts.

Inline images (``data:`` URLs and base64) go through :func:`~.images.prepare_image`; URL images
pass through untouched. The Chat Completions wire format accepts text only in ``tool`` messages,
so images a tool returns are moved into a ``user`` message placed right after the run of tool
messages they belong to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_afarensis_vision import images
from langchain_afarensis_vision._contract import Detail, check_detail

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
class ImagePart:
    """An image in a message: a remote ``url``, or inline ``data`` bytes."""

    detail: Detail
    url: str | None = None
    data: bytes | None = None

    def __repr__(self) -> str:
        source = self.url if self.url is not None else f"{len(self.data or b'')} bytes"
        return f"ImagePart({source}, detail={self.detail!r})"


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """How inline images are prepared: the default detail, and the animated-image policy."""

    detail: Detail = "auto"
    first_frame: bool = False


# --------------------------------------------------------------------------------------------
# Reading parts out of a message
# --------------------------------------------------------------------------------------------


def message_parts(message: BaseMessage, default_detail: Detail) -> list[Part]:
    """The canonical parts of ``message``'s content, in order."""
    if isinstance(message.content, str):
        return [TextPart(message.content)] if message.content else []
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
        if value.get("type") == "image_url" and isinstance(value.get("image_url"), str):
            # The legacy string form {"type": "image_url", "image_url": "<url>"}.
            return _url_part(value["image_url"], value.get("detail") or default_detail)
        kind = value.get("type", kind)
    msg = f"Unsupported content block type {kind!r}. Accepted: {ACCEPTED_BLOCKS}."
    raise ValueError(msg)


def _image_block_part(block: dict[str, Any], default_detail: Detail) -> Part:
    extras = block.get("extras") or {}
    detail = block.get("detail") or extras.get("detail") or default_detail
    if block.get("url"):
        return _url_part(str(block["url"]), detail)
    if isinstance(block.get("base64"), str):  # empty data too: prepare_image refuses it
        return ImagePart(detail=check_detail(detail), data=images.decode_base64(block["base64"]))
    if block.get("file_id") or block.get("id"):
        # An Anthropic {"source": {"type": "file"}} block arrives with the file id in "id".
        msg = (
            "Images given by file id are not supported by the Chat Completions API: "
            "pass the image as a URL, base64 data or a local file via prepare_image()."
        )
        raise ValueError(msg)
    msg = f"Image block has no 'url' or 'base64' field. Accepted: {ACCEPTED_BLOCKS}."
    raise ValueError(msg)


def _url_part(url: str, detail: str) -> ImagePart:
    checked = check_detail(detail)
    if url.startswith("data:"):
        return ImagePart(detail=checked, data=images.decode_data_url(url))
    scheme = url.partition(":")[0].lower()
    if scheme not in {"http", "https"}:
        msg = f"Image URLs must be http(s) or data: URLs; got scheme {scheme!r} in {url[:80]!r}."
        raise ValueError(msg)
    return ImagePart(detail=checked, url=url)


# --------------------------------------------------------------------------------------------
# Parts to wire
# --------------------------------------------------------------------------------------------


def _wire_part(part: Part, options: ImageOptions) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url is not None:
        return {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}
    assert part.data is not None
    prepared = images.prepare_image(part.data, part.detail, first_frame=options.first_frame)
    return {"type": "image_url", "image_url": {"url": prepared.data_url, "detail": part.detail}}


def _text_only(parts: list[Part], role: str) -> str:
    if any(isinstance(p, ImagePart) for p in parts):
        msg = (
            f"Images are accepted in user and tool messages only, not in {role} messages: "
            "move the image into a HumanMessage."
        )
        raise ValueError(msg)
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def _user_message(message: BaseMessage, options: ImageOptions) -> dict[str, Any]:
    parts = message_parts(message, options.detail)
    wire: dict[str, Any] = {"role": "user"}
    if isinstance(message.content, str):
        wire["content"] = message.content
    else:
        wire["content"] = [_wire_part(p, options) for p in parts]
    if message.name:
        wire["name"] = message.name
    return wire


def _assistant_message(message: AIMessage, options: ImageOptions) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant"}
    text = _text_only(message_parts(message, options.detail), "assistant")
    calls = [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ] + [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": call["args"]},
        }
        for call in message.invalid_tool_calls
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
    image_parts = [_wire_part(p, options) for p in parts if isinstance(p, ImagePart)]
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
    raise TypeError(msg)


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


def question_message(question: str, url: str, detail: Detail) -> HumanMessage:
    """A question about one image (a URL or a prepared image's data URL), as users write it."""
    return HumanMessage(
        content=[
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": url, "detail": detail}},
        ]
    )
