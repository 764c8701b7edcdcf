"""How the CLI shows records to a person.

One line of facts per image, the answer indented under it, and a summary that counts only what
was done.
"""

from __future__ import annotations

import itertools
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from langchain_afarensis_vision._api.contract import ErrorType
from langchain_afarensis_vision.cli._records import FILE_ERROR, NOT_OFFLINE, Record, error_text

INDENT: Final = "    "
WIDTH: Final = 100
NAME_WIDTH: Final = 26
"""Terminal columns of the image name in a fact line (a longer name is cut in the middle)."""
_REFUSALS: Final = frozenset({ErrorType.INVALID_REQUEST.value, FILE_ERROR, NOT_OFFLINE})
_VERBS: Final = {FILE_ERROR: "unreadable", NOT_OFFLINE: "skipped"}
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])(\s+)")
_NUMBER: Final = re.compile(r"(?<![\w-])\d")
"""A number standing alone (``85 of 255``, ``Image 1``), not in a name (``gpt-4``)."""
REPEATS_NOTE: Final = (
    "(… marks sentences without numbers left out of an answer because the first answer began "
    "or ended with them too: they are printed once, there.)"
)


def name(record: Record) -> str:
    """The image as a person reads it: a file's name, or the whole URL."""
    source: str = record["image"]
    return source if record["format"] is None and "://" in source else Path(source).name


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: 2 for a wide (CJK) character, 0 for a combining one."""
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1


def fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` columns: padded, or cut in the middle (``long-na…me.jpg``)."""
    if (used := display_width(text)) > width:
        head = _columns(text, width - 1 - (width - 1) // 2)
        tail = _columns(text[::-1], (width - 1) // 2)[::-1]
        text = f"{head}…{tail}"
        used = display_width(text)
    return text + " " * (width - used)


def _columns(text: str, width: int) -> str:
    """The longest start of ``text`` within ``width`` columns."""
    used = itertools.accumulate(map(_char_width, text))
    return next((text[:index] for index, upto in enumerate(used) if upto > width), text)


def refused_before_sending(record: Record) -> bool:
    """Whether the image was refused (or could not be read) here, before any request."""
    error = record["error"]
    return error is not None and error["status"] is None and error["type"] in _REFUSALS


def fact_line(record: Record) -> str:
    """What the image is and what it costs (or why it cannot be sent)."""
    shown = fit(name(record), NAME_WIDTH)
    if refused_before_sending(record):
        verb = _VERBS.get(record["error"]["type"], "refused")
        return f"{shown} {verb} {error_text(record)}"
    if record["format"] is None:
        return f"{shown} a URL: the API fetches it itself"
    size = f"{record['format']} {record['source_width']}x{record['source_height']}"
    sent = f"{record['mime_type']} {record['width']}x{record['height']}"
    sizes = f"{record['source_bytes']:,} -> {record['bytes']:,} bytes"
    note = "" if record["changed"] else " (unchanged)"
    return f"{shown} {size:<18} -> {sent:<20} {sizes:>26} {record['image_tokens']:>5} tokens{note}"


def indented(text: str, width: int = WIDTH) -> str:
    """Every line of ``text`` indented under its image, long lines wrapped at ``width``."""
    return "\n".join(
        textwrap.fill(line, width, initial_indent=INDENT, subsequent_indent=INDENT) or INDENT
        for line in text.strip("\n").splitlines()
    ).rstrip()


class Repeats:
    """Leaves out of each answer the sentences it begins or ends with as the first one did.

    The local engine starts every answer with the same introduction and (without OCR) ends it
    with the same hint: said once, with the first answer, the measurements stand out. Only
    sentences without a number are left out (one with a number is a measurement, even when two
    images measure alike), and at least one sentence is always kept. What is left out is marked
    ``…`` where it was; ``trimmed`` says whether anything was.
    """

    def __init__(self) -> None:
        self.first: list[str] | None = None
        self.trimmed = False

    def shown(self, text: str) -> str:
        """``text`` without the leading and trailing sentences the first answer had too."""
        parts = _SENTENCE_END.split(text.strip())
        sentences = parts[::2]
        if self.first is None:
            self.first = sentences
            return text
        if sentences == self.first:
            self.trimmed = True
            return "… (the same answer as the first) …"
        lead = _common(sentences, self.first)
        tail = _common(sentences[lead:][::-1], self.first[lead:][::-1])
        if not lead and not tail:
            return text
        self.trimmed = True
        kept = "".join(parts[2 * lead : len(parts) - 2 * tail])
        return f"{'… ' if lead else ''}{kept.strip()}{' …' if tail else ''}"


def _common(ours: Sequence[str], theirs: Sequence[str]) -> int:
    """How many sentences ``ours`` begins with as ``theirs`` does (numbers never: they measure)."""
    count = 0
    for mine, first in zip(ours[:-1], theirs, strict=False):  # keep at least one sentence
        if mine != first or _NUMBER.search(mine):
            break
        count += 1
    return count


def describe_summary(records: Sequence[Record]) -> str:
    """``3 of 4 images described (1 refused before sending, 0 failed); ...``."""
    done = [r for r in records if r["error"] is None]
    refused = sum(refused_before_sending(r) for r in records)
    failed = len(records) - len(done) - refused
    tokens = sum(r["image_tokens"] or 0 for r in done)
    billed_in = sum((r["usage"] or {}).get("input_tokens", 0) for r in done)
    billed_out = sum((r["usage"] or {}).get("output_tokens", 0) for r in done)
    return (
        f"{len(done)} of {len(records)} images described ({refused} refused before sending, "
        f"{failed} failed); {tokens:,} image tokens; usage: {billed_in:,} input and "
        f"{billed_out:,} output tokens."
    )


def tokens_summary(records: Sequence[Record]) -> str:
    """``11 of 12 images accepted: ... bytes become ...; ... image tokens``: nothing is sent."""
    ok = [r for r in records if r["error"] is None]
    before = sum(r["source_bytes"] for r in ok)
    after = sum(r["bytes"] for r in ok)
    tokens = sum(r["image_tokens"] for r in ok)
    return (
        f"{len(ok)} of {len(records)} images accepted ({len(records) - len(ok)} refused): "
        f"{before:,} bytes become {after:,}; {tokens:,} image tokens. Offline: no request made."
    )
