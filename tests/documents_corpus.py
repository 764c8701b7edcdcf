"""A deterministic synthetic corpus of PDFs and images with facts and gold pages, and hostile PDFs.

``build_corpus(directory)`` writes about 30 PDFs (1 to 6 pages, two long ones) and four image
files, and returns the questions with their gold pages. Each fact is a distinctive sentence or
chart value (a made-up name, a four-digit number) placed in one of four ways:

- ``text``: in the PDF's text layer (Helvetica, reportlab);
- ``raster``: only inside a PNG drawn with Pillow (a slide or a bar chart) placed on a page, or
  in a PNG file; the page's text layer holds a generic title and filler only;
- ``scan``: the whole page is an image (a scanned letter page, JPEG): no text layer at all; or a
  JPEG file;
- ``vector``: a bar chart drawn with paths, its title, labels and values glyph outlines
  (matplotlib's ``TextPath`` of DejaVu Sans): nothing of it in the text layer.

Filler pages around them carry distractors: the same name with another topic or month, the same
topic with another name. Questions are paraphrases sharing a few content words with the fact.
Print on images is at least 11 pt at the size the model sees (a letter page reaches it at about
90 dpi), except a few small-print cases (8 pt). Everything is licence-clean (drawn here; DejaVu
fonts ship in matplotlib) and the same seed gives the same bytes (reportlab's invariant mode).

``build_hostile_pdfs(directory)`` writes broken and hostile PDFs; ``build_long_pdf`` a cheap
many-page PDF for memory tests.
"""

from __future__ import annotations

import io
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Final, Literal

import matplotlib
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from PIL import Image, ImageDraw, ImageFont
from reportlab import rl_config
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

rl_config.useA85 = 0  # binary streams: reportlab's pure-Python ASCII85 is slow and bloats

Kind = Literal["text", "raster", "scan", "vector"]
KINDS: Final[tuple[Kind, ...]] = ("text", "raster", "scan", "vector")
FONT_DIR: Final = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT: Final = FONT_DIR / "DejaVuSans.ttf"
BOLD: Final = FONT_DIR / "DejaVuSans-Bold.ttf"
PAGE_W, PAGE_H = LETTER = (612.0, 792.0)  # US Letter, in points
_PROPS: Final = {False: FontProperties(fname=str(FONT)), True: FontProperties(fname=str(BOLD))}
SCAN_DPI: Final = 150
HOSTILE_PASSWORD: Final = "afarensis-test"
MONTHS: Final = ("January", "February", "March", "April", "May", "June")
REGIONS: Final = ("Northern", "Southern", "Eastern", "Western", "Central")
YEARS: Final = ("2019", "2020", "2021", "2022", "2023", "2024")
NAMES: Final = [
    "Lindqvist",
    "Okonkwo",
    "Halvorsen",
    "Marchetti",
    "Brannigan",
    "Varga",
    "Takamori",
    "Oyelaran",
    "Castellanos",
    "Pryce",
    "Ferreira",
    "Nakashima",
    "Abernathy",
    "Kowalczyk",
    "Thorvald",
    "Quispe",
    "Delacroix",
    "Mbeki",
    "Sundberg",
    "Ravenscroft",
    "Achterberg",
    "Villanueva",
    "Iwasaki",
    "Ostrowski",
    "Fairweather",
    "Zeballos",
    "Hollingsworth",
    "Mwangi",
    "Petrakis",
    "Valdivia",
    "Strandberg",
    "Oduya",
    "Kilbride",
    "Montclair",
    "Haverford",
    "Lundgren",
    "Tavares",
    "Ekwueme",
    "Wexford",
    "Carrick",
    "Belmonte",
    "Ashcombe",
    "Gallardo",
    "Rutherglen",
    "Vasquez",
    "Dunmore",
    "Sorensen",
    "Elmhurst",
]


@dataclass(frozen=True)
class Topic:
    """A fact's template: ``{n}`` a name, ``{c}`` a category, ``{v}`` the value."""

    fact: str
    question: str
    chart: str  # the chart's title
    aside: str  # a distractor: the same name, another category, not the value
    categories: tuple[str, ...]


TOPICS: Final = (
    Topic(
        "The {n} turbine array produced {v} megawatt-hours in {c}.",
        "How much electricity did the {n} turbines generate in {c}?",
        "{n} turbine array output (MWh)",
        "Engineers inspected the {n} turbine array in {c} and replaced two gearboxes.",
        MONTHS,
    ),
    Topic(
        "The {n} Museum welcomed {v} visitors in {c}.",
        "How many people went to the {n} Museum during {c}?",
        "{n} Museum visitors by month",
        "The {n} Museum opened a new wing for textiles in {c}.",
        MONTHS,
    ),
    Topic(
        "The {n} reservoir held {v} million litres of water at the end of {c}.",
        "What volume was stored in the {n} reservoir when {c} ended?",
        "{n} reservoir storage (million litres)",
        "Anglers reported a broken fence near the {n} reservoir dam in {c}.",
        MONTHS,
    ),
    Topic(
        "The {n} orchards harvested {v} tonnes of apples in the {c} district.",
        "What apple tonnage came from the {n} orchards of the {c} district?",
        "{n} orchards apple harvest (tonnes)",
        "The {n} orchards planted pear saplings in the {c} district last spring.",
        REGIONS,
    ),
    Topic(
        "{n} Logistics shipped {v} pallets from its {c} depot.",
        "How many pallets left the {c} depot of {n} Logistics?",
        "{n} Logistics pallets shipped by depot",
        "{n} Logistics hired forty drivers for its {c} depot.",
        REGIONS,
    ),
    Topic(
        "The {n} library lent {v} books to schools in {c}.",
        "How many books did schools borrow from the {n} library in {c}?",
        "{n} library loans to schools",
        "The {n} library extended its opening hours in {c}.",
        MONTHS,
    ),
    Topic(
        "The {n} brewery exported {v} hectolitres of beer in {c}.",
        "What quantity of beer did the {n} brewery sell abroad in {c}?",
        "{n} brewery exports (hectolitres)",
        "The {n} brewery launched a smoked winter ale in {c}.",
        YEARS,
    ),
    Topic(
        "Enrolment at the {n} Academy reached {v} students in {c}.",
        "How many students attended the {n} Academy in {c}?",
        "{n} Academy enrolment by year",
        "The {n} Academy renovated its chemistry laboratories in {c}.",
        YEARS,
    ),
    Topic(
        "The {n} ferry carried {v} passengers across the strait in {c}.",
        "How many passengers travelled on the {n} ferry in {c}?",
        "{n} ferry passengers by month",
        "The {n} ferry was repainted in dry dock during {c}.",
        MONTHS,
    ),
    Topic(
        "{n} Bakeries sold {v} loaves of rye bread in the {c} shops.",
        "How many rye loaves did the {c} shops of {n} Bakeries sell?",
        "{n} Bakeries rye loaves sold by region",
        "{n} Bakeries renovated the ovens of its {c} shops.",
        REGIONS,
    ),
    Topic(
        "The {n} hospital performed {v} knee operations in {c}.",
        "How many knee surgeries took place at the {n} hospital in {c}?",
        "{n} hospital knee operations by year",
        "The {n} hospital opened a second car park in {c}.",
        YEARS,
    ),
    Topic(
        "The {n} vineyard bottled {v} cases of wine in {c}.",
        "How many cases of wine came from the {n} vineyard in {c}?",
        "{n} vineyard cases bottled by year",
        "Hail damaged the lower terraces of the {n} vineyard in {c}.",
        YEARS,
    ),
)

FILLER: Final = (
    "The committee reviewed the budget lines carried over from the previous period.",
    "Staff training sessions were moved to the afternoon to reduce overtime.",
    "Energy use in the administrative offices fell after the lighting upgrade.",
    "Several visitors asked for clearer signs between the car park and the entrance.",
    "The procurement team compared three suppliers before renewing the cleaning contract.",
    "Water pressure in the older buildings remained within the expected range.",
    "A working group will report on the proposed changes to the archive.",
    "Students from the partner schools joined the open day in larger numbers than planned.",
    "The board thanked the volunteers for their help during the spring fair.",
    "Delivery times improved once the new scheduling software was in place.",
    "The annual audit found no material weaknesses in the accounting process.",
    "Passenger surveys asked about punctuality, cleanliness and ticket prices.",
    "The safety officer repeated the fire drill for the night shift.",
    "Revenue from the gift shop covered the cost of the new display cases.",
    "Heating costs rose during the cold weeks but stayed below the forecast.",
    "The marketing plan focuses on regional newspapers and local radio.",
    "Most departments submitted their reports before the deadline.",
    "The new website section on opening hours received many visits.",
    "The union and management agreed on a revised holiday calendar.",
    "An external consultant assessed the condition of the roofs.",
    "Production planning now uses a rolling twelve-week forecast.",
    "The recycling rate of the canteen improved after new bins were placed.",
    "The quality team recorded fewer complaints than in the same period last year.",
    "Insurance premiums were renegotiated with the current provider.",
    "The transport office reviewed the routes of the staff shuttle buses.",
    "Figures in this report are provisional and may be revised.",
)
TITLES: Final = (
    "Operations review",
    "Notes of the management meeting",
    "Annual report: summary",
    "Facilities update",
    "Regional overview",
    "Board briefing",
    "Appendix: figures",
    "Monthly bulletin",
)


@dataclass(frozen=True)
class Question:
    """A paraphrased question, the kind of its fact, its gold pages and the expected value."""

    text: str
    kind: Kind
    gold: list[tuple[str, int]]  # (file relative to the corpus directory, 1-based page)
    answer: str = ""  # the fact's value as printed, e.g. "4,812"
    fact: str = ""  # the fact as placed (a sentence, or the chart's title and bar)
    small_print: bool = False
    name: str = ""  # the fact's made-up name: in the text layer of a text fact's page only


@dataclass
class Corpus:
    """What :func:`build_corpus` wrote: the files (relative paths), pages and questions."""

    directory: Path
    files: list[str]
    questions: list[Question]
    pages: int


@dataclass
class _Fact:
    topic: Topic
    name: str
    category: str
    values: dict[str, int]
    kind: Kind
    small: bool = False
    chart: bool = False
    gold: list[tuple[str, int]] = field(default_factory=list)

    def value(self) -> str:
        return f"{self.values[self.category]:,}"

    def sentence(self) -> str:
        return self.topic.fact.format(n=self.name, c=self.category, v=self.value())


# -- drawing -----------------------------------------------------------------------------------


def _font(path: Path, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), pixels)


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int
) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        line = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(line, font=font) <= width:
            lines[-1] = line
        else:
            lines.append(word)
    return lines


def _slide(title: str, sentence: str, *, points: float, dpi: int = 200) -> Image.Image:
    """A raster callout: a heading and a sentence, drawn at ``points`` pt when placed at ``dpi``."""
    px = round(points * dpi / 72)
    image = Image.new("RGB", (round(5.5 * dpi), round(2.4 * dpi)), (236, 242, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=(40, 70, 120), width=6)
    draw.text((40, 30), title, font=_font(BOLD, round(px * 1.2)), fill=(20, 40, 90))
    y = 50 + round(px * 1.8)
    for line in _wrap(draw, sentence, _font(FONT, px), image.width - 80):
        draw.text((40, y), line, font=_font(FONT, px), fill=(10, 10, 10))
        y += round(px * 1.35)
    return image


def _raster_chart(fact: _Fact, *, points: float, dpi: int = 200) -> Image.Image:
    """A bar chart drawn in pixels: title, bars, category labels and values."""
    px = round(points * dpi / 72)
    image = Image.new("RGB", (round(5.8 * dpi), round(3.6 * dpi)), "white")
    draw = ImageDraw.Draw(image)
    title = fact.topic.chart.format(n=fact.name)
    draw.text((30, 20), title, font=_font(BOLD, round(px * 1.15)), fill="black")
    base, top = image.height - round(px * 2.2), round(px * 3.5)
    slot = (image.width - 60) // len(fact.values)
    peak = max(fact.values.values())
    for index, (label, value) in enumerate(fact.values.items()):
        x = 30 + index * slot
        y = base - round((base - top - px * 1.5) * value / peak)
        draw.rectangle((x + slot // 6, y, x + slot * 5 // 6, base), fill=(70, 120, 180))
        small = _font(FONT, px)
        for text, at in ((f"{value:,}", y - round(px * 1.3)), (label, base + round(px * 0.4))):
            width = draw.textlength(text, font=small)
            draw.text((x + (slot - width) / 2, at), text, font=small, fill="black")
    return image


def _scan(
    title: str, paragraphs: Sequence[str], *, points: float, rng: random.Random
) -> Image.Image:
    """A letter page as a scanner sees it: grey paper, a slight tilt, speckles."""
    width, height = round(8.5 * SCAN_DPI), round(11 * SCAN_DPI)
    px = round(points * SCAN_DPI / 72)
    image = Image.new("L", (width, height), 246)
    draw = ImageDraw.Draw(image)
    draw.text((110, 120), title, font=_font(BOLD, round(px * 1.4)), fill=20)
    y = 140 + round(px * 2.6)
    for paragraph in paragraphs:
        for line in _wrap(draw, paragraph, _font(FONT, px), width - 220):
            draw.text((110, y), line, font=_font(FONT, px), fill=25)
            y += round(px * 1.45)
        y += px
    for _ in range(400):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.point((x, y), fill=rng.randrange(120, 200))
    return image.rotate(rng.uniform(-0.6, 0.6), resample=Image.Resampling.BILINEAR, fillcolor=246)


def _outlined(
    canvas: Canvas,
    text: str,
    x: float,
    y: float,
    points: float,
    *,
    bold: bool = False,
    centre: bool = False,
) -> None:
    """Draw ``text`` as filled glyph outlines (no text object); ``centre``: centred on ``x``."""
    path = TextPath((0, 0), text, size=points, prop=_PROPS[bold])
    if centre and len(path.vertices):
        x -= float(path.vertices[:, 0].max()) / 2
    pen = canvas.beginPath()
    start = last = (0.0, 0.0)
    for vertices, code in path.iter_segments(curves=True, simplify=False):
        at = [(x + vertices[i], y + vertices[i + 1]) for i in range(0, len(vertices), 2)]
        if code == MplPath.MOVETO:
            pen.moveTo(*at[0])
            start = at[0]
        elif code == MplPath.LINETO:
            pen.lineTo(*at[0])
        elif code == MplPath.CURVE3:  # quadratic: raised to cubic
            (qx, qy), (ex, ey) = at
            c1 = (last[0] + 2 / 3 * (qx - last[0]), last[1] + 2 / 3 * (qy - last[1]))
            pen.curveTo(*c1, ex + 2 / 3 * (qx - ex), ey + 2 / 3 * (qy - ey), ex, ey)
        elif code == MplPath.CURVE4:
            pen.curveTo(*at[0], *at[1], *at[2])
        elif code == MplPath.CLOSEPOLY:
            pen.close()
            at = [start]
        last = at[-1]
    canvas.drawPath(pen, stroke=0, fill=1, fillMode=1)  # non-zero winding, as TrueType


def _vector_chart(
    canvas: Canvas, fact: _Fact, x: float, y: float, width: float, height: float
) -> None:
    """A bar chart of paths: bars, axis, and every word and number as outlines."""
    _outlined(canvas, fact.topic.chart.format(n=fact.name), x, y + height - 16, 14, bold=True)
    base, top = y + 28, y + height - 60
    slot = width / len(fact.values)
    peak = max(fact.values.values())
    canvas.setStrokeColorRGB(0.2, 0.2, 0.2)
    canvas.line(x, base, x + width, base)
    for index, (label, value) in enumerate(fact.values.items()):
        left = x + index * slot
        bar = (top - base) * value / peak
        canvas.setFillColorRGB(0.27, 0.47, 0.7)
        canvas.rect(left + slot / 6, base, slot * 2 / 3, bar, stroke=0, fill=1)
        canvas.setFillColorRGB(0, 0, 0)
        _outlined(canvas, f"{value:,}", left + slot / 2, base + bar + 5, 12, centre=True)
        _outlined(canvas, label, left + slot / 2, base - 18, 12, centre=True)


# -- pages -------------------------------------------------------------------------------------


def _paragraphs(rng: random.Random, count: int, extra: Sequence[str] = ()) -> list[str]:
    sentences = [*rng.sample(FILLER, count * 3), *extra]
    rng.shuffle(sentences)
    size = max(1, len(sentences) // count)
    return [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]


def _text_page(canvas: Canvas, title: str, paragraphs: Sequence[str], top: float = 0) -> float:
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(72, PAGE_H - 72 - top, title)
    y = PAGE_H - 104 - top
    canvas.setFont("Helvetica", 11)
    for paragraph in paragraphs:
        for line in simpleSplit(paragraph, "Helvetica", 11, PAGE_W - 144):
            canvas.drawString(72, y, line)
            y -= 15
        y -= 9
    return y


def _fact_page(canvas: Canvas, fact: _Fact, rng: random.Random) -> None:
    title = rng.choice(TITLES)
    if fact.kind == "text":
        _text_page(canvas, title, _paragraphs(rng, 3, [fact.sentence()]))
    elif fact.kind == "scan":
        image = _scan(
            title, _paragraphs(rng, 3, [fact.sentence()]), points=8 if fact.small else 12, rng=rng
        )
        canvas.drawImage(ImageReader(_encoded(image, "JPEG")), 0, 0, PAGE_W, PAGE_H)
    else:
        y = _text_page(canvas, title, _paragraphs(rng, 1))
        box_w, box_h = PAGE_W - 144, 300.0
        if fact.kind == "vector":
            _vector_chart(canvas, fact, 72, y - box_h - 10, box_w, box_h)
        else:
            image = _raster(fact)
            box_h = box_w * image.height / image.width
            canvas.drawImage(ImageReader(_encoded(image, "PNG")), 72, y - box_h - 10, box_w, box_h)
        canvas.setFont("Helvetica-Oblique", 9)
        canvas.drawString(72, y - box_h - 26, f"Figure {rng.randint(1, 9)}. See the notes above.")


def _raster(fact: _Fact) -> Image.Image:
    points = 8 if fact.small else 13
    if fact.chart:
        return _raster_chart(fact, points=points)
    return _slide(
        fact.topic.chart.format(n=fact.name).split(" (")[0], fact.sentence(), points=points
    )


def _encoded(image: Image.Image, fmt: str) -> io.BytesIO:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB" if image.mode != "L" else "L").save(buffer, "JPEG", quality=80)
    else:
        image.save(buffer, "PNG", optimize=False)
    buffer.seek(0)
    return buffer


# -- the corpus --------------------------------------------------------------------------------


def _facts(rng: random.Random) -> list[_Fact]:
    """44 facts: 12 text, 12 raster (2 of them PNG files), 10 scan (2 JPEG files), 10 vector."""
    names = rng.sample(NAMES, 44)
    kinds = [
        kind for kind, count in zip(KINDS, (12, 12, 10, 10), strict=True) for _ in range(count)
    ]
    facts = []
    for index, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        topic = TOPICS[index % len(TOPICS)]
        categories = topic.categories[:5] if len(topic.categories) > 5 else topic.categories
        values = {c: rng.randrange(1000, 9999) for c in categories}
        fact = _Fact(topic, name, rng.choice(categories), values, kind)
        fact.small = kind in ("raster", "scan") and index % 6 == 5  # a few small-print cases
        fact.chart = kind == "raster" and index % 2 == 0
        facts.append(fact)
    return facts


def _layout(pdfs: int, rng: random.Random) -> list[int]:
    """Pages per PDF: 1 to 6, and two long ones (16 and 24 pages) when there are enough PDFs."""
    counts = [rng.randint(1, 6) for _ in range(pdfs)]
    if pdfs >= 10:
        counts[3], counts[7] = 16, 24
    return counts


def build_corpus(directory: str | Path, *, pdfs: int = 30, seed: int = 0) -> Corpus:
    """Write the corpus under ``directory`` and return its files, page count and questions."""
    root = Path(directory)
    rng = random.Random(seed)
    facts = _facts(rng)
    image_facts = [f for f in facts if f.kind == "raster"][-2:]
    image_facts += [f for f in facts if f.kind == "scan"][-2:]
    counts = _layout(pdfs, rng)
    slots = [(doc, page) for doc, count in enumerate(counts) for page in range(1, count + 1)]
    rng.shuffle(slots)
    by_kind = [[f for f in facts if f.kind == k and f not in image_facts] for k in KINDS]
    # kinds in turn: a corpus too small for every fact still holds some of each kind
    pdf_facts = [f for row in zip_longest(*by_kind) for f in row if f is not None][: len(slots)]
    placed = dict(zip(slots, pdf_facts, strict=False))
    fillers = slots[len(pdf_facts) :]
    notes = _notes(facts, fillers, rng)
    files = []
    for doc, count in enumerate(counts):
        name = f"{('reports', 'minutes', 'scans')[doc % 3]}/{_slug(rng)}-{doc:02d}.pdf"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        canvas = Canvas(str(root / name), pagesize=LETTER, invariant=1, pageCompression=1)
        for page in range(1, count + 1):
            if (fact := placed.get((doc, page))) is not None:
                fact.gold.append((name, page))
                _fact_page(canvas, fact, rng)
            else:
                extra, echoed = notes.get((doc, page), ([], None))
                if echoed is not None:
                    echoed.gold.append((name, page))
                _text_page(canvas, rng.choice(TITLES), _paragraphs(rng, rng.randint(2, 4), extra))
            canvas.showPage()
        canvas.save()
        files.append(name)
    files += [_image_file(root, fact, index, rng) for index, fact in enumerate(image_facts)]
    questions = [_question(fact) for fact in facts if fact.gold]
    return Corpus(root, files, questions, sum(counts) + len(image_facts))


def _question(fact: _Fact) -> Question:
    text = fact.topic.question.format(n=fact.name, c=fact.category)
    placed = fact.sentence()
    if fact.chart or fact.kind == "vector":
        placed = f"{fact.topic.chart.format(n=fact.name)}: {fact.category} {fact.value()}"
    return Question(text, fact.kind, sorted(fact.gold), fact.value(), placed, fact.small, fact.name)


Notes = dict[tuple[int, int], tuple[list[str], "_Fact | None"]]


def _notes(facts: Sequence[_Fact], fillers: Sequence[tuple[int, int]], rng: random.Random) -> Notes:
    """Sentences for filler pages: distractors, and two text facts said again elsewhere.

    Distractors: each name with another category (not the value), and each fact's sentence
    with a stranger's name and another value. A repeated text fact makes that page gold too.
    """
    strangers = [n for n in NAMES if n not in {f.name for f in facts}]
    sentences = []
    for fact in facts:
        other = rng.choice([c for c in fact.topic.categories if c != fact.category])
        sentences.append(fact.topic.aside.format(n=fact.name, c=other))
        value = f"{rng.randrange(1000, 9999):,}"
        sentences.append(fact.topic.fact.format(n=rng.choice(strangers), c=fact.category, v=value))
    rng.shuffle(sentences)
    notes: Notes = {}
    echoes = [f for f in facts if f.kind == "text"][:2]
    for index, slot in enumerate(fillers):
        said = sentences[index * 2 : index * 2 + 2]
        if index < len(echoes):
            notes[slot] = ([*said, echoes[index].sentence()], echoes[index])
        else:
            notes[slot] = (said, None)
    return notes


def _image_file(root: Path, fact: _Fact, index: int, rng: random.Random) -> str:
    (root / "images").mkdir(exist_ok=True)
    if fact.kind == "raster":
        name = f"images/slide-{index + 1}.png"
        _raster(fact).save(root / name, "PNG")
    else:
        name = f"images/photo-{index + 1}.jpg"
        image = _scan(
            rng.choice(TITLES), _paragraphs(rng, 2, [fact.sentence()]), points=12, rng=rng
        )
        image.save(root / name, "JPEG", quality=82)
    fact.gold.append((name, 1))
    return name


def _slug(rng: random.Random) -> str:
    return (
        rng.choice(("quarterly", "board", "site", "annual", "field", "audit"))
        + "-"
        + rng.choice(("notes", "review", "pack", "summary", "digest"))
    )


# -- hostile and long PDFs --------------------------------------------------------------------


def _pdf_bytes(objects: Sequence[bytes], root: int = 1) -> bytes:
    """A PDF written by hand: ``objects[i]`` is object ``i + 1``; a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _page_loop() -> bytes:
    """A page tree whose /Kids go round: Pages 2 -> Pages 3 -> Pages 2."""
    return _pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        ]
    )


def _flate_bomb(size: int) -> bytes:
    """A page whose content stream inflates to ``size`` bytes of spaces (1 MB a GB on disk).

    Quick to make: after a full flush deflate forgets what came before, so every 1 MiB block
    after the first compresses to the same bytes; the stream is those bytes repeated, framed
    as zlib (header, then the Adler-32 of the whole inflated data).
    """
    chunk = b" " * (1 << 20)
    blocks, rest = divmod(size, len(chunk))
    if rest or blocks < 2:
        raise ValueError(f"size must be a multiple of 1 MiB, 2 MiB or more, not {size}")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first, second, third = (
        packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH) for _ in range(3)
    )
    assert second == third
    check = 1
    for _ in range(blocks):
        check = zlib.adler32(chunk, check)
    packed = b"\x78\xda" + first + second * (blocks - 1) + packer.flush() + check.to_bytes(4, "big")
    return _pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            _stream(packed, b"/Filter /FlateDecode"),
        ]
    )


def _one_page(**options: object) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1, **options)
    canvas.setFont("Helvetica", 12)
    canvas.drawString(72, 72, "A page of a hostile corpus.")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


HOSTILE: Final[dict[str, Callable[[], bytes]]] = {
    "truncated.pdf": lambda: _one_page(pagesize=LETTER)[:300],
    "garbage.pdf": lambda: b"%PDF-1.7\n" + random.Random(7).randbytes(4096),
    "encrypted.pdf": lambda: _one_page(pagesize=LETTER, encrypt=HOSTILE_PASSWORD),
    "huge-page.pdf": lambda: _one_page(pagesize=(14400, 14400)),  # 200 x 200 inches
    "page-loop.pdf": _page_loop,
    "flate-bomb.pdf": lambda: _flate_bomb(1 << 30),  # 1 GiB inflated
}
"""Hostile PDFs by file name: ``encrypted.pdf`` opens with :data:`HOSTILE_PASSWORD`."""


def build_hostile_pdfs(
    directory: str | Path, names: Sequence[str] = tuple(HOSTILE)
) -> dict[str, Path]:
    """Write the hostile PDFs ``names`` (all by default) under ``directory``: name -> path."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names:
        (root / name).write_bytes(HOSTILE[name]())
        written[name] = root / name
    return written


def build_long_pdf(path: str | Path, pages: int = 2000) -> Path:
    """A PDF of ``pages`` short text pages, written by hand (fast: one shared font and content)."""
    count = 2 * pages
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index in range(pages):
        text = b"BT /F1 12 Tf 72 720 Td (Page %d of a long report.) Tj ET" % (index + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * index)
        )
        objects.append(_stream(text))
    assert len(objects) == 3 + count
    target = Path(path)
    target.write_bytes(_pdf_bytes(objects))
    return target


# -- checks ------------------------------------------------------------------------------------


def page_texts(path: str | Path) -> list[str]:
    """The text layer of each page of a PDF (pypdfium2), as a text RAG would read it."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace(",", "")))


def check_corpus(corpus: Corpus) -> list[str]:
    """What breaks the corpus's promises (empty: none).

    Every gold page exists; a ``text`` fact's name and value are in its gold page's text layer;
    a ``raster`` or ``vector`` fact's name and value are in no text layer of its file (a ``scan``
    page has no text layer at all).
    """
    problems = []
    texts = {f: page_texts(corpus.directory / f) for f in corpus.files if f.endswith(".pdf")}
    for question in corpus.questions:
        wanted = {question.name.lower(), question.answer.replace(",", "")}
        for file, page in question.gold:
            if not (corpus.directory / file).is_file():
                problems.append(f"{question.text}: no file {file}")
                continue
            if file not in texts:
                if page != 1:
                    problems.append(f"{question.text}: an image file has page 1 only, not {page}")
                continue
            if not 1 <= page <= len(texts[file]):
                problems.append(f"{question.text}: {file} has no page {page}")
                continue
            layer = _words(texts[file][page - 1])
            if question.kind == "text" and not wanted <= layer:
                problems.append(f"{question.text}: {sorted(wanted - layer)} not in {file} p{page}")
            if question.kind == "scan" and texts[file][page - 1].strip():
                problems.append(f"{question.text}: the scan {file} p{page} has a text layer")
            if question.kind in ("raster", "vector") and wanted & layer:
                problems.append(f"{question.text}: {sorted(wanted & layer)} in {file} p{page}")
    return problems
