"""Extractive answers: the lines read or given that best match a question, each with its source.

The rule (the stand-in's, not GPT-4V's): when the last user message asks a question, its text
(less the sources below) holding a ``?`` or starting with a question word (what, which, who,
when, where, why, how, is, does, can, list, find...), the answer is the lines that best match
it, each ending with the source it came from, after the engine's intro line:

- *Sources*: in a text part of the last user message, a line starting ``[n]`` starts source
  n (``[2] report.pdf, page 3 - text layer: ...``), and the lines after it belong to n until
  the next marker; the other text is the question. The lines OCR reads in the k-th image of
  the request belong to ``[k]``.
- *Scoring*: question and lines are cut into terms: words (case-folded, diacritics folded, a
  final ``s`` dropped from words of four letters or more: ``revenues`` = ``revenue``), numbers
  as written (``12``, ``4.5``, ``18,240``: exact matches only) and, in Chinese, Japanese and
  Korean, pairs of neighbouring characters. Common words (the, of, what, image, page...) are
  not terms. A line scores the sum, over the question's terms it holds, of
  ``log(1 + lines / lines holding the term)``: rare terms weigh more.
- *Answer*: at most :data:`MAX_LINES` lines, best first (ties in reading order), each scoring
  at least half the best, each cut at :data:`MAX_LINE_CHARS`; a line over that is first split
  at its sentence ends. When the question has no term or no line holds one ("What is in this
  image?"), this rule gives no answer and the engine describes the images instead.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from langchain_afarensis_vision.server._images import SeenImage

MAX_LINES: Final = 5
MAX_LINE_CHARS: Final = 300
_CJK: Final = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TERMS = re.compile(rf"[{_CJK}]+|\d+(?:[.,]\d+)*|[^\W\d_{_CJK}]+")
_MARKER = re.compile(r"\s*\[(\d{1,4})\]\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")  # and CJK full stops, ! and ?
_ASKING = (
    "what which who whom whose when where why how is are was were do does did can could should "
    "would will has have had list find name quote"
)
_NOT_TERMS = (
    "a an the of in on at to for from by with about as and or but not no nor than then there "
    "this that these those it its it's i me my we our you your he she they them their his her "
    "be been being am s t any all some each every per into onto over under up down out off "
    "again also just only very more most much many few so such too if else says say said tell "
    "give show shows shown see seen read written write mention mentioned according please "
    "image images picture pictures photo photos page pages document documents text here"
)
_QUESTION_WORDS: Final = frozenset(_ASKING.split())
_COMMON: Final = _QUESTION_WORDS | frozenset(_NOT_TERMS.split())


@dataclass(frozen=True)
class Line:
    """A line of text and the source it came from (``[source]``)."""

    text: str
    source: int


def answer(
    messages: list[dict[str, Any]],
    images: Sequence[SeenImage],
    read: Callable[[SeenImage], str | None] | None,
    intro: str,
) -> str | None:
    """The extractive answer to the last user message, or None when the rule gives none.

    ``read`` is the OCR of one image (None when OCR is off).
    """
    question, given = _question_and_sources(messages)
    wanted = set(terms(question))
    if not is_question(question) or not wanted:
        return None
    lines = list(given)
    if read is not None:
        lines += [
            Line(text, k) for k, image in enumerate(images, 1) for text in _split(read(image) or "")
        ]
    best = best_lines(wanted, lines)
    if not best:
        return None
    header = (
        f"{intro} I do not understand questions: these are the lines I read in the images or "
        "was given that share the most words with yours, each marked with its source "
        "([n]: the n-th image, or the text marked [n])."
    )
    return "\n".join([header, *(f"- {_shown(line.text)} [{line.source}]" for line in best)])


def is_question(text: str) -> bool:
    """Whether ``text`` asks something: it holds a ``?`` or starts with a question word."""
    words = _TERMS.findall(_fold(text))
    return "?" in text or "\uff1f" in text or (bool(words) and words[0] in _QUESTION_WORDS)


def terms(text: str) -> list[str]:
    """The terms of ``text`` that count for matching (see the module)."""
    found: list[str] = []
    for token in _TERMS.findall(_fold(text)):
        if re.match(rf"[{_CJK}]", token):
            found += [token[i : i + 2] for i in range(max(1, len(token) - 1))]
        elif token not in _COMMON:
            long_plural = token[0].isalpha() and len(token) >= 4 and token.endswith("s")
            found.append(token[:-1] if long_plural and not token.endswith("ss") else token)
    return found


def best_lines(wanted: set[str], lines: Sequence[Line]) -> list[Line]:
    """The lines that best match the terms ``wanted`` (see the module), best first."""
    unique = list(dict.fromkeys(lines))
    held = [wanted.intersection(terms(line.text)) for line in unique]
    counts = Counter(term for found in held for term in found)
    weight = {term: math.log(1 + len(unique) / n) for term, n in counts.items()}
    scores = [sum(weight[term] for term in found) for found in held]
    ranked = sorted(range(len(unique)), key=lambda i: -scores[i])
    top = scores[ranked[0]] if ranked else 0.0
    return [unique[i] for i in ranked[:MAX_LINES] if scores[i] > 0 and scores[i] >= top / 2]


def _question_and_sources(messages: list[dict[str, Any]]) -> tuple[str, list[Line]]:
    """The question's text and the source lines of the last user message's text parts."""
    users = [message for message in messages if message.get("role") == "user"]
    content = users[-1].get("content") if users else None
    parts = [content] if isinstance(content, str) else content or []
    texts = [p if isinstance(p, str) else str(p.get("text") or "") for p in parts]
    question: list[str] = []
    given: list[Line] = []
    for text in texts:
        source = None
        for line in text.splitlines():
            if marker := _MARKER.match(line):
                source, line = int(marker.group(1)), line[marker.end() :]
            if source is None:
                question.append(line)
            else:
                given += [Line(piece, source) for piece in _split(line)]
    return "\n".join(question), given


def _split(text: str) -> Iterable[str]:
    """The non-empty lines of ``text``, a line over :data:`MAX_LINE_CHARS` cut at sentences."""
    for line in text.splitlines():
        pieces = _SENTENCE_END.split(line) if len(line) > MAX_LINE_CHARS else [line]
        yield from (piece.strip() for piece in pieces if piece.strip())


def _shown(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 3].rstrip() + "..."


def _fold(text: str) -> str:
    """Case and diacritics folded (``Émile`` -> ``emile``), compatibility forms too (full width)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFC", bare).casefold()
