"""Structured answers from what the engine measured, with every other value a marked placeholder.

A schema's properties are matched to the measured facts by name (``width``, ``imageWidth``,
``width_px``; ``colours``/``colors``/``palette``; ``text``/``ocr_text``; ``image_count``...; see
:data:`ALIASES`), else by a description that names exactly one fact ("Image width in pixels").
A match is used only if the value, adapted to the field (an ``enum`` member whatever its case,
at most ``maxItems`` colours, a size as ``{"width", "height"}``, ``"640x480"`` or ``[640, 480]``),
validates against the field's schema. A nested object is filled the same way, and an array of
objects named ``images`` gets one object per image.

Every other field is a placeholder: its ``default``, else ``null`` where the schema allows it
(so a ``bool`` the engine cannot know is never a silent ``false``), else, when required, the
minimal instance of its schema (:mod:`._placeholders`). Placeholders are listed by path
(``owner.name``); the first free-text field named like a note (``reasoning``, ``notes``,
``explanation``, ``description``...) gets one line saying what was measured and what was not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jsonschema
import referencing.exceptions

from langchain_afarensis_vision.server._placeholders import (
    MAX_DEPTH,
    nullable,
    placeholder,
    target,
)

MIN_SHARE: Final = 0.05
"""Colours covering less than this share of the image are not named."""

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    key: tuple(names.split())
    for key, names in {
        "width": "width",
        "height": "height",
        "size": "size dimensions dims resolution",
        "format": "format file_format file_type filetype extension file_extension",
        "mime_type": "mime_type mimetype mime media_type content_type",
        "colours": "colours colour_names colour_palette palette dominant_colours main_colours"
        " primary_colours key_colours",
        "colour": "colour dominant_colour main_colour primary_colour",
        "brightness": "brightness lightness",
        "mean_brightness": "mean_brightness average_brightness luminance luma",
        "transparency": "transparency",
        "has_transparency": "has_transparency transparent is_transparent has_alpha",
        "is_greyscale": "is_greyscale greyscale monochrome is_monochrome",
        "orientation": "orientation",
        "aspect_ratio": "aspect_ratio aspect",
        "tokens": "tokens image_tokens token_cost token_count cost_tokens",
        "detail": "detail detail_level",
        "bytes": "bytes file_size size_bytes file_size_bytes byte_size num_bytes",
        "text": "text texts ocr ocr_text extracted_text visible_text detected_text text_content"
        " transcription lines text_lines",
        "has_text": "has_text contains_text text_present",
        "count": "count images_count num_images number_of_images n_images total_images",
        "images": "images per_image image_facts",
    }.items()
}
"""Fact keys and the (normalised) field names that ask for them."""
DESCRIBED: Final[dict[str, str]] = {
    "width": r"width",
    "height": r"height",
    "count": r"(number of|how many) images",
    "colours": r"colours",
    "colour": r"(dominant|main) colour",
    "format": r"(file|image) format",
    "mime_type": r"mime type",
    "text": r"(text (in|on) the (image|picture|photo)|ocr)",
}
"""Fact keys a field's description may name, as regular expressions on whole words."""
NOTE_FIELDS: Final = (
    "reasoning",
    "rationale",
    "explanation",
    "justification",
    "notes",
    "note",
    "remarks",
    "comments",
    "comment",
    "analysis",
    "thoughts",
    "description",
)
"""Free-text fields, in order of preference, that may carry the line about placeholders."""
_BY_NAME: Final = {name: key for key, names in ALIASES.items() for name in names}
_PREFIXES: Final = ("image_", "img_", "photo_", "picture_")
_SUFFIXES: Final = ("_in_pixels", "_pixels", "_px")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
_MISSING: Final = object()
_UNUSABLE_SCHEMA: Final = (
    jsonschema.exceptions.SchemaError,
    jsonschema.exceptions.UnknownType,
    referencing.exceptions.Unresolvable,
    re.error,
    RecursionError,
    TypeError,
    ValueError,
)


@dataclass(frozen=True)
class Measured:
    """What the engine measured: each image's facts, as in the ``json_object`` answer."""

    images: tuple[Mapping[str, Any], ...] = ()

    def facts(self, image: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
        """Candidate values by fact key, for ``image`` or (``None``) for the whole request.

        The request's facts are the image count and the images, and an image's own facts when
        there is exactly one.
        """
        found: dict[str, list[Any]] = {}
        if image is None:
            found["count"] = [len(self.images)]
            found["images"] = [list(self.images)]
            image = self.images[0] if len(self.images) == 1 else None
        if image is not None:
            found.update(_image_facts(image))
        return found


def _image_facts(image: Mapping[str, Any]) -> dict[str, list[Any]]:
    width, height = image["width"], image["height"]
    names = [c["name"] for c in image.get("colours", ()) if c["share"] >= MIN_SHARE]
    gcd = math.gcd(width, height)
    shape = "square" if width == height else "landscape" if width > height else "portrait"
    facts: dict[str, list[Any]] = {
        "width": [width],
        "height": [height],
        "size": [{"width": width, "height": height}, f"{width}x{height}", [width, height]],
        "format": [image["format"]],
        "mime_type": [image["mime_type"]],
        "orientation": [shape, image["orientation"]],
        "aspect_ratio": [round(width / height, 2), f"{width // gcd}:{height // gcd}"],
        "tokens": [image["tokens"]],
        "detail": [image["detail"]],
        "bytes": [image["bytes"]],
    }
    if "colours" not in image:  # pixels not examined: what the header says, no more
        return facts
    facts |= {
        "colours": [names, ", ".join(names)],
        "colour": names[:1],
        "brightness": [image["brightness"], image["mean_brightness"]],
        "mean_brightness": [image["mean_brightness"]],
        "transparency": [image["transparency"]],
        "has_transparency": [image["transparency"] in {"partial", "full"}],
        "is_greyscale": [bool(names) and set(names) <= {"black", "white", "grey"}],
    }
    if image.get("text") is not None:  # OCR ran
        facts["text"] = [image["text"], image["text"].splitlines()]
        facts["has_text"] = [bool(image["text"])]
    return facts


@dataclass
class Filled:
    """A filled value, and the paths of the fields measured and of the placeholders."""

    value: Any = None
    measured: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    def note(self) -> str:
        """The one line that says which fields are placeholders."""
        measured = f"measured {', '.join(self.measured)}" if self.measured else "measured nothing"
        rest = ", ".join(self.placeholders)
        rest = f"placeholders, not measured: {rest}" if rest else "no placeholders"
        return f"Local Afarensis stand-in, not GPT-4V: {measured}; {rest}."


def fill(
    schema: Any,
    measured: Measured,
    given: Mapping[str, Any] | None = None,
    *,
    required_only: bool = False,
    note: bool = True,
) -> Filled:
    """An instance of ``schema`` from ``measured`` facts and the ``given`` top-level values.

    ``required_only`` leaves out the optional fields nothing filled (tool-call arguments);
    ``note`` puts the placeholder line in a free-text field when there is one.
    """
    root = schema if isinstance(schema, dict) else {}
    given = given or {}
    properties = properties_of(target(root, root))
    if not properties:
        return Filled(placeholder(root), placeholders=["(the whole answer)"])
    note_field = _note_field(properties, root, given) if note else None
    filled = Filled()
    filler = _Filler(root, measured, required_only)
    filled.value = filler.object(root, measured.facts(), "", 0, filled, given, note_field)
    if note_field is not None:
        line = filled.note()
        limit = target(properties[note_field], root).get("maxLength")
        filled.value[note_field] = line[:limit] if isinstance(limit, int) else line
    return filled


@dataclass(frozen=True)
class _Filler:
    root: dict[str, Any]
    measured: Measured
    required_only: bool

    def object(
        self,
        schema: Any,
        facts: dict[str, list[Any]],
        path: str,
        depth: int,
        out: Filled,
        given: Mapping[str, Any],
        skip: str | None = None,
    ) -> dict[str, Any]:
        """An object for ``schema`` (already known to have properties), noted in ``out``."""
        node = target(schema, self.root)
        listed = node.get("required")
        required = {n for n in listed if isinstance(n, str)} if isinstance(listed, list) else set()
        value: dict[str, Any] = {}
        for name, prop in properties_of(node).items():
            if name == skip:
                continue
            if name in given:
                value[name] = given[name]
                continue
            found = self.field(name, prop, facts, f"{path}{name}", depth, out)
            if found is not _MISSING:
                value[name] = found
                continue
            if not (self.required_only and name not in required):
                out.placeholders.append(f"{path}{name}")
                self.placeholder(value, name, prop, name in required)
        return value

    def field(
        self,
        name: str,
        prop: Any,
        facts: dict[str, list[Any]],
        path: str,
        depth: int,
        out: Filled,
    ) -> Any:
        """The measured value of one field, or ``_MISSING``."""
        key = _fact_key(name, prop)
        node = target(prop, self.root)
        if key == "images" and properties_of(target(node.get("items"), self.root)):
            items = node["items"]
            nested = Filled()
            value = [
                self.object(items, self.measured.facts(image), f"{path}[].", depth + 1, nested, {})
                for image in self.measured.images
            ]
            if self._fits(value, prop):
                out.measured.append(path)
                out.placeholders.extend(dict.fromkeys(nested.placeholders))
                return value
        for candidate in facts.get(key or "", []):
            value = _adapt(candidate, node, self.root)
            if self._fits(value, prop):
                out.measured.append(path)
                return value
        if properties_of(node) and depth < MAX_DEPTH:
            nested = Filled()
            fields = self.object(node, facts, f"{path}.", depth + 1, nested, {})
            if nested.measured:
                out.measured.extend(nested.measured)
                out.placeholders.extend(nested.placeholders)
                return fields
        return _MISSING

    def placeholder(self, value: dict[str, Any], name: str, prop: Any, required: bool) -> None:
        """Put a placeholder for ``name`` in ``value`` (or leave it out: optional, no default)."""
        node = prop if isinstance(prop, dict) else {}
        if "default" in node:
            value[name] = node["default"]
        elif nullable(prop, self.root):
            value[name] = None
        elif required:
            value[name] = placeholder(prop, self.root)

    def _fits(self, value: Any, prop: Any) -> bool:
        schema = {**prop, **_definitions(self.root)} if isinstance(prop, dict) else {}
        try:
            return bool(jsonschema.Draft202012Validator(schema).is_valid(value))
        except _UNUSABLE_SCHEMA:
            return False  # a schema it cannot follow gets a placeholder


def _definitions(root: dict[str, Any]) -> dict[str, Any]:
    return {key: root[key] for key in ("$defs", "definitions") if key in root}


def properties_of(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema's ``properties`` (``{}`` when it has none, or they are not an object)."""
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else {}


def normalise(name: str) -> str:
    """A field name in snake case, British spelling: ``imageColor`` -> ``image_colour``."""
    return normalise_text(_SEPARATORS.sub("_", _CAMEL.sub("_", name)).strip("_"))


def _fact_key(name: str, prop: Any) -> str | None:
    """The fact a field asks for: by its name, else by its description, else None."""
    short = normalise(name)
    for prefix in _PREFIXES:
        if short.startswith(prefix) and short != prefix.rstrip("_"):
            short = short[len(prefix) :]
    for suffix in _SUFFIXES:
        short = short.removesuffix(suffix)
    if key := _BY_NAME.get(normalise(name)) or _BY_NAME.get(short):
        return key
    description = normalise_text(prop.get("description") if isinstance(prop, dict) else None)
    named = [key for key, words in DESCRIBED.items() if re.search(rf"\b{words}\b", description)]
    return named[0] if len(named) == 1 else None


def normalise_text(text: Any) -> str:
    """Lower-case prose, British spelling (``colour``, ``grey``)."""
    return str(text or "").lower().replace("color", "colour").replace("gray", "grey")


def _adapt(value: Any, node: dict[str, Any], root: dict[str, Any]) -> Any:
    """A measured value shaped to a field: its enum's spelling, at most ``maxItems`` items."""
    if isinstance(value, str) and isinstance(node.get("enum"), list):
        return next(
            (m for m in node["enum"] if isinstance(m, str) and m.lower() == value.lower()), value
        )
    if isinstance(value, list):
        items = target(node.get("items"), root)
        value = [_adapt(item, items, root) for item in value]
        if isinstance(items.get("enum"), list):
            value = [item for item in value if item in items["enum"]]
        if isinstance(node.get("maxItems"), int):
            value = value[: node["maxItems"]]
    return value


def _note_field(
    properties: dict[str, Any], root: dict[str, Any], given: Mapping[str, Any]
) -> str | None:
    """The free-text field that gets the placeholder line, if the schema has one."""
    names = {normalise(name): name for name in properties if name not in given}
    wanted = (names[w] for w in NOTE_FIELDS if w in names)
    return next((n for n in wanted if _free_text(target(properties[n], root))), None)


def _free_text(node: dict[str, Any]) -> bool:
    """Whether a field takes any string (no ``enum``, ``const``, ``pattern`` or ``format``)."""
    limits = ("enum", "const", "pattern", "format")
    return node.get("type") == "string" and not any(key in node for key in limits)
