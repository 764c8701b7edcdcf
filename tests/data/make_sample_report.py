"""Write ``langchain_afarensis_vision/samples/report.pdf``: the sample document of the README,
notebook 06 and ``afarensis-vision index``. Run from the repository root:

    .venv/bin/python tests/data/make_sample_report.py

Three pages, each fact where a text-only pipeline cannot see it but the model (and the local
engine's OCR) can: page 1 is text (a text layer), page 2 holds a bar chart drawn as a picture
(its labels and figures are pixels, not text), page 3 is a scan (the whole page is an image, no
text layer). Written by this script with reportlab (BSD) and Pillow, in DejaVu Sans (shipped with
matplotlib; its licence is free to use and embed), so the file is ours to ship under the
package's licence. The output is deterministic (reportlab's invariant mode).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "langchain_afarensis_vision" / "samples" / "report.pdf"
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), size)


def _chart() -> Image.Image:
    image = Image.new("RGB", (1200, 800), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 30), "Lindqvist turbine output by month (MWh)", fill="black", font=_font(44))
    months = [("January", 3105), ("February", 3990), ("March", 4812), ("April", 4377)]
    for n, (month, value) in enumerate(months):
        left = 120 + n * 260
        top = 700 - value // 9
        draw.rectangle((left, top, left + 160, 700), fill=(46, 110, 180))
        draw.text((left, top - 56), f"{value:,}", fill="black", font=_font(40))
        draw.text((left, 715), month, fill="black", font=_font(36))
    return image


def _scan() -> Image.Image:
    page = Image.new("L", (1275, 1650), 250)  # a US Letter page at 150 dpi
    draw = ImageDraw.Draw(page)
    lines = [
        "Site survey: Kestrel Bay",
        "",
        "The Kestrel Bay site budget is 9.4 million",
        "for the year, approved on 12 May.",
        "Two survey teams visit the bay each week.",
    ]
    for n, line in enumerate(lines):
        draw.text((120, 160 + n * 90), line, fill=30, font=_font(52 if n == 0 else 44))
    return page.rotate(0.6, fillcolor=250)  # a scan is never quite straight


def main() -> None:
    pdf = canvas.Canvas(str(OUT), pagesize=letter, invariant=True)
    pdf.setTitle("Sample report")
    pdf.setFont("Helvetica-Bold", 22)
    pdf.drawString(72, 700, "Quarterly report: renewable sites")
    pdf.setFont("Helvetica", 13)
    text = [
        "The company runs three renewable sites: the Lindqvist turbine array,",
        "the Osprey solar field and the Kestrel Bay tidal site.",
        "Headcount reached 212 engineers across four offices this quarter.",
        "Monthly turbine output is charted on page 2; the Kestrel Bay survey",
        "is attached as a scan on page 3.",
    ]
    for n, line in enumerate(text):
        pdf.drawString(72, 660 - n * 20, line)
    pdf.showPage()
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(72, 720, "Turbine output")
    pdf.drawImage(ImageReader(_png(_chart())), 72, 330, width=468, height=312)
    pdf.showPage()
    pdf.drawImage(ImageReader(_png(_scan())), 0, 0, width=letter[0], height=letter[1])
    pdf.showPage()
    pdf.save()
    print(f"{OUT}: {OUT.stat().st_size:,} bytes")


def _png(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    buffer.seek(0)
    return buffer


if __name__ == "__main__":
    main()
