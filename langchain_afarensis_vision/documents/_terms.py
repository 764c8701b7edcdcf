"""Text as the page index searches it: folded the same way for pages and for questions.

FTS5's ``unicode61`` tokenizer splits on spaces and punctuation, which Chinese and Japanese do
not use, and its diacritic folding leaves what OCR invents (``cafe`` read as ``café``) to the
tokenizer's version. So both sides are folded here first: NFKC, case-folded, diacritics removed,
and every run of CJK characters written as its overlapping character pairs (``数据分析`` ->
``数据 据分 分析``, the usual bigram indexing of CJK text), which ``unicode61`` then keeps as
words. The ``porter`` stemmer on top joins ``turbine`` and ``turbines``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["fold", "match_query", "novel_lines", "words"]

_CJK: Final = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]+"
)
_WORD: Final = re.compile(r"\w+")
# Question words and glue that every page holds or no page is about; left out of queries only.
_STOP: Final = frozenset(
    {
        *("a", "an", "and", "any", "are", "as", "at", "be", "by", "did", "do", "does", "for"),
        *("from", "had", "has", "have", "how", "in", "is", "it", "its", "many", "much", "of"),
        *("on", "or", "some", "that", "the", "their", "there", "this", "to", "was", "were"),
        *("what", "when", "where", "which", "who", "whom", "whose", "why", "with"),
    }
)


def fold(text: str) -> str:
    """``text`` as indexed: NFKC, case-folded, without diacritics, CJK runs as pairs."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _CJK.sub(
        lambda run: " " + _pairs(run.group()) + " ", unicodedata.normalize("NFC", plain)
    )


def _pairs(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order (CJK as pairs)."""
    return _WORD.findall(fold(text))


def match_query(question: str) -> str | None:
    """An FTS5 ``MATCH`` expression for ``question``: any of its words (None: it has none).

    Each word is quoted (FTS5 syntax in a question is text, never an operator); question words
    and glue are left out unless nothing else is left.
    """
    found = list(dict.fromkeys(words(question)))
    kept = [word for word in found if word not in _STOP] or found
    if not kept:
        return None
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in kept)


def novel_lines(description: str, text_layer: str) -> str:
    """The lines of ``description`` that the text layer does not already hold.

    A page with a text layer is read twice (its text, and the model's reading of the page):
    indexing both would count that text twice and rank text-heavy pages first. A line stays
    when at least a third of its words are not in the text layer.
    """
    if not text_layer.strip():
        return description
    have = set(words(text_layer))
    kept = []
    for line in description.splitlines():
        line_words = words(line)
        new = sum(word not in have for word in line_words)
        if line_words and new * 3 >= len(line_words):
            kept.append(line)
    return "\n".join(kept)
