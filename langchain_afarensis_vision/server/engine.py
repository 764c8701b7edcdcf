"""The offline answer engine: deterministic, honest answers from what can be computed locally.

It says what it is, and never pretends to recognise what it cannot. For images it reports what
can be measured: how many there are; per image its format, size, orientation, detail, token
cost, dominant colours in plain words, brightness and transparency; and, with the optional
``ocr`` extra, the text it finds. A text-only request gets one fixed short answer. The same
request always gets the same answer.

These are the stand-in's rules, not GPT-4V's. Structured output is filled from what it
measured (size, format, colours, text it read, the image count...: see :mod:`._filling`); every
other field is its default, null where the schema allows it, else its type's zero value, and is
listed as a placeholder in the response's ``metadata`` (and in one line of a free-text field such
as ``reasoning`` when the schema has one). A ``tool_choice`` that forces a function ("required",
or the function by name) gets a call filled the same way; ``response_format`` ``json_schema``
gets an instance of its schema, ``json_object`` a JSON object of the measured facts. With
``tool_choice`` "auto" (or none), when the last user message names an image (a file name, path
or URL) that an offered tool's parameter takes, the engine calls that tool, once per image, and
then answers by quoting the tool's result (see :mod:`._tool_use`); otherwise it answers in text.
A question about what it reads gets the lines read in the images (OCR) or given in ``[n]``
text parts that best match it, each marked with its source (see :mod:`._answers`).
Every answer's ``metadata`` says it is the stand-in's.

``stop`` sequences cut the answer before the first one (``finish_reason`` "stop"), and
``max_tokens`` truncates it to that many cl100k_base tokens (``finish_reason`` "length").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_afarensis_vision._api import tokenizer as _tokenizer
from langchain_afarensis_vision._api.contract import FORMAT_NAMES, stand_in_metadata, text_tokens
from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision.server import _analysis, _answers, _ocr, _tool_use
from langchain_afarensis_vision.server._filling import MIN_SHARE, Filled, Measured, fill
from langchain_afarensis_vision.server._images import SeenImage
from langchain_afarensis_vision.server._request import ChatRequest

INTRO: Final = "I am the local Afarensis engine, an offline stand-in for gpt-4-vision-preview."
TEXT_ONLY_ANSWER: Final = (
    f"Hello! {INTRO} I cannot understand or write free text, so every text-only message gets "
    "this same short answer. Send me an image and I will report what I can measure in it: its "
    "size, format, token cost, colours, brightness, transparency and, with OCR installed, "
    "its text."
)
NO_OCR: Final = f"OCR is not available ({_ocr.INSTALL_HINT})"
OCR_OFF: Final = "not read (OCR is installed but turned off on this server: ocr=False)"
NOT_EXAMINED: Final = (
    "Its pixels were not examined: decoding it would take more than this server's image "
    "memory, so its format, size and token cost are read from its header alone"
)


@dataclass(frozen=True)
class Answer:
    """One choice's answer: text or tool calls, why it ended, its completion tokens.

    ``metadata`` is the response's, saying it is the stand-in's and which values are
    placeholders.
    """

    content: str | None
    tool_calls: tuple[dict[str, Any], ...]
    finish_reason: str
    completion_tokens: int
    metadata: dict[str, str] = field(default_factory=stand_in_metadata)


class Engine:
    """Answers requests; ``ocr`` None uses OCR when the extra is installed, False never.

    With a ``budget``, each image's pixel work (colours, OCR) holds what it takes (estimated
    from the header: the image's ``Header``): the server's image memory, shared with the checks.
    An image not examined (too large for it) is described from its header, and so is OCR on an
    image it cannot take whole. Answering blocks (decodes, waits for the budget): the server
    calls :meth:`answer` in a worker thread.
    """

    def __init__(self, ocr: bool | None = None, budget: MemoryBudget | None = None) -> None:
        if ocr and not _ocr.available():
            msg = f"ocr=True needs the OCR extra: {_ocr.INSTALL_HINT}"
            raise RuntimeError(msg)
        self.ocr = _ocr.available() if ocr is None else ocr
        self.budget = budget

    def _pixels(self, cost: int) -> AbstractContextManager[None]:
        """Hold ``cost`` bytes of the image memory while pixels are at work (no budget: none)."""
        if self.budget is None:
            return contextlib.nullcontext()
        return self.budget.reserve(cost)

    def _analyse(self, image: SeenImage) -> _analysis.PixelFacts | None:
        """The measured pixel facts, or None for an image not examined."""
        if not image.info.examined:
            return None
        with self._pixels(image.header.work):
            return _analysis.analyse(image.data, image.digest)

    def _read_text(self, image: SeenImage) -> str | None:
        """The text OCR finds, or None when it is not run (no OCR, or an image too large)."""
        whole = image.header.whole
        if not self.ocr or not image.info.examined or (self.budget and whole > self.budget.limit):
            return None
        with self._pixels(whole):
            return _ocr.read_text(image.data, image.digest)

    def answer(self, request: ChatRequest, images: Sequence[SeenImage]) -> Answer:
        """The answer to ``request`` whose images (in order) are ``images``."""
        if request.forced_tool is not None:
            given = _tool_use.given_to_forced(request, request.forced_tool)
            call = _tool_use.PlannedCall(request.forced_tool, given)
            return _tool_calls(request, [(call, self._fill(call, images, required_only=False))])
        if calls := _tool_use.planned_calls(request):
            return _tool_calls(request, [(c, self._fill(c, images, True)) for c in calls])
        format_type = (request.response_format or {}).get("type")
        if format_type == "json_schema":
            schema = request.response_format["json_schema"].get("schema", {})  # type: ignore[index]
            filled = fill(schema, self.measure(images))
            text = json.dumps(filled.value, ensure_ascii=False)
            return _finish(text, request, _metadata(filled))
        if format_type == "json_object":
            return _finish(json.dumps(self.facts(images), ensure_ascii=False), request)
        return _finish(self.describe(request, images), request)

    def measure(self, images: Sequence[SeenImage]) -> Measured:
        """The measured facts of ``images``, for structured answers."""
        return Measured(tuple(self._image_facts(image) for image in images))

    def _fill(
        self, call: _tool_use.PlannedCall, images: Sequence[SeenImage], required_only: bool
    ) -> Filled:
        parameters = call.function.get("parameters") or {}
        measured = self.measure(images)
        return fill(
            parameters, measured, call.given, required_only=required_only, note=not required_only
        )

    # -- text ---------------------------------------------------------------------------------

    def describe(self, request: ChatRequest, images: Sequence[SeenImage]) -> str:
        """The text answer: the lines that match a question (:mod:`._answers`), else the facts."""
        quoted = None if images else _tool_use.results_answer(request.messages, INTRO)
        read = self._read_text if self.ocr else None
        if found := quoted or _answers.answer(request.messages, images, read, INTRO):
            return found
        if not images:
            return TEXT_ONLY_ANSWER
        count = "the image" if len(images) == 1 else f"the {len(images)} images"
        lines = [
            f"{INTRO} I cannot recognise objects, people or scenes, but here is what I can "
            f"measure in {count} you sent."
        ]
        lines += [self._describe_one(i, image) for i, image in enumerate(images, 1)]
        return "\n".join(lines)

    def _describe_one(self, index: int, image: SeenImage) -> str:
        info = image.info
        facts = self._analyse(image)
        seen_w, seen_h = image.effective_size
        turned = "upright" if info.orientation == 1 else f"EXIF orientation {info.orientation}"
        name = FORMAT_NAMES[info.mime_type]
        line = (
            f"Image {index}: a {name} of {info.width} x {info.height} pixels "
            f"({turned}); at detail {image.detail!r} the model sees {seen_w} x {seen_h} and it "
            f"costs {image.tokens} tokens."
        )
        if facts is None:
            return f"{line} {NOT_EXAMINED}."
        return (
            f"{line} Colours: {_colours(facts)}. It is {facts.brightness} "
            f"overall (mean brightness {facts.mean_luma:.0f} of 255) and has "
            f"{_transparency(facts)}. Text{self._text(image)}"
        )

    def _text(self, image: SeenImage) -> str:
        """What follows "Text": the lines read, each on its own line as read, or why none."""
        if not self.ocr:
            return f": {why_no_ocr()}."
        found = self._read_text(image)
        if found is None:
            return ": not read (OCR needs the image whole, more than this server's image memory)."
        return f" read, line by line:\n{found}" if found else ": none found."

    # -- JSON ---------------------------------------------------------------------------------

    def facts(self, images: Sequence[SeenImage]) -> dict[str, Any]:
        """The measured facts as a JSON object (the ``json_object`` answer)."""
        return {
            "engine": "local-afarensis",
            "note": f"{INTRO} It measures images; it cannot recognise what they show.",
            "image_count": len(images),
            "images": [self._image_facts(image) for image in images],
        }

    def _image_facts(self, image: SeenImage) -> dict[str, Any]:
        facts = self._analyse(image)
        seen_w, seen_h = image.effective_size
        header = {
            "format": FORMAT_NAMES[image.info.mime_type].lower(),
            "mime_type": image.info.mime_type,
            "bytes": len(image.data),
            "width": image.info.width,
            "height": image.info.height,
            "orientation": image.info.orientation,
            "detail": image.detail,
            "seen_width": seen_w,
            "seen_height": seen_h,
            "tokens": image.tokens,
            "pixels_examined": facts is not None,
        }
        if facts is None:
            return header | {"note": f"{NOT_EXAMINED}."}
        return header | {
            "colours": [{"name": n, "share": round(s, 2)} for n, s in facts.colours[:5]],
            "brightness": facts.brightness,
            "mean_brightness": facts.mean_luma,
            "transparency": facts.transparency,
            "text": self._read_text(image),
        }


def _colours(facts: _analysis.PixelFacts) -> str:
    shown = [(name, share) for name, share in facts.colours if share >= MIN_SHARE][:3]
    if not shown:
        return "none visible (every pixel is transparent)"
    words = [f"{name} ({share:.0%})" for name, share in shown]
    if shown[0][1] >= 0.9:
        return f"almost entirely {words[0]}"
    if len(words) == 1:
        return f"mostly {words[0]}"
    if shown[0][1] >= 0.5:
        return f"mostly {words[0]}, with {' and '.join(words[1:])}"
    return f"a mix of {', '.join(words[:-1])} and {words[-1]}"


def _transparency(facts: _analysis.PixelFacts) -> str:
    return {
        "none": "no transparency",
        "opaque": "an alpha channel but no transparent pixels",
        "partial": f"transparent pixels ({facts.transparent_share:.0%} of them)",
        "full": "only transparent pixels",
    }[facts.transparency]


def _tool_calls(
    request: ChatRequest, calls: Sequence[tuple[_tool_use.PlannedCall, Filled]]
) -> Answer:
    """An answer calling each function with its filled arguments."""
    wire: list[dict[str, Any]] = []
    together = Filled()
    for i, (call, filled) in enumerate(calls):
        name = call.function["name"]
        arguments = json.dumps(filled.value, ensure_ascii=False)
        if arguments == "null":
            arguments = "{}"
        seed = f"{request.digest}:{name}" + (f":{i}" if i else "")
        call_id = hashlib.blake2b(seed.encode(), digest_size=12).hexdigest()
        wire.append(
            {
                "id": f"call_local_{call_id}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
        together.measured += [m for m in filled.measured if m not in together.measured]
        together.placeholders += [p for p in filled.placeholders if p not in together.placeholders]
    tokens = sum(text_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in wire)
    return Answer(None, tuple(wire), "tool_calls", tokens, _metadata(together))


def _metadata(filled: Filled) -> dict[str, str]:
    return stand_in_metadata(measured=filled.measured, placeholders=filled.placeholders)


def _finish(text: str, request: ChatRequest, metadata: dict[str, str] | None = None) -> Answer:
    """Apply ``stop`` then ``max_tokens`` to a text answer."""
    finish_reason = "stop"
    cuts = [text.find(stop) for stop in request.stop if stop in text]
    if cuts:
        text = text[: min(cuts)]
    if text_tokens(text) > request.max_tokens:
        text = _tokenizer.truncate(text, request.max_tokens)
        finish_reason = "length"
    return Answer(text, (), finish_reason, text_tokens(text), metadata or stand_in_metadata())


def why_no_ocr() -> str:
    """What an answer says of an image's text when the server does not read it with OCR."""
    return OCR_OFF if _ocr.available() else NO_OCR
