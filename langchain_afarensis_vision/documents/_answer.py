"""Cited answers: the best pages sent with the question, citations checked against them.

The question goes with the best pages (their images within a token budget, their text layers);
the answer's citations are checked against the pages that were sent.

Each page sent is numbered ``[1]``, ``[2]``...: a text part naming its file and page, with its
text layer, then its image. Which images go at full detail, which at ``low`` and which are left
out is the image budget's own plan (:func:`~..middleware._policy.plan`, best page first, as an
agent's newest image): never more image tokens than ``max_image_tokens``. The model is asked to
cite by those numbers; a number that names no page sent is dropped from the answer and listed
in :attr:`CitedAnswer.dropped`, never shown as a citation.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import HumanMessage
from PIL import Image

from langchain_afarensis_vision.documents._store import PageHit
from langchain_afarensis_vision.images import PreparedImage, prepare_image
from langchain_afarensis_vision.middleware._policy import Found, Policy, image_part, plan

__all__ = ["ANSWER_PROMPT", "CitedAnswer", "answer_message", "cited_answer"]

ANSWER_PROMPT: Final = (
    "Answer the question from the numbered document pages below, and from nothing else. "
    "After each statement, cite the page it comes from by its number in brackets, like [2]. "
    "If the pages do not hold the answer, say so."
)
MAX_PAGE_TEXT: Final = 6000
"""Most characters of a page's text layer sent with its image."""
_MARKER: Final = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_THUMB: Final = 160


@dataclass
class CitedAnswer:
    """An answer, the pages it cites (each one sent), and the pages that were sent.

    ``citations`` are ``(file, page)`` in the order the answer first cites them; ``dropped``
    lists markers that named no page sent (removed from ``answer``); ``pages`` are the pages
    sent, best first, their ``[n]`` being their position.
    """

    question: str
    answer: str
    citations: list[tuple[str, int]]
    pages: list[PageHit]
    dropped: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``ask --json`` shape."""
        return {
            "answer": self.answer,
            "citations": [{"file": f, "page": p} for f, p in self.citations],
            "pages": [{"file": h.file, "page": h.page, "score": h.score} for h in self.pages],
            "dropped": self.dropped,
        }

    def __repr__(self) -> str:
        answer = self.answer if len(self.answer) <= 80 else self.answer[:77] + "..."
        return (
            f"CitedAnswer(answer={answer!r}, citations={self.citations!r}, "
            f"pages={len(self.pages)}, dropped={self.dropped!r})"
        )

    def __str__(self) -> str:
        cited = "; ".join(f"{file}, page {page}" for file, page in self.citations)
        return f"{self.answer}\n\nSources: {cited or 'none cited'}"

    def _repr_html_(self) -> str:
        """The answer, then a thumbnail of each cited page with its file and page (Jupyter)."""
        cards = []
        for file, page in self.citations:
            hit = next(h for h in self.pages if (h.file, h.page) == (file, page))
            label = html.escape(f"{file}, page {page}")
            thumb = _thumbnail(hit)
            image = f'<img src="{thumb}" alt="{label}" style="border:1px solid #ccc"/>'
            cards.append(
                f'<figure style="display:inline-block;margin:4px">{image if thumb else ""}'
                f"<figcaption>{label}</figcaption></figure>"
            )
        dropped = ""
        if self.dropped:
            dropped = f"<p><em>Dropped (no such page sent): {html.escape(', '.join(self.dropped))}"
            dropped += "</em></p>"
        answer = html.escape(self.answer).replace("\n", "<br/>")
        return f"<div><p>{answer}</p>{dropped}<div>{''.join(cards)}</div></div>"


def answer_message(
    question: str, hits: Sequence[PageHit], max_image_tokens: int
) -> tuple[HumanMessage, list[PageHit]]:
    """The message asking ``question`` about ``hits``, and the pages it holds (numbered so)."""
    images = [_prepared(hit) for hit in hits]
    found = []
    for index, image in enumerate(images):
        part = image_part(image.content_block(), "high") if image is not None else None
        if part is not None and image is not None:
            found.append(Found(0, index, part, image.tokens))
    fates = dict(zip((f.block for f in found), plan(found, _policy(max_image_tokens)), strict=True))
    content: list[str | dict[str, Any]] = [
        {"type": "text", "text": f"{ANSWER_PROMPT}\n\nQuestion: {question}"}
    ]
    sent: list[PageHit] = []
    for index, hit in enumerate(hits):
        fate = fates.get(index, "stub")
        if fate == "stub" and not hit.text:
            continue  # nothing of this page would reach the model
        sent.append(hit)
        content.append({"type": "text", "text": _page_text(len(sent), hit, fate)})
        image = images[index]
        if fate == "keep" and image is not None:
            content.append(image.content_block())
        elif fate == "low" and hit.image is not None:
            content.append(prepare_image(hit.image, "low").content_block())
    return HumanMessage(content=content), sent


def cited_answer(
    question: str, reply_text: str, sent: Sequence[PageHit], usage: Any = None
) -> CitedAnswer:
    """Read the citations of ``reply_text`` against the pages ``sent``."""
    citations: list[tuple[str, int]] = []
    dropped: list[str] = []

    def check(match: re.Match[str]) -> str:
        kept = []
        for number in re.split(r"[,;]", match.group(1)):
            n = int(number)
            if 1 <= n <= len(sent):
                kept.append(str(n))
                where = (sent[n - 1].file, sent[n - 1].page)
                if where not in citations:
                    citations.append(where)
            else:
                dropped.append(f"[{n}]")
        return f"[{', '.join(kept)}]" if kept else ""

    answer = _MARKER.sub(check, reply_text).strip()
    return CitedAnswer(question, answer, citations, list(sent), dropped, usage)


def _policy(max_image_tokens: int) -> Policy:
    return Policy(
        max_image_tokens=max_image_tokens,
        detail_tokens=max_image_tokens,
        keep_detail=None,
        max_images=None,
        default_detail="high",
        image_sizes={},
        description_tools=frozenset(),
        placeholder="",
        pointer="",
        first_frame=False,
    )


def _prepared(hit: PageHit) -> PreparedImage | None:
    if hit.image is None or not hit.image.exists():
        return None
    return prepare_image(hit.image, "high")


def _page_text(number: int, hit: PageHit, fate: str) -> str:
    head = f"[{number}] {hit.file}, page {hit.page} of {hit.page_count}"
    if fate == "low":
        head += " (its image at low detail, for the image-token budget)"
    elif fate == "stub":
        head += " (its image left out, for the image-token budget)"
    if not hit.text:
        return f"{head}. No text layer (a scan or a picture): read its image."
    text = hit.text[:MAX_PAGE_TEXT] + (" [...]" if len(hit.text) > MAX_PAGE_TEXT else "")
    return f"{head}. Its text layer:\n{text}"


def _thumbnail(hit: PageHit) -> str:
    if hit.image is None or not hit.image.exists():
        return ""
    with Image.open(hit.image) as image:
        small = image.convert("RGB")
        small.thumbnail((_THUMB, _THUMB))
    buffer = io.BytesIO()
    small.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
