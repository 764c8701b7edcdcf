"""The image budget: which earlier images a model call still receives, and at what detail.

Images are found in every message's content, whatever dialect they are written in, and
counted exactly by :mod:`._tokens` (an ``http(s)`` image at the 1445-token upper bound unless
its size is given). Walking from the newest image to the oldest, the images of the latest user
turn set aside, each image is given one of three fates, in this order and never going back:

1. ``keep``: sent as it is, while the images kept so far fit the detail budget (tokens, and a
   count if one is given) and the whole budget;
2. ``low``: sent at ``low`` detail (85 tokens), while it fits the whole budget (and the count
   of images, if one is given); inline images are re-prepared by
   :func:`~.images.prepare_image` at ``low`` detail (512 px at most), which finds the result in
   its cache on later calls;
3. ``stub``: replaced by a one-line text block saying an image was here, and pointing at a
   ``describe_image`` result about it when the conversation holds one.

So an older image never gets more detail than a newer one, messages are never added, removed
or reordered (tool calls and their tool messages stay paired), and the result is a fixed
point: applied to its own output, the policy changes nothing.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, ToolMessage

from langchain_afarensis_vision._api.contract import (
    BASE_IMAGE_TOKENS,
    Detail,
    estimate_image_tokens,
    is_fetched_url,
)
from langchain_afarensis_vision._sources.opening import read_image_size
from langchain_afarensis_vision.chat_models._messages import (
    BinaryImage,
    ImagePart,
    ImageUrl,
    SealedImage,
    message_parts,
)
from langchain_afarensis_vision.chat_models._tokens import image_tokens
from langchain_afarensis_vision.errors import AfarensisError
from langchain_afarensis_vision.images import _preparation

DEFAULT_PLACEHOLDER = "[An image was here ({image}); left out to keep the context small.]"
DEFAULT_POINTER = " It was described in the {tool} result of tool call {tool_call_id}."

Fate = Literal["keep", "low", "stub"]
M = TypeVar("M", bound=BaseMessage)


@dataclass(frozen=True, slots=True)
class Policy:
    """The budget's settings (see :class:`~.middleware.ImageBudgetEdit` for each)."""

    max_image_tokens: int
    detail_tokens: int
    keep_detail: int | None
    max_images: int | None
    default_detail: Detail
    image_sizes: Mapping[str, tuple[int, int]]
    description_tools: frozenset[str]
    placeholder: str
    pointer: str
    first_frame: bool


@dataclass(frozen=True, slots=True)
class Found:
    """One image block of the history: where it is, what it is, and what it costs as it is."""

    message: int
    block: int
    part: ImagePart
    tokens: int


def apply(messages: Sequence[M], policy: Policy) -> list[M]:
    """``messages`` as a model call should receive them: a new list, the input untouched.

    Messages whose images all keep their fate ``keep`` are the same objects; the others are
    copies with a new ``content``.
    """
    found = find_images(messages, policy)
    fates = plan(found, policy)
    changed: dict[int, dict[int, Any]] = {}
    descriptions: dict[str, tuple[str, str]] | None = None
    pointers = _Pointers(messages)
    for image, fate in zip(found, fates, strict=True):
        if fate == "keep" or (fate == "low" and image.part.detail == "low"):
            continue
        block = messages[image.message].content[image.block]
        assert isinstance(block, dict)  # found_images only finds dict blocks
        if fate == "low":
            new = _low_block(image.part, block, policy)
        else:
            if descriptions is None:
                descriptions = _descriptions(messages, policy.description_tools)
            new = _stub_block(image, block, pointers.described(image, block, descriptions), policy)
        changed.setdefault(image.message, {})[image.block] = new
    result = list(messages)
    for index, blocks in changed.items():
        content = list(messages[index].content)
        for position, new in blocks.items():
            content[position] = new
        result[index] = messages[index].model_copy(update={"content": content})
    return result


def _is_user(message: BaseMessage) -> bool:
    user_chat = isinstance(message, ChatMessage) and message.role in {"user", "human"}
    return isinstance(message, HumanMessage) or user_chat


def latest_user_turn(messages: Sequence[BaseMessage]) -> range:
    """The indices of the latest user turn, whose images are never touched (empty: none).

    The last user message, and the user messages right before it.
    """
    end = next((i + 1 for i in range(len(messages) - 1, -1, -1) if _is_user(messages[i])), 0)
    start = end
    while start > 0 and _is_user(messages[start - 1]):
        start -= 1
    return range(start, end)


def find_images(messages: Sequence[BaseMessage], policy: Policy) -> list[Found]:
    """Every image block, newest first, except those of the latest user turn."""
    protected = latest_user_turn(messages)
    found: list[Found] = []
    for index in range(len(messages) - 1, -1, -1):
        content = messages[index].content
        if index in protected or isinstance(content, str):
            continue
        for position in range(len(content) - 1, -1, -1):
            block = content[position]
            if not isinstance(block, dict) or block.get("type") not in _IMAGE_TYPES:
                continue  # a type that is no string (a list...) too: left to the sender to judge
            part = image_part(block, policy.default_detail)
            if part is not None:
                found.append(Found(index, position, part, _tokens(part, policy)))
    return found


_IMAGE_TYPES = ("image", "image_url")  # a tuple: compared, never hashed


def image_part(block: dict[str, Any], default_detail: Detail) -> ImagePart | None:
    """The image a block holds, read as the message mapper reads it (None: not an image)."""
    try:
        parts = message_parts(HumanMessage(content=[block]), default_detail)
    except (AfarensisError, ValueError):  # refused when sent, not this policy's to judge
        return None
    if len(parts) != 1 or not isinstance(parts[0], ImageUrl | BinaryImage | SealedImage):
        return None
    return parts[0]


def _tokens(part: ImagePart, policy: Policy) -> int:
    if isinstance(part, ImageUrl) and part.detail != "low" and part.url in policy.image_sizes:
        return estimate_image_tokens(*policy.image_sizes[part.url], part.detail)
    try:
        return image_tokens(part, None)  # an unknown URL: the upper bound, nothing fetched
    except (AfarensisError, ValueError):  # unreadable bytes: refused when sent anyway
        return 0


def plan(found: Sequence[Found], policy: Policy) -> list[Fate]:
    """The fate of each image, newest first (see the module docstring)."""
    detail_left = policy.detail_tokens
    total_left = policy.max_image_tokens
    kept = 0
    fates: list[Fate] = []
    stage: Fate = "keep"
    for image in found:
        room = policy.max_images is None or kept < policy.max_images
        if stage == "keep":
            counted = policy.keep_detail is None or kept < policy.keep_detail
            if room and counted and image.tokens <= min(detail_left, total_left):
                fates.append("keep")
                detail_left -= image.tokens
                total_left -= image.tokens
                kept += 1
                continue
            stage = "low"
        if stage == "low":
            low = min(image.tokens, BASE_IMAGE_TOKENS)
            if room and low <= total_left:
                fates.append("low")
                total_left -= low
                kept += 1
                continue
            stage = "stub"
        fates.append("stub")
    return fates


def _low_block(part: ImagePart, block: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """``block``'s image at ``low`` detail: a link as a v1 block, inline bytes re-prepared."""
    if isinstance(part, ImageUrl):
        new: dict[str, Any] = {"type": "image", "url": part.url, "extras": {"detail": "low"}}
    else:
        data = part.data if isinstance(part, BinaryImage) else base64.b64decode(part.base64)
        try:
            prepared = _preparation.prepare_image(data, "low", first_frame=policy.first_frame)
        except (AfarensisError, ValueError):  # it could not be sent at its detail either
            return _text(policy.placeholder.format(image=_what(part)))
        new = prepared.content_block()  # sealed: sent as it is, never prepared again
    if isinstance(block.get("id"), str):
        new["id"] = block["id"]
    return new


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _what(part: ImagePart) -> str:
    """A few words on an image, for its stub."""
    if isinstance(part, ImageUrl):
        return part.url if len(part.url) <= 100 else part.url[:97] + "..."
    if isinstance(part, SealedImage):
        return f"{part.mime_type}, {part.width}x{part.height}"
    try:
        width, height = read_image_size(part.data)
    except (AfarensisError, ValueError):
        return f"inline image, {len(part.data):,} bytes"
    return f"inline image, {width}x{height}"


def _stub_block(
    image: Found, block: dict[str, Any], described: tuple[str, str] | None, policy: Policy
) -> dict[str, Any]:
    text = policy.placeholder.format(image=_what(image.part))
    if described is not None:
        text += policy.pointer.format(tool=described[0], tool_call_id=described[1])
    # Text blocks of a tool message are sent joined: a stub after text starts on its own line.
    return _text(("\n" if image.block > 0 else "") + text)


_WORD = re.compile(r"[^\s'\"`()<>\[\]{},;]+")


def _key(name: str) -> str | None:
    """What two names of one image have in common: a URL itself, a file's base name."""
    name = name.strip().rstrip(".:")
    if not name or name.lower().startswith("data:"):
        return None
    return name if is_fetched_url(name) else PurePath(name).name or None


class _Pointers:
    """Which description a stub points to, each message's names read once (not once an image).

    An image may be known by its URL and its block id, then by what its message says: the
    arguments of the tool call that returned it and the words of the text beside it.
    """

    def __init__(self, messages: Sequence[BaseMessage]) -> None:
        self.messages = messages
        self.by_message: dict[int, tuple[str, str] | None] = {}

    def described(
        self, image: Found, block: dict[str, Any], descriptions: Mapping[str, tuple[str, str]]
    ) -> tuple[str, str] | None:
        """The (tool, tool call id) of a description of ``image``, if there is one."""
        if not descriptions:
            return None
        own = [image.part.url] if isinstance(image.part, ImageUrl) else []
        own += [block["id"]] if isinstance(block.get("id"), str) else []
        if found := _first(own, descriptions):
            return found
        if image.message not in self.by_message:
            names = _message_names(self.messages, image.message)
            self.by_message[image.message] = _first(names, descriptions)
        return self.by_message[image.message]


def _first(
    names: Sequence[str], descriptions: Mapping[str, tuple[str, str]]
) -> tuple[str, str] | None:
    keys = (key for name in names if (key := _key(name)) is not None)
    return next((descriptions[key] for key in keys if key in descriptions), None)


def _message_names(messages: Sequence[BaseMessage], index: int) -> list[str]:
    """What message ``index`` says of its images: its tool call's arguments, its text's words."""
    names: list[str] = []
    message = messages[index]
    if isinstance(message, ToolMessage):
        call = _tool_call(messages[:index], message.tool_call_id)
        if call is not None:
            names.extend(v for v in call.get("args", {}).values() if isinstance(v, str))
    for item in message.content:
        text = item if isinstance(item, str) else item.get("text")
        if isinstance(text, str) and (isinstance(item, str) or item.get("type") == "text"):
            names.extend(_WORD.findall(text))
    return names


def _tool_call(earlier: Sequence[BaseMessage], call_id: str) -> dict[str, Any] | None:
    ai = [message for message in reversed(earlier) if isinstance(message, AIMessage)]
    return next((dict(c) for m in ai for c in m.tool_calls if c.get("id") == call_id), None)


def _description_calls(
    messages: Sequence[BaseMessage], tools: frozenset[str]
) -> dict[str, tuple[str, str]]:
    """Tool call id -> (tool, image argument) of every call to a describing tool."""
    calls: dict[str, tuple[str, str]] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                image = call.get("args", {}).get("image")
                if call["name"] in tools and isinstance(image, str) and call.get("id"):
                    calls[str(call["id"])] = (call["name"], image)
    return calls


def _descriptions(
    messages: Sequence[BaseMessage], tools: frozenset[str]
) -> dict[str, tuple[str, str]]:
    """Image names -> (tool, tool call id) of a successful description of that image."""
    calls = _description_calls(messages, tools)
    found: dict[str, tuple[str, str]] = {}
    for message in messages:
        if not isinstance(message, ToolMessage) or message.tool_call_id not in calls:
            continue
        if message.status == "error" or not message.text.strip():
            continue
        tool, image = calls[message.tool_call_id]
        sources = [image]
        if isinstance(message.artifact, dict) and isinstance(message.artifact.get("source"), str):
            sources.append(message.artifact["source"])
        for source in sources:
            if (key := _key(source)) is not None:
                found.setdefault(key, (tool, message.tool_call_id))
    return found
