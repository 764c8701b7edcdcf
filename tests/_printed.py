"""Printed text for OCR tests: paragraphs rendered with Pillow in DejaVu Sans (matplotlib's copy).

``printed(text, points, dpi)`` draws ``text`` at ``points`` (1 pt = 1/72 inch) on a page
``width_in`` inches wide at ``dpi``, wrapped within 0.75-inch margins, as a PNG. At 90 dpi a
letter page is 768 pixels wide: what the model sees of a whole page at ``detail`` high.
"""

from __future__ import annotations

import io
import random
import re
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
SURVEY = (
    "Customer satisfaction surveys showed a steady improvement across all regions during the "
    "third quarter. Revenue rose 12% in 2023 while operating costs fell by 4.5 million euros. "
    "The northern warehouse shipped 18,240 parcels in March, the most since the facility opened."
)
_WORDS = (
    "revenue margin quarter growth customer survey warehouse parcels invoice billing system "
    "turnover employee average dividend share board approved expects northern southern region "
    "costs million euros percent report annual steady improvement facility opened shipped "
    "remained below industry second year payable first september march operating fell rose "
    "the of and in to a for by with on at from"
)
_VOCABULARY = _WORDS.split()


def printed(text: str, points: float = 10, dpi: float = 90, width_in: float = 8.5) -> bytes:
    """``text`` printed at ``points`` on a page ``width_in`` inches wide at ``dpi``: a PNG."""
    size = points * dpi / 72
    font = ImageFont.truetype(str(FONT), round(size))
    margin = round(0.75 * dpi)
    width = round(width_in * dpi)
    per_line = (width - 2 * margin) / (font.getlength("abcdefghijklmnopqrstuvwxyz ") / 27)
    lines = [
        line for paragraph in text.split("\n") for line in textwrap.wrap(paragraph, int(per_line))
    ]
    step = round(size * 1.35)
    image = Image.new("RGB", (width, 2 * margin + step * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * step), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def dense_text(chars: int, seed: int = 7) -> str:
    """Paragraphs of made-up report sentences (words and numbers), about ``chars`` long."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    while sum(map(len, paragraphs)) < chars:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [
                rng.choice(_VOCABULARY) if rng.random() > 0.12 else str(rng.randint(2, 99999))
                for _ in range(rng.randint(8, 16))
            ]
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    return "\n".join(paragraphs)


def share_of_words(source: str, read: str) -> float:
    """The share of ``source``'s words (case-folded, with repeats) that ``read`` holds."""
    wanted = Counter(re.findall(r"\w+", source.lower()))
    found = Counter(re.findall(r"\w+", read.lower()))
    return sum((wanted & found).values()) / sum(wanted.values())
