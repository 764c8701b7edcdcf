"""When the stand-in calls an offered tool on its own, and what it answers from the results.

The rule: tools are offered and not forbidden (``tool_choice`` "auto" or none), and the last
user message names an image, in its text: an ``http(s)://`` or ``data:image/`` URL, or a file
name or path ending in an image extension (``hopper.jpg``, ``./shots/a.PNG``, ``"my photo.webp"``
in quotes). The tool called is the one with a string parameter that takes an image (its name
says image/picture/photo, else path/file/url/source, else its description does), a tool whose
name says "image" (``describe_image``) first. One call per image named, in order (only the first
when ``parallel_tool_calls`` is false), the image in that parameter and the user's words in a
``question``/``query``/``prompt`` parameter; a tool is never called twice for the same image in
one conversation, so an agent loop ends. Once the results are in, the answer quotes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from langchain_afarensis_vision.server._filling import normalise, normalise_text, properties_of
from langchain_afarensis_vision.server._placeholders import target
from langchain_afarensis_vision.server._request import ChatRequest

EXTENSIONS: Final = ("png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "heic", "avif")
QUESTION_PARAMETERS: Final = frozenset(
    {"question", "query", "prompt", "instruction", "instructions", "task", "ask"}
)
MAX_RESULT_CHARS: Final = 2000
"""A tool result longer than this is quoted up to here, then "..."."""
_EXT = "|".join(EXTENSIONS)
_URL = re.compile(r"(?:https?://|data:image/)[^\s<>\"'`]+", re.IGNORECASE)
_QUOTED = re.compile(rf"[\"'`]([^\"'`\n]*?\.(?:{_EXT}))[\"'`]", re.IGNORECASE)
_BARE = re.compile(
    rf"(?<![\w/\\.~:-])((?:[A-Za-z]:)?[\w/\\.~-]*[\w-]\.(?:{_EXT}))(?![\w.-]*\w)", re.IGNORECASE
)
_IMAGE_WORDS: Final = frozenset({"image", "img", "picture", "photo", "screenshot"})
_PLACE_WORDS: Final = frozenset({"path", "file", "filename", "url", "uri", "src", "source"})
_DESCRIBED = re.compile(r"\b(image|picture|photo|path|file|url)")


@dataclass(frozen=True)
class PlannedCall:
    """A call the stand-in makes: the function, and the arguments it read from the user."""

    function: dict[str, Any]
    given: dict[str, Any]


def planned_calls(request: ChatRequest) -> list[PlannedCall]:
    """The calls to make now (none when no image is named, or each was already asked about)."""
    user = _last_user_index(request.messages)
    if not request.callable_tools or user is None:
        return []
    text = message_text(request.messages[user])
    named = named_images(text)
    chosen = _image_tool(request.callable_tools) if named else None
    if chosen is None:
        return []
    function, params = chosen
    asked = _images_asked(request.messages, function["name"], params.image)
    calls = [
        PlannedCall(function, params.given(image, text)) for image in named if image not in asked
    ]
    return calls if request.parallel_tool_calls else calls[:1]


def given_to_forced(request: ChatRequest, function: dict[str, Any]) -> dict[str, Any]:
    """The arguments a forced call of ``function`` takes from the last user message.

    The first image it names, and the question, when the function has parameters for them.
    """
    user = _last_user_index(request.messages)
    params = _parameters(function)
    text = message_text(request.messages[user]) if user is not None else ""
    named = named_images(text)
    return params.given(named[0], text) if params is not None and named else {}


@dataclass(frozen=True)
class _Parameters:
    """A function's image parameter (how surely it takes one), and its question parameter."""

    score: int
    image: str
    question: str | None

    def given(self, image: str, text: str) -> dict[str, Any]:
        given = {self.image: image}
        if self.question is not None:
            given[self.question] = text.strip()
        return given


def named_images(text: str) -> list[str]:
    """The image URLs, file names and paths ``text`` names, in order, each once."""
    found = [(m.start(), m.group().rstrip(".,;:!?)]}")) for m in _URL.finditer(text)]
    rest = _URL.sub(lambda m: " " * len(m.group()), text)
    found += [(m.start(1), m.group(1)) for m in _QUOTED.finditer(rest)]
    rest = _QUOTED.sub(lambda m: " " * len(m.group()), rest)
    found += [(m.start(1), m.group(1)) for m in _BARE.finditer(rest)]
    return list(dict.fromkeys(name for _, name in sorted(found)))


def message_text(message: dict[str, Any]) -> str:
    """A message's text: its string content, or its text parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if part.get("text"))
    return str(content or "")


def results_answer(messages: list[dict[str, Any]], intro: str) -> str | None:
    """The answer quoting the tool results since the last user message.

    None if the conversation does not end with a tool result.
    """
    if messages[-1].get("role") != "tool":
        return None
    start = _last_user_index(messages) or 0
    names = {
        call.get("id"): call.get("function", {}).get("name")
        for message in messages
        for call in message.get("tool_calls") or []
    }
    quoted = []
    for message in messages[start:]:
        if message.get("role") != "tool":
            continue
        name = names.get(message.get("tool_call_id"))
        tool = f"The tool `{name}`" if name else "The tool"
        quoted.append(f"{tool} returned: {_shown(_without_intro(message_text(message), intro))}")
    return "\n".join(
        [f"{intro} I cannot interpret tool results; here they are as returned.", *quoted]
    )


def _without_intro(text: str, intro: str) -> str:
    """A result that is this engine's own answer, without its first line (the introduction)."""
    if text.startswith(intro):
        return text.partition("\n")[2].strip() or text
    return text


def _shown(text: str) -> str:
    return text if len(text) <= MAX_RESULT_CHARS else text[: MAX_RESULT_CHARS - 3] + "..."


def _last_user_index(messages: list[dict[str, Any]]) -> int | None:
    users = [i for i, message in enumerate(messages) if message.get("role") == "user"]
    return users[-1] if users else None


def _image_tool(
    functions: tuple[dict[str, Any], ...],
) -> tuple[dict[str, Any], _Parameters] | None:
    """The function to call with an image, and its parameters (the surest; the first of equals)."""
    found = [(f, params) for f in functions if (params := _parameters(f)) is not None]
    return max(found, key=lambda pair: pair[1].score, default=None)


def _parameters(function: dict[str, Any]) -> _Parameters | None:
    root = function.get("parameters") or {}
    properties = properties_of(target(root, root))
    strings = [name for name, prop in properties.items() if _free_string(target(prop, root))]
    if not strings:
        return None
    score, image = max((_image_score(name, properties[name]), name) for name in strings)
    if score == 0:
        return None
    if "image" in normalise(function["name"]):
        score += 3
    question = next((n for n in strings if normalise(n) in QUESTION_PARAMETERS), None)
    return _Parameters(score, image, question if question != image else None)


def _free_string(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and not any(k in node for k in ("enum", "const"))


def _image_score(name: str, prop: Any) -> int:
    words = set(normalise(name).split("_"))
    if words & _IMAGE_WORDS:
        return 3
    if words & _PLACE_WORDS:
        return 2
    description = prop.get("description") if isinstance(prop, dict) else None
    return 1 if _DESCRIBED.search(normalise_text(description)) else 0


def _images_asked(messages: list[dict[str, Any]], name: str, param: str) -> set[Any]:
    """The images earlier calls of the function ``name`` were given in ``param``."""
    asked = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            spec = call.get("function") or {}
            if spec.get("name") != name:
                continue
            try:
                arguments = json.loads(spec.get("arguments") or "{}")
            except ValueError:
                continue
            if isinstance(arguments, dict) and isinstance(arguments.get(param), str):
                asked.add(arguments[param])
    return asked
